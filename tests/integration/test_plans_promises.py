"""Promises to pay through the service on both backends: taken by staff or made by the debtor, each with its
contact and audit entry, checked against the horizon in the debtor's own day; and the promise-kept report.

The book is test_plans.py's (borrower PB1 in Asia/Shanghai, loans P1 and P2).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, update

from duecourse.adapters.crypto import FieldCipher
from duecourse.adapters.db import tables as t
from duecourse.audit.log import entries, verify
from duecourse.domain.errors import NotFoundError, PlanError
from duecourse.services.contacts import ContactEvent, record_contacts
from duecourse.services.promises import PromiseInput, list_promises, promise_report, take_promise
from tests.integration.test_plans import load_plans_book

# 17:00 UTC on 20 April is 01:00 on 21 April in Shanghai: the debtor's day is the 21st.
NOW = datetime(2026, 4, 20, 17, tzinfo=UTC)


@pytest.fixture
def book(engine: Engine, tmp_path: Path) -> Engine:
    load_plans_book(engine, FieldCipher.from_key_file(tmp_path / "data.key"), tmp_path)
    return engine


def _promise(**kw: object) -> PromiseInput:
    base: dict[str, object] = {
        "loan_id": "P1",
        "amount": Decimal("1234.56"),
        "due_date": date(2026, 4, 30),
        "channel": "call",
        "taken_by": "agent-7",
    }
    return PromiseInput(**{**base, **kw})  # type: ignore[arg-type]


def test_a_promise_taken_by_an_agent_is_stored_exactly_with_its_contact_and_audit(book: Engine) -> None:
    taken = take_promise(book, _promise(note="salary on the 28th"), NOW)
    assert (taken["amount"], taken["currency"], taken["state"]) == ("1234.56", "CNY", "open")
    with book.connect() as conn:
        row = conn.execute(select(t.promise_to_pay)).one()
        event = conn.execute(select(t.contact_event)).one()
        audit = [e for e in entries(conn) if e["action"] == "promise.taken"]
        assert verify(conn)[1] is None
    assert (row.amount, row.due_date, row.channel, row.taken_by, row.state) == (
        123_456,
        date(2026, 4, 30),
        "call",
        "agent-7",
        "open",
    )
    assert (event.channel, event.outcome, event.initiated_by, event.agent) == (
        "call",
        "conversation",
        "collector",
        "agent-7",
    )
    assert event.event_id == row.event_id == taken["event_id"]
    assert event.details["result"] == "promise_to_pay" and event.details["amount"] == 123_456
    assert len(audit) == 1 and audit[0]["entity_id"] == taken["promise_id"] and audit[0]["actor"] == "agent-7"


def test_a_promise_through_the_debtors_own_channel_is_counted_as_the_debtors_contact(book: Engine) -> None:
    take_promise(book, _promise(channel="app", taken_by="debtor", amount=Decimal("200")), NOW)
    with book.connect() as conn:
        event = conn.execute(select(t.contact_event)).one()
    assert (event.channel, event.initiated_by, event.agent) == ("app_push", "debtor", None)
    assert [(p["taken_by"], p["amount"], p["channel"]) for p in list_promises(book, borrower_id="PB1")] == [
        ("debtor", "200.00", "app")
    ]


def test_a_promise_made_in_a_contact_already_recorded_adds_no_second_contact(book: Engine) -> None:
    with book.begin() as conn:
        borrower = conn.execute(select(t.borrower.c.borrower_key)).scalar_one()
        record_contacts(conn, [ContactEvent("visit:V1:out", borrower, NOW, "visit", "conversation")], NOW)
    taken = take_promise(book, _promise(channel="visit", in_event="visit:V1:out"), NOW)
    with book.connect() as conn:
        assert conn.execute(select(t.contact_event.c.event_id)).scalars().all() == ["visit:V1:out"]
    assert taken["event_id"] == "visit:V1:out"
    with pytest.raises(PlanError, match="no contact event 'visit:V9'"):
        take_promise(book, _promise(channel="visit", in_event="visit:V9"), NOW)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"amount": Decimal("0")}, "must be positive"),
        ({"amount": Decimal("-5")}, "must be positive"),
        ({"amount": Decimal("10.001")}, "more decimals than CNY allows"),
        ({"due_date": date(2026, 4, 20)}, "between 2026-04-21 and 2026-05-21"),  # the debtor's yesterday
        ({"due_date": date(2026, 5, 22)}, "30-day horizon"),
        ({"channel": "pigeon"}, "channel 'pigeon'"),
    ],
)
def test_a_bad_promise_is_refused_and_leaves_nothing_behind(
    book: Engine, change: dict[str, object], message: str
) -> None:
    with pytest.raises(PlanError, match=message):
        take_promise(book, _promise(**change), NOW)
    with book.connect() as conn:
        assert conn.execute(select(t.promise_to_pay)).first() is None
        assert conn.execute(select(t.contact_event)).first() is None


def test_a_promise_on_an_unknown_loan_is_not_found(book: Engine) -> None:
    with pytest.raises(NotFoundError):
        take_promise(book, _promise(loan_id="NOPE"), NOW)


def test_the_report_gives_the_kept_rate_by_agent_channel_and_bucket(book: Engine) -> None:
    with book.begin() as conn:
        loans = dict(conn.execute(select(t.loan.c.loan_id, t.loan.c.loan_key)).all())
        # The cycle's snapshots: P1 in M3 before the promises, P2 current; a later one must not be used.
        conn.execute(
            insert(t.delinquency_snapshot),
            [
                _snapshot(loans["P1"], date(2026, 4, 19), "M3"),
                _snapshot(loans["P2"], date(2026, 4, 19), "current"),
                _snapshot(loans["P1"], date(2026, 4, 22), "M4"),
            ],
        )
    made = [
        ("P1", "call", "agent-7", "kept"),
        ("P1", "call", "agent-7", "broken"),
        ("P1", "visit", "agent-9", "partly_kept"),
        ("P2", "app", "debtor", "kept"),
        ("P2", "call", "agent-9", "open"),
    ]
    ids = [
        take_promise(book, _promise(loan_id=loan, channel=ch, taken_by=by), NOW)["promise_id"]
        for loan, ch, by, _ in made
    ]
    with book.begin() as conn:  # what the daily cycle marks
        for promise_id, (*_, state) in zip(ids, made, strict=True):
            conn.execute(
                update(t.promise_to_pay).where(t.promise_to_pay.c.promise_id == promise_id).values(state=state)
            )
    report = promise_report(book)
    assert report["total"] == {
        "all": "all",
        "promises": 5,
        "open": 1,
        "kept": 2,
        "partly_kept": 1,
        "broken": 1,
        "kept_rate": "0.5000",
    }
    by_agent = {r["agent"]: (r["promises"], r["kept"], r["open"], r["kept_rate"]) for r in report["by_agent"]}
    assert by_agent == {"agent-7": (2, 1, 0, "0.5000"), "agent-9": (2, 0, 1, "0.0000"), "debtor": (1, 1, 0, "1.0000")}
    by_channel = {r["channel"]: (r["promises"], r["kept_rate"]) for r in report["by_channel"]}
    assert by_channel == {"app": (1, "1.0000"), "call": (3, "0.5000"), "visit": (1, "0.0000")}
    by_bucket = {r["bucket"]: (r["promises"], r["kept"], r["broken"], r["partly_kept"]) for r in report["by_bucket"]}
    assert by_bucket == {"M3": (3, 1, 1, 1), "current": (2, 1, 0, 0)}
    assert promise_report(book, due_from=date(2026, 5, 1))["total"]["promises"] == 0
    assert promise_report(book, due_from=date(2026, 5, 1))["total"]["kept_rate"] is None


def _snapshot(loan_key: int, as_of: date, bucket: str) -> dict[str, object]:
    return {
        "as_of": as_of,
        "loan_key": loan_key,
        "days_past_due": 0,
        "bucket": bucket,
        "transition": "steady",
        "overdue_total": 0,
        "outstanding_total": 0,
    }
