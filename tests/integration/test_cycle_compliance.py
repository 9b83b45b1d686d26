"""The daily cycle with the rulebook gate, on both backends: every proposal decided, blocks kept with their
rules, holiday blocks rescheduled to the next allowed moment, nothing allowed that a rule forbids."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from sqlalchemy import Engine, select

from duecourse.adapters.crypto import FieldCipher
from duecourse.adapters.db import tables as t
from duecourse.compliance.calendar import HolidayCalendar
from duecourse.compliance.checks.base import CheckContext
from duecourse.compliance.rulebook import load_rulebook
from duecourse.demo.book import generate_book, write_book
from duecourse.services.compliance_gate import RulebookGate
from duecourse.services.contacts import ContactEvent, record_contacts
from duecourse.services.cycle import run_cycle
from duecourse.services.importer import import_book
from duecourse.services.messages import MessageCatalogue
from duecourse.strategy import load_strategy

ROOT = Path(__file__).resolve().parents[2]
STRATEGY = load_strategy(ROOT / "strategies" / "default.yaml")
BOOK = load_rulebook(ROOT / "rules")
CTX = CheckContext(calendar=HolidayCalendar.load(ROOT / "rules" / "calendars"))
MESSAGES = MessageCatalogue.load(ROOT / "templates" / "messages.yaml")
START = date(2026, 9, 28)
BOOK_ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def demo_book(engine: Engine, tmp_path: Path) -> Engine:
    generated = generate_book(300, START, seed=11, days_ahead=1)
    folder = write_book(generated, tmp_path / "book", "csv")
    cipher = FieldCipher.from_key_file(tmp_path / "key")
    report = import_book(engine, folder, tmp_path / "rejects", cipher, "test", datetime(2026, 9, 28, 20, tzinfo=UTC))
    assert report.rejected == 0
    return engine


def _actions(engine: Engine, day: date) -> list[dict[str, object]]:
    a = t.proposed_action
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                a.c.channel,
                a.c.compliance_status,
                a.c.compliance_rules,
                a.c.compliance_reason,
                a.c.scheduled_at,
                a.c.rulebook_version,
            ).where(a.c.as_of == day)
        ).all()
    return [dict(r._mapping) for r in rows]


def test_a_working_day_allows_lawful_contacts_and_keeps_blocks_with_their_rules(demo_book: Engine) -> None:
    gate = RulebookGate(demo_book, BOOK, CTX, MESSAGES)
    day = date(2026, 9, 28)  # a Monday, no holiday
    summary = run_cycle(demo_book, STRATEGY, gate, day, now=datetime(2026, 9, 28, 21, tzinfo=UTC))
    actions = _actions(demo_book, day)
    assert actions, "the demo book has delinquent loans to treat"
    statuses = {a["compliance_status"] for a in actions}
    assert "allowed" in statuses and statuses <= {"allowed", "blocked"}
    assert all(a["rulebook_version"] == BOOK.version for a in actions)
    for a in actions:
        if a["compliance_status"] == "allowed":
            assert a["compliance_rules"] is None and a["scheduled_at"] is not None
        else:
            rules = str(a["compliance_rules"]).split(",")
            assert rules and all(r in str(a["compliance_reason"]) for r in rules)
    internal = [a for a in actions if a["channel"] in ("legal", "agency", "none")]
    assert all(a["compliance_status"] == "blocked" for a in internal), "no rule can allow an internal step"
    assert sum(summary.blocks_by_rule.values()) >= sum(1 for a in actions if a["compliance_status"] == "blocked")


def test_a_statutory_holiday_reschedules_contacts_to_the_next_working_day(demo_book: Engine) -> None:
    gate = RulebookGate(demo_book, BOOK, CTX, MESSAGES)
    day = date(2026, 10, 1)  # National Day: 1–7 October 2026 are days off (rules/calendars/CN.csv)
    run_cycle(demo_book, STRATEGY, gate, day, now=datetime(2026, 10, 1, 21, tzinfo=UTC))
    actions = _actions(demo_book, day)
    contacts = [a for a in actions if a["channel"] not in ("legal", "agency", "none")]
    assert contacts and not any(a["compliance_status"] == "allowed" for a in contacts)
    rescheduled = [a for a in contacts if a["compliance_status"] == "rescheduled"]
    assert rescheduled, "a holiday block alone is rescheduled, not dropped"
    for a in rescheduled:
        assert a["compliance_rules"] == "HOUSE.HOLIDAYS"
        when = a["scheduled_at"]
        assert isinstance(when, datetime)
        local = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(BOOK_ZONE)
        assert CTX.calendar.is_off_day("CN", local.date()) is False
        assert local.date() > date(2026, 10, 7)


@dataclass(frozen=True)
class _CapturingGate(RulebookGate):
    """The real gate, keeping what the cycle asked it so a test can ask again with other facts."""

    asked: list[pl.DataFrame] = field(default_factory=list)

    def review(self, proposals: pl.DataFrame, as_of: date, at: datetime | None = None) -> pl.DataFrame:
        self.asked.append(proposals)
        return super().review(proposals, as_of, at)


def _asked_calls(engine: Engine, day: date) -> tuple[_CapturingGate, pl.DataFrame]:
    gate = _CapturingGate(engine, BOOK, CTX, MESSAGES)
    run_cycle(engine, STRATEGY, gate, day, now=datetime.combine(day, time(21), UTC), dry_run=True)
    asked = gate.asked[0]
    allowed = gate.review(asked, day).filter((pl.col("channel") == "call") & (pl.col("compliance_status") == "allowed"))
    assert allowed.height > 0, "the demo book has calls allowed on a working day"
    return gate, asked


def _phone_of(engine: Engine, borrower_key: int) -> int:
    p = t.contact_point
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(p.c.contact_key)
                .where(p.c.borrower_key == borrower_key, p.c.kind == "phone", p.c.owner == "borrower")
                .where(p.c.valid, p.c.consent)
                .order_by(p.c.contact_key)
            )
            .scalars()
            .first()
        )


@pytest.mark.parametrize(("dials", "status"), [(5, "allowed"), (6, "blocked")])
def test_recorded_unanswered_dials_count_against_the_daily_cap(demo_book: Engine, dials: int, status: str) -> None:
    day = date(2026, 9, 28)
    gate, asked = _asked_calls(demo_book, day)
    allowed = gate.review(asked, day).filter((pl.col("channel") == "call") & (pl.col("compliance_status") == "allowed"))
    loan_key, borrower_key = allowed.row(0, named=True)["loan_key"], allowed.row(0, named=True)["borrower_key"]
    phone = _phone_of(demo_book, borrower_key)
    events = [
        ContactEvent(
            event_id=f"test:dial:{i}",
            borrower_key=borrower_key,
            at=datetime.combine(day, time(8, 30 + i), BOOK_ZONE),
            channel="call",
            outcome="no_answer",
            address=f"cp:{phone}",
            loan_key=loan_key,
        )
        for i in range(dials)
    ]
    with demo_book.begin() as conn:
        assert record_contacts(conn, events, datetime(2026, 9, 28, 2, tzinfo=UTC)) == dials
    again = gate.review(asked, day).filter(pl.col("loan_key") == loan_key).row(0, named=True)
    assert again["compliance_status"] == status
    if status == "blocked":
        assert "CN.FREQ.ATTEMPTS" in again["compliance_rules"].split(",")


def test_asked_at_a_given_moment_a_late_evening_call_waits_for_the_morning(demo_book: Engine) -> None:
    day = date(2026, 9, 28)
    gate, asked = _asked_calls(demo_book, day)
    late = datetime.combine(day, time(22, 30), BOOK_ZONE)
    calls = gate.review(asked, day, at=late).filter(pl.col("channel") == "call")
    assert calls.height > 0 and set(calls.get_column("compliance_status")) <= {"rescheduled", "blocked"}
    rescheduled = calls.filter(pl.col("compliance_status") == "rescheduled")
    assert rescheduled.height > 0
    assert all("CN.HOURS" in r.split(",") for r in rescheduled.get_column("compliance_rules"))
    for moment in rescheduled.get_column("scheduled_at"):
        local = moment.astimezone(BOOK_ZONE)
        assert local > late and time(8) < local.time() < time(22)


def test_a_door_visit_candidate_is_decided_on_whether_to_visit_and_leaves_its_arrangements_for_later(
    demo_book: Engine,
) -> None:
    day = date(2026, 9, 28)
    gate, asked = _asked_calls(demo_book, day)
    row = asked.filter(pl.col("channel") == "call").head(1)
    visit = row.with_columns(
        channel=pl.lit("visit"),
        template=pl.lit("visit.agree_a_way_out"),
        days_past_due=pl.lit(75, pl.Int32),
        overdue_total=pl.lit(800_000, pl.Int64),
    )
    first = gate.review(visit, day).row(0, named=True)
    # Remote contact has not been tried and failed: the house's last-resort rule refuses the visit today;
    # the rules about the team, the notice, identification and recording are not asked yet.
    assert first["compliance_status"] == "blocked"
    assert first["compliance_rules"].split(",") == ["HOUSE.VISIT.LAST_RESORT"]
    phone = _phone_of(demo_book, first["borrower_key"])
    dials = [
        ContactEvent(
            event_id=f"test:visit-dial:{i}",
            borrower_key=first["borrower_key"],
            at=datetime.combine(day - timedelta(days=3 * i + 1), time(10), BOOK_ZONE),
            channel="call",
            outcome="no_answer",
            address=f"cp:{phone}",
        )
        for i in range(3)
    ]
    with demo_book.begin() as conn:
        record_contacts(conn, dials, datetime(2026, 9, 28, 2, tzinfo=UTC))
    planned = gate.review(visit, day).row(0, named=True)
    assert planned["compliance_status"] == "allowed"
    assert planned["compliance_reason"].startswith("door-visit candidate allowed for planning")
