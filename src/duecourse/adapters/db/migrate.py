"""Schema migrations (Alembic), run programmatically so `duecourse` needs no alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(connection: object) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as conn:
        command.upgrade(_config(conn), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    with engine.begin() as conn:
        command.downgrade(_config(conn), revision)


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a new revision against a database at head (a developer tool)."""
    with engine.begin() as conn:
        command.revision(_config(conn), message=message, autogenerate=True)
