"""The daily cycle on both backends: snapshots, cases, proposals and audit in one idempotent transaction."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update

from duecourse.adapters.crypto import FieldCipher
from duecourse.adapters.db import tables as t
from duecourse.audit.log import entries, verify
from duecourse.compliance.port import NoComplianceEngine
from duecourse.domain.errors import CycleError
from duecourse.services.cycle import BATCH_CONTENT, content_digest, day_rows, run_cycle
from duecourse.services.importer import import_book
from duecourse.services.reports import roll_rates
from duecourse.strategy import load_strategy

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "tests" / "e2e" / "handbook"
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
STRATEGY = load_strategy(ROOT / "strategies" / "default.yaml")


@pytest.fixture
def book(engine: Engine, tmp_path: Path) -> Engine:
    report = import_book(engine, BOOK, tmp_path / "rejects", FieldCipher.from_key_file(tmp_path / "key"), "test", NOW)
    assert report.rejected == 0
    return engine


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            tbl.name: conn.execute(select(func.count()).select_from(tbl)).scalar_one()
            for tbl in (t.delinquency_snapshot, t.proposed_action, t.collection_case, t.audit_entry, t.cycle_run)
        }


def cycle(engine: Engine, day: date, **kw: bool):  # type: ignore[no-untyped-def]
    return run_cycle(engine, STRATEGY, NoComplianceEngine(), day, now=NOW, **kw)


def test_a_cycle_writes_snapshots_cases_pending_proposals_and_audit(book: Engine) -> None:
    s = cycle(book, date(2026, 2, 20))
    assert s.changed and s.loans == 11 and s.snapshots_new == 11
    # Current: A1 and A2 (paid), M1-annuity (first due 28 Feb). Every other loan missed 15 Feb in full or
    # in part (A5's payment has not arrived yet, A6's bounced).
    assert {r["bucket"]: r["accounts"] for r in s.by_bucket} == {"current": 3, "M1": 8}
    assert s.cases_opened == 8
    with book.connect() as conn:
        statuses = set(conn.execute(select(t.proposed_action.c.compliance_status)).scalars())
        keys = conn.execute(select(t.proposed_action.c.idempotency_key)).scalars().all()
        n_cases = conn.execute(select(func.count()).select_from(t.collection_case)).scalar_one()
        entries, broken = verify(conn)
    assert statuses == {"pending"}, "nothing may be allowed before a compliance engine exists"
    assert keys and all(k.startswith("2026-02-20:") for k in keys)
    assert n_cases == 8
    assert broken is None and entries == counts(book)["audit_entry"]


def test_running_the_same_day_again_changes_nothing(book: Engine) -> None:
    cycle(book, date(2026, 2, 20))
    before = counts(book)
    again = cycle(book, date(2026, 2, 20))
    assert not again.changed and again.proposals_new == 0 and again.snapshots_new == 0
    assert counts(book) == before


def test_an_earlier_day_is_refused_unless_replayed(book: Engine) -> None:
    cycle(book, date(2026, 2, 20))
    with pytest.raises(CycleError, match="--replay"):
        cycle(book, date(2026, 2, 19))
    before = counts(book)
    replayed = cycle(book, date(2026, 2, 19), replay=True)
    after = counts(book)
    assert replayed.changed and after["delinquency_snapshot"] == before["delinquency_snapshot"] + 11
    assert after["collection_case"] == before["collection_case"], "a replay never reopens or closes cases"


def test_a_dry_run_writes_nothing(book: Engine) -> None:
    before = counts(book)
    s = cycle(book, date(2026, 2, 20), dry_run=True)
    assert s.loans == 11 and sum(r["count"] for r in s.proposals) > 0
    assert counts(book) == before


def test_cure_closes_the_case_and_roll_rates_read_the_snapshots(book: Engine, tmp_path: Path) -> None:
    cycle(book, date(2026, 2, 20))
    # The backdated payment of A5 arrives: as of 21 Feb it was never late; its case closes as cured.
    import_book(book, BOOK / "later", tmp_path / "rejects", FieldCipher.from_key_file(tmp_path / "key"), "test", NOW)
    s = cycle(book, date(2026, 2, 21))
    assert s.cases_closed == 1
    # Transitions compare pure states: with the payment dated 15 Feb, A5 was current on 20 Feb too, so
    # nothing moved between the two days; the stored snapshots still show what was known each day.
    assert s.transitions == {"steady": 11}
    with book.connect() as conn:
        closed = conn.execute(
            select(t.loan.c.loan_id, t.collection_case.c.close_reason)
            .join(t.loan, t.loan.c.loan_key == t.collection_case.c.loan_key)
            .where(t.collection_case.c.closed_on.is_not(None))
        ).all()
    assert [tuple(r) for r in closed] == [("A5-backdated", "cured")]
    rr = roll_rates(book, date(2026, 2, 20), date(2026, 2, 21))
    m = dict(zip(rr.buckets, rr.counts, strict=False))
    assert m["M1"][rr.buckets.index("current")] == 1 and m["M1"][rr.buckets.index("M1")] == 7
    assert m["current"][rr.buckets.index("current")] == 3


def batch_entries(engine: Engine) -> list[dict]:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return [{**e, "payload": json.loads(e["payload"])} for e in entries(conn) if e["action"] in BATCH_CONTENT]


def test_one_audit_entry_per_batch_commits_to_the_days_rows(book: Engine, tmp_path: Path) -> None:
    cycle(book, date(2026, 2, 20))
    import_book(book, BOOK / "later", tmp_path / "rejects", FieldCipher.from_key_file(tmp_path / "key"), "test", NOW)
    cycle(book, date(2026, 2, 21))
    found = batch_entries(book)
    assert sorted(e["action"] for e in found) == ["action.proposed", "case.closed", "case.opened"]
    for e in found:
        day = date.fromisoformat(e["entity_id"])
        with book.connect() as conn:
            rows = day_rows(conn, e["action"], day)
        assert e["payload"]["day_rows"] == rows.height > 0
        assert e["payload"]["sha256"] == content_digest(rows), f"{e['action']} of {day} does not match its rows"
    opened = next(e for e in found if e["action"] == "case.opened")
    assert opened["payload"]["new_rows"] == 8
    # Editing one stored decision no longer matches the digest its audit entry committed to.
    with book.begin() as conn:
        conn.execute(update(t.proposed_action).where(t.proposed_action.c.as_of == date(2026, 2, 20)).values(arm="B"))
    proposed = next(e for e in found if e["action"] == "action.proposed" and e["entity_id"] == "2026-02-20")
    with book.connect() as conn:
        tampered = day_rows(conn, "action.proposed", date(2026, 2, 20))
    assert proposed["payload"]["sha256"] != content_digest(tampered)
