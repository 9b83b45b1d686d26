"""The shared contact-event recorder on both backends: idempotent by event id, one vocabulary, read back as
the compliance history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import polars as pl
import pytest
from sqlalchemy import Engine, func, insert, select

from duecourse.adapters.db import tables as t
from duecourse.compliance.facts import HISTORY
from duecourse.services.contacts import ContactEvent, contact_history, record_contacts

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def _borrower_with_loan(engine: Engine, n: int) -> tuple[int, int]:
    with engine.begin() as conn:
        if conn.execute(select(t.product.c.code).where(t.product.c.code == "P")).first() is None:
            conn.execute(insert(t.product).values(code="P", currency="CNY", conventions={}))
        b = conn.execute(
            insert(t.borrower).values(
                borrower_id=f"B{n}", name_enc=b"x", national_id_enc=b"x", language="zh-CN", flags="", region="CN"
            )
        ).inserted_primary_key[0]
        loan = conn.execute(
            insert(t.loan).values(
                loan_id=f"L{n}",
                borrower_key=b,
                product="P",
                currency="CNY",
                principal=100_00,
                annual_rate=0,
                penalty_rate=0,
                term=1,
                start_date=date(2026, 1, 1),
                method="bullet",
            )
        ).inserted_primary_key[0]
    return int(b), int(loan)


def test_recording_twice_stores_each_event_once_and_reads_back_as_history(engine: Engine) -> None:
    b1, loan1 = _borrower_with_loan(engine, 1)
    b2, _ = _borrower_with_loan(engine, 2)
    beijing = timezone(timedelta(hours=8))
    events = [
        ContactEvent(
            "call:1:1",
            b1,
            datetime(2026, 11, 30, 10, 0, tzinfo=beijing),
            "call",
            "conversation",
            loan_key=loan1,
            address="cp:7",
            agent="A1",
            details={"result": "promise_to_pay"},
        ),
        ContactEvent("sms:1", b1, NOW - timedelta(days=2), "sms", "delivered", provider_message_id="m-1"),
        ContactEvent("sms:2", b2, NOW - timedelta(days=40), "sms", "delivered"),
    ]
    with engine.begin() as conn:
        assert record_contacts(conn, events, NOW) == 3
    with engine.begin() as conn:
        assert record_contacts(conn, [*events, ContactEvent("sms:3", b2, NOW, "email", "failed")], NOW) == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.contact_event)).scalar_one() == 4
        stored = conn.execute(select(t.contact_event).where(t.contact_event.c.event_id == "call:1:1")).one()
        history = contact_history(conn, [b1, b2], NOW - timedelta(days=30))
    assert stored.details == {"result": "promise_to_pay"} and stored.agent == "A1"
    assert history.schema == pl.Schema({"borrower_key": pl.Int64(), **HISTORY})
    assert history.select("borrower_key", "channel", "outcome").rows() == [
        (b1, "sms", "delivered"),
        (b1, "call", "conversation"),  # 10:00 in Beijing is 02:00 UTC, after the sms two days before
        (b2, "email", "failed"),
    ]
    call = history.row(1, named=True)
    assert call["at"] == datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    assert call["debts"] == ["L1"] and call["address"] == "cp:7" and call["proposal_id"] is None
    assert history.row(0, named=True)["debts"] == []


def test_no_history_is_an_empty_frame_of_the_same_shape(engine: Engine) -> None:
    b, _ = _borrower_with_loan(engine, 3)
    with engine.connect() as conn:
        history = contact_history(conn, [b], NOW)
    assert history.is_empty() and history.schema == pl.Schema({"borrower_key": pl.Int64(), **HISTORY})


@pytest.mark.parametrize(
    ("field", "value"),
    [("channel", "telegram"), ("outcome", "promise_to_pay"), ("counterpart", "neighbour"), ("initiated_by", "bot")],
)
def test_a_word_outside_the_compliance_vocabulary_is_refused_naming_the_field(field: str, value: str) -> None:
    fields = {"channel": "call", "outcome": "conversation", "counterpart": "debtor", "initiated_by": "collector"}
    with pytest.raises(ValueError, match=field):
        ContactEvent("e", 1, NOW, **{**fields, field: value})


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ContactEvent("e", 1, datetime(2026, 11, 30, 10), "call", "conversation")
