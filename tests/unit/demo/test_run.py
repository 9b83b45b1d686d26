"""`run_demo` end to end on a small book: a fresh SQLite file, every day imported and cycled, a door visit from the
cycle's proposal to its reported outcome, a useful summary."""

from __future__ import annotations

import io
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import func, select, text

from duecourse.adapters.channels.letters import letter_face
from duecourse.adapters.db import tables as t
from duecourse.audit.log import verify
from duecourse.bootstrap import Container
from duecourse.demo.run import DemoError, DemoResult, run_demo
from duecourse.domain.verification import display
from duecourse.settings import Settings
from tests.unit.letters.pdf_tools import FONT_CACHE

ROOT = Path(__file__).resolve().parents[3]
START = date(2026, 11, 1)
DAYS = 12  # a visit planned on the first day is made on the 11th: notice, posting and 7 days' lead time


def _container(home: Path, url: str | None = None) -> Container:
    env = {
        "DUECOURSE_HOME": str(home),
        "DUECOURSE_STRATEGY": str(ROOT / "strategies" / "default.yaml"),
        "DUECOURSE_RULES": str(ROOT / "rules"),
        "DUECOURSE_POLICY": str(ROOT / "policy"),
        "DUECOURSE_MESSAGES": str(ROOT / "templates" / "messages.yaml"),
    }
    if url:
        env["DUECOURSE_DATABASE_URL"] = url
    return Container(Settings.from_env(env))


@pytest.fixture(scope="module")
def fonts() -> Path:
    """The letters' cut face, made once (a minute of CPU) in the folder the letters tests keep it in, as a lender's
    data_dir/fonts keeps it between runs."""
    letter_face(FONT_CACHE)
    return FONT_CACHE


def _home(folder: Path, fonts: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fonts").symlink_to(fonts, target_is_directory=True)
    return folder


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, fonts: Path) -> tuple[Container, DemoResult, str]:
    home = _home(tmp_path_factory.mktemp("demo-home"), fonts)
    container = _container(home)
    buf = io.StringIO()
    result = run_demo(container, n_borrowers=800, days=DAYS, start=START, out=Console(file=buf, width=200), seed=3)
    return container, result, buf.getvalue()


def test_every_day_is_imported_and_cycled(demo: tuple[Container, DemoResult, str]) -> None:
    container, result, _ = demo
    assert [d.day for d in result.days] == [START + timedelta(days=i) for i in range(DAYS)]
    with container.engine.connect() as conn:
        loans = conn.execute(select(func.count()).select_from(t.loan)).scalar_one()
        runs = conn.execute(select(t.cycle_run.c.as_of).order_by(t.cycle_run.c.as_of)).scalars().all()
        snapshots = conn.execute(text("SELECT as_of, count(*) FROM delinquency_snapshot GROUP BY as_of")).all()
        payments = conn.execute(select(func.count()).select_from(t.payment)).scalar_one()
        reversals = conn.execute(
            select(func.count()).select_from(t.payment).where(t.payment.c.reverses_payment_key.is_not(None))
        ).scalar_one()
    assert loans == result.loans
    assert [str(d) for d in runs] == [(START + timedelta(days=i)).isoformat() for i in range(-1, DAYS)]
    assert all(n == loans for _, n in snapshots) and len(snapshots) == DAYS + 1
    assert sum(d.rejected for d in result.days) == 0
    assert sum(d.payments for d in result.days) > 0
    assert reversals == sum(d.reversals for d in result.days)
    assert payments > loans  # the history plus the month's payments


def test_the_book_moves_cases_open_and_close(demo: tuple[Container, DemoResult, str]) -> None:
    _, result, _ = demo
    assert result.baseline is not None and result.baseline.day == START - timedelta(days=1)
    # the baseline opens a case for every loan delinquent in the imported book; later days only for new ones
    assert result.baseline.cases_opened == result.baseline.delinquent > 0
    assert 0 < sum(d.cases_opened for d in result.days) < result.baseline.cases_opened
    assert sum(d.cures for d in result.days) > 0
    assert sum(d.proposals for d in result.days) > 0


def test_the_desk_reaches_debtors_and_the_cycle_judges_what_they_promised(
    demo: tuple[Container, DemoResult, str],
) -> None:
    container, result, output = demo
    assert len(result.desk) == DAYS
    assert sum(d.sent for d in result.desk) > 0 and sum(d.handed_off for d in result.desk) > 0
    calls = sum(sum(d.calls.values()) for d in result.desk)
    with container.engine.connect() as conn:
        events = conn.execute(select(func.count()).select_from(t.contact_event)).scalar_one()
        promises = dict(
            conn.execute(select(t.promise_to_pay.c.state, func.count()).group_by(t.promise_to_pay.c.state)).all()
        )
        audited = set(conn.execute(select(t.audit_entry.c.action).distinct()).scalars())
    assert calls > 0 and events >= calls  # every call and every message sent left a contact event
    assert sum(promises.values()) == sum(d.calls.get("promise_to_pay", 0) for d in result.desk)
    assert promises.get("kept", 0) > 0 and promises.get("broken", 0) > 0
    assert {"promise.kept", "promise.broken", "call.queued"} <= audited
    assert "Reaching the debtors" in output and "Promises to pay" in output


def test_a_door_visit_goes_from_the_cycle_to_its_reported_outcome(demo: tuple[Container, DemoResult, str]) -> None:
    container, result, printed = demo
    assert result.visited, "no door visit was made"
    visit_id = result.visited[0]
    v, a, e = t.visit, t.proposed_action, t.audit_entry
    with container.engine.connect() as conn:
        visit = conn.execute(select(v).where(v.c.visit_id == visit_id)).one()
        proposal = conn.execute(select(a).where(a.c.action_key == visit.action_key)).one()
        steps = conn.execute(
            select(e.c.action).where(e.c.entity == "visit", e.c.entity_id == visit_id).order_by(e.c.seq)
        ).scalars()
        team = conn.execute(
            select(func.count()).select_from(t.visit_team).where(t.visit_team.c.visit_key == visit.visit_key)
        ).scalar_one()
        history = (
            conn.execute(
                select(t.contact_event.c.outcome).where(
                    t.contact_event.c.borrower_key == visit.borrower_key, t.contact_event.c.agent == "migrated"
                )
            )
            .scalars()
            .all()
        )
        checked, broken = verify(conn)
    # the cycle proposed it, allowed, because remote contact had failed (the migrated history) and nobody talked
    assert proposal.step == "door_visit_candidate" and proposal.compliance_status == "allowed"
    assert len(history) >= 3 and "conversation" not in history
    assert visit.eligibility["failed_attempts"] >= 3 and visit.eligibility["conversations"] == 0
    assert [s.removeprefix("visit.") for s in steps if s != "visit.evidence_added"] == [
        "planned", "notice_issued", "notice_delivered", "scheduled", "checked_in", "checked_out", "reported",
    ]  # fmt: skip
    assert visit.status == "reported" and visit.outcome["met_debtor"] and visit.outcome["plan_requested"]
    assert team == 2
    lead = visit.scheduled_start.replace(tzinfo=None) - visit.notice_delivered_at.replace(tzinfo=None)
    assert lead >= timedelta(days=7)
    # before the lead time, alone, or with a collector whose certification lapsed: refused, naming the rule
    refused = " ".join(result.refusals)
    assert "HOUSE.VISIT.NOTICE" in refused and "CN.VISIT.STAFF" in refused and "HOUSE.VISIT.CERTIFIED" in refused
    assert broken is None and checked == result.audit[0] and result.audit[1] is None
    words = " ".join(printed.split())  # the console wraps long lines
    assert "audit chain verified" in words and f"The journey of visit {visit_id}" in words
    for step in ("planned", "notice_issued", "notice_delivered", "scheduled", "checked_in", "checked_out", "reported"):
        assert f" {step}: " in words
    assert f"duecourse visits show {visit_id}" in words


def test_the_notice_reads_back_in_chinese_and_its_qr_code_opens_verify(
    demo: tuple[Container, DemoResult, str], tmp_path: Path
) -> None:
    container, result, printed = demo
    notice = result.notices[result.visited[0]]
    pdf = Path(notice["pdf"])
    words = " ".join(printed.split())  # the console wraps long lines
    assert pdf.exists() and str(pdf) in words
    text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    code = display(notice["code"])
    assert result.visited[0] in text and code in text
    with container.engine.connect() as conn:
        name = conn.execute(
            select(t.borrower.c.name_enc)
            .join(t.visit, t.visit.c.borrower_key == t.borrower.c.borrower_key)
            .where(t.visit.c.visit_id == result.visited[0])
        ).scalar_one()
    debtor = container.cipher.decrypt(name, "borrower.name_enc")
    assert "上门拜访前书面通知" in text and f"尊敬的{debtor}" in text and container.messages.lender.name["zh"] in text
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(pdf), str(tmp_path / "page")], check=True)
    decoded: list[str] = []
    for page in sorted(tmp_path.glob("page*.png")):
        found = subprocess.run(["zbarimg", "--raw", "-q", str(page)], capture_output=True, text=True)
        decoded += found.stdout.split() if found.returncode == 0 else []  # 4: no code on this page
    assert decoded == [f"{container.settings.public_url}/verify?code={code}"]
    assert f"{code}): genuine" in words


def test_the_summary_says_where_to_look_next(demo: tuple[Container, DemoResult, str]) -> None:
    container, result, printed = demo
    last = (START + timedelta(days=DAYS - 1)).isoformat()
    assert "The book by bucket" in printed and "Roll rates" in printed and "Actions proposed" in printed
    assert f"duecourse report roll-rates --from {START - timedelta(days=1)} --to {last}" in printed
    assert "duecourse audit verify" in printed
    assert result.look_at, "no interesting loan found"
    for loan_id in result.look_at.values():
        assert f"duecourse loan show {loan_id} --as-of {last}" in printed
    assert result.database == str(container.settings.data_dir / "duecourse.db")


def test_a_second_run_starts_from_a_fresh_database(tmp_path: Path, fonts: Path) -> None:
    container = _container(_home(tmp_path, fonts))
    quiet = Console(file=io.StringIO())
    first = run_demo(container, n_borrowers=200, days=2, start=START, out=quiet, seed=1)
    again = run_demo(_container(tmp_path), n_borrowers=150, days=2, start=START, out=quiet, seed=2)
    with _container(tmp_path).engine.connect() as conn:
        loans = conn.execute(select(func.count()).select_from(t.loan)).scalar_one()
    assert loans == again.loans != first.loans


def test_refuses_a_database_it_does_not_own(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.db"
    with pytest.raises(DemoError, match="will not touch"):
        run_demo(
            _container(tmp_path / "home", f"sqlite:///{elsewhere}"),
            n_borrowers=50,
            days=2,
            out=Console(file=io.StringIO()),
        )
    with pytest.raises(DemoError, match="will not touch"):
        run_demo(
            _container(tmp_path / "home", "postgresql+psycopg://u:secret@localhost/prod"),
            n_borrowers=50,
            days=2,
            out=Console(file=io.StringIO()),
        )
    assert not elsewhere.exists()


def test_refuses_to_delete_a_database_holding_other_imports(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from duecourse.services.importer import import_book

    container = _container(tmp_path)
    import_book(
        container.engine,
        ROOT / "examples" / "book",
        tmp_path / "rejects",
        container.cipher,
        actor="test",
        now=datetime(2026, 10, 1, tzinfo=UTC),
    )
    container.engine.dispose()
    with pytest.raises(DemoError, match="holds data imported from"):
        run_demo(_container(tmp_path), n_borrowers=50, days=2, out=Console(file=io.StringIO()))
    assert (tmp_path / "duecourse.db").exists()
