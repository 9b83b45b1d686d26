"""Shared fixtures: a fresh database per test on every backend the project supports (SQLite and PostgreSQL).

Storage tests take `engine` (migrated) or `db_url` (empty) and run once per backend. PostgreSQL comes
from DUECOURSE_TEST_PG_URL (`make test` starts one with scripts/pg.sh); without it the PostgreSQL
variant fails, so a green run always means both backends passed. DUECOURSE_TEST_SQLITE_ONLY=1 drops
the PostgreSQL variant for a quick local run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from duecourse.adapters.db.engine import make_engine
from duecourse.adapters.db.migrate import upgrade

# Property tests judge behaviour, never speed (performance lives in bench/): no per-example deadline and no
# "too slow" health check, either of which turned a slow example on a loaded CI machine into a failure.
settings.register_profile("duecourse", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("duecourse")

PG_URL_VAR = "DUECOURSE_TEST_PG_URL"
SQLITE_ONLY = os.environ.get("DUECOURSE_TEST_SQLITE_ONLY") == "1"
BACKENDS = ["sqlite"] if SQLITE_ONLY else ["sqlite", "postgresql"]


class _Postgres:
    """Creates and drops uniquely named databases on the test server."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.admin = create_engine(self.url, isolation_level="AUTOCOMMIT")

    def create(self, template: str | None = None) -> str:
        name = f"duecourse_t_{uuid.uuid4().hex[:16]}"
        clause = f" TEMPLATE {template}" if template else ""
        with self.admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}{clause}"))
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="session")
def _postgres() -> Iterator[_Postgres]:
    url = os.environ.get(PG_URL_VAR)
    if not url:
        pytest.fail(
            f"{PG_URL_VAR} is not set: run `make test` (it starts PostgreSQL with scripts/pg.sh), export "
            f"{PG_URL_VAR}=$(bash scripts/pg.sh start), or set DUECOURSE_TEST_SQLITE_ONLY=1 for a SQLite-only run"
        )
    pg = _Postgres(url)
    yield pg
    pg.admin.dispose()


class _Templates:
    """One migrated database per backend, made on first use; each test gets a copy (faster than migrating each time)."""

    def __init__(self, tmp: pytest.TempPathFactory) -> None:
        self.tmp = tmp
        self.urls: dict[str, str] = {}
        self.postgres: _Postgres | None = None

    def url(self, backend: str, request: pytest.FixtureRequest) -> str:
        if backend not in self.urls:
            if backend == "sqlite":
                url = f"sqlite:///{self.tmp.mktemp('template') / 'template.db'}"
            else:
                self.postgres = request.getfixturevalue("_postgres")
                url = self.postgres.create()
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()  # a PostgreSQL template must have no open connections
            self.urls[backend] = url
        return self.urls[backend]


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Templates]:
    templates = _Templates(tmp_path_factory)
    yield templates
    if templates.postgres is not None:
        templates.postgres.drop(templates.urls["postgresql"])
        templates.postgres.admin.dispose()  # runs after _postgres' own teardown, which came later in setup


def _template(backend: str, request: pytest.FixtureRequest) -> str:
    templates: _Templates = request.getfixturevalue("_templates")
    return templates.url(backend, request)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database kind under test: "sqlite" or "postgresql"."""
    return str(request.param)


def _fresh_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path, migrated: bool) -> Iterator[str]:
    if backend == "sqlite":
        path = tmp_path / f"duecourse-{uuid.uuid4().hex[:8]}.db"
        if migrated:
            shutil.copyfile(make_url(_template("sqlite", request)).database or "", path)
        yield f"sqlite:///{path}"
        return
    pg: _Postgres = request.getfixturevalue("_postgres")
    template = make_url(_template("postgresql", request)).database if migrated else None
    url = pg.create(template)
    try:
        yield url
    finally:
        pg.drop(url)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, EMPTY database (no tables) on the backend under test; dropped after the test."""
    yield from _fresh_url(backend, request, tmp_path, migrated=False)


@pytest.fixture
def migrated_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh database at the head migration on the backend under test; dropped after the test."""
    yield from _fresh_url(backend, request, tmp_path, migrated=True)


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    """An engine (made by `make_engine`) on a fresh database at the head migration, once per backend."""
    eng = make_engine(migrated_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite engine, for tests whose subject does not depend on the database kind."""
    path = tmp_path / "duecourse.db"
    shutil.copyfile(make_url(_template("sqlite", request)).database or "", path)
    eng = make_engine(f"sqlite:///{path}")
    yield eng
    eng.dispose()
