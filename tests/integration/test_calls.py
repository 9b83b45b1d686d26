"""The call queue on both backends, from a real demo book through the daily cycle and the rulebook gate:
tasks from allowed call actions, ordering, leases, concurrent claims, the live check before each dial,
and every outcome with its side effects and audit entries."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from duecourse.adapters.crypto import FieldCipher
from duecourse.adapters.db import tables as t
from duecourse.audit.log import entries, verify
from duecourse.compliance.calendar import HolidayCalendar
from duecourse.compliance.checks.base import CheckContext
from duecourse.compliance.rulebook import load_rulebook
from duecourse.demo.book import generate_book, write_book
from duecourse.domain.verification import CodeSigner, canonical, digest
from duecourse.services.calls import (
    CallDesk,
    CallError,
    CallOutcome,
    CallPolicy,
    create_call_tasks,
    next_task,
    queue,
    record_outcome,
    release,
    reveal,
    show,
)
from duecourse.services.compliance_gate import RulebookGate
from duecourse.services.cycle import run_cycle
from duecourse.services.importer import import_book
from duecourse.services.messages import MessageCatalogue
from duecourse.services.reports import loan_state
from duecourse.strategy import load_strategy

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2026, 9, 28)  # a Monday, no holiday in China
NOW = datetime(2026, 9, 28, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai
NIGHT = datetime(2026, 9, 28, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai: CN.HOURS forbids collection work
MESSAGES = MessageCatalogue.load(ROOT / "templates" / "messages.yaml", "http://127.0.0.1:8000/verify")


def build_book(engine: Engine, folder: Path, cipher: FieldCipher) -> list[int]:
    """Import a small demo book, run the cycle for DAY and return its allowed call actions."""
    generated = generate_book(120, DAY, seed=11, days_ahead=1)
    book = write_book(generated, folder / "book", "csv")
    report = import_book(engine, book, folder / "rejects", cipher, "test", datetime(2026, 9, 27, 20, tzinfo=UTC))
    assert report.rejected == 0
    run_cycle(engine, load_strategy(ROOT / "strategies" / "default.yaml"), gate(engine), DAY, now=NOW)
    a = t.proposed_action.c
    with engine.connect() as conn:
        keys = conn.execute(
            select(a.action_key).where(a.channel == "call", a.compliance_status == "allowed").order_by(a.action_key)
        ).scalars()
        return list(keys)


def gate(engine: Engine) -> RulebookGate:
    ctx = CheckContext(calendar=HolidayCalendar.load(ROOT / "rules" / "calendars"))
    return RulebookGate(engine, load_rulebook(ROOT / "rules"), ctx, MESSAGES)


@pytest.fixture
def desk(engine: Engine, tmp_path: Path) -> CallDesk:
    cipher = FieldCipher.from_key_file(tmp_path / "data.key")
    actions = build_book(engine, tmp_path, cipher)
    assert len(actions) >= 4, "the demo book plans several calls on its first day"
    with engine.begin() as conn:
        assert create_call_tasks(conn, actions, NOW) == len(actions)
    return CallDesk(engine, gate(engine), CodeSigner(b"k" * 32), cipher, MESSAGES)


def _tasks(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t.call_task).order_by(t.call_task.c.task_key))]


def _audit(engine: Engine, action: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [e for e in entries(conn) if e["action"] == action]


def _claim(desk: CallDesk, agent: str, now: datetime = NOW) -> Any:
    claim = next_task(desk, agent, now)
    assert claim.script is not None, claim.held_back
    return claim.script


# --- tasks and the queue ------------------------------------------------------------------------------


def test_tasks_are_made_once_per_call_action_and_only_for_calls(desk: CallDesk) -> None:
    a = t.proposed_action.c
    before = len(_tasks(desk.engine))
    with desk.engine.begin() as conn:
        calls = conn.execute(select(a.action_key).where(a.channel == "call")).scalars().all()
        others = conn.execute(select(a.action_key).where(a.channel != "call")).scalars().all()
        assert others, "the cycle planned other channels too"
        assert create_call_tasks(conn, [*calls, *others], NOW) == len(calls) - before  # blocked calls are new
        assert create_call_tasks(conn, [*calls, *others], NOW) == 0
    tasks = _tasks(desk.engine)
    assert sorted(x["action_key"] for x in tasks) == sorted(calls)
    assert {x["state"] for x in tasks} == {"queued"} and all(x["attempts"] == 0 for x in tasks)
    assert len(_audit(desk.engine, "call.queued")) == len(tasks)


def test_the_queue_serves_priority_first_then_the_earliest_scheduled(desk: CallDesk) -> None:
    tasks = _tasks(desk.engine)
    # Give two tasks of one priority different times, so both keys of the order matter.
    by_priority: dict[int, list[int]] = {}
    for x in tasks:
        by_priority.setdefault(x["priority"], []).append(x["task_key"])
    same = next(keys for keys in by_priority.values() if len(keys) >= 2)
    with desk.engine.begin() as conn:
        conn.execute(
            update(t.call_task).where(t.call_task.c.task_key == same[0]).values(scheduled_at=NOW - timedelta(minutes=5))
        )
        conn.execute(
            update(t.call_task)
            .where(t.call_task.c.task_key == same[1])
            .values(scheduled_at=NOW - timedelta(minutes=30))
        )
        rows = queue(conn, NOW)
    order = [(r["priority"], r["scheduled_at"], r["task_key"]) for r in rows]
    assert order == sorted(order) and len(rows) == len(tasks)
    assert [r["task_key"] for r in rows].index(same[1]) < [r["task_key"] for r in rows].index(same[0])
    first = _claim(desk, "A1")
    assert first.task_key == rows[0]["task_key"]


def test_a_claimed_task_is_leased_to_one_agent_until_the_lease_runs_out(desk: CallDesk) -> None:
    a = _claim(desk, "A1")
    b = _claim(desk, "A2")
    assert a.task_key != b.task_key
    with pytest.raises(CallError, match="not claimed by A2"):
        reveal(desk, a.task_key, "A2", NOW)
    later = NOW + desk.policy.lease + timedelta(minutes=1)
    release(desk.engine, b.task_key, "A2", NOW)
    taken_over = [next_task(desk, "A3", later).script for _ in range(2)]
    assert a.task_key in [s.task_key for s in taken_over if s is not None]
    expired = _audit(desk.engine, "call.lease_expired")
    assert [e["entity_id"] for e in expired] == [str(a.task_key)] and '"agent":"A1"' in expired[0]["payload"]
    with pytest.raises(CallError, match="not claimed by A1"):
        record_outcome(desk, a.task_key, "A1", CallOutcome("no_answer"), later)
    assert len(_audit(desk.engine, "call.released")) == 1


def test_agents_asking_at_once_never_get_the_same_task(desk: CallDesk) -> None:
    count = len(_tasks(desk.engine))
    got: dict[str, int | None] = {}
    start = threading.Barrier(count)

    def work(agent: str) -> None:
        start.wait()
        script = next_task(desk, agent, NOW).script
        got[agent] = None if script is None else script.task_key

    threads = [threading.Thread(target=work, args=(f"A{i}",)) for i in range(count)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    claimed = [k for k in got.values() if k is not None]
    assert len(claimed) == len(set(claimed)) == count
    tasks = _tasks(desk.engine)
    assert {(x["task_key"], x["agent"]) for x in tasks} == {(k, a) for a, k in got.items()}


# --- the script and the live check --------------------------------------------------------------------


def test_the_script_names_the_lender_the_amount_the_due_date_and_a_code_the_debtor_can_check(desk: CallDesk) -> None:
    script = _claim(desk, "A1")
    state = loan_state(desk.engine, script.loan_id, DAY)
    assert script.lender == MESSAGES.lender.name[script.language]
    assert script.overdue and script.due_date == date.fromisoformat(state["oldest_unpaid_due_date"])
    assert script.amount == int(Decimal(state["overdue_total"]) * 100)
    assert script.amount_text == f"{Decimal(state['overdue_total']):,} CNY"
    assert f"/verify?code={script.code}" in script.how_to_check and MESSAGES.lender.hotline in script.how_to_check
    with desk.engine.connect() as conn:
        code = conn.execute(
            select(t.verification_code).where(t.verification_code.c.code_digest == digest(canonical(script.code)))
        ).one()
    assert (code.purpose, code.channel, code.reference) == ("call", "call", f"call:{script.task_key}")
    # The number is masked on the script; the clear number only by asking, and the asking is audited.
    number = reveal(desk, script.task_key, "A1", NOW)
    digits = [ch for ch in number if ch.isdigit()]
    assert script.phone != number and script.phone.endswith("".join(digits[-4:]))
    assert sum(ch.isdigit() for ch in script.phone) == 4
    revealed = _audit(desk.engine, "call.number_revealed")
    assert [e["actor"] for e in revealed] == ["A1"] and number not in revealed[0]["payload"]
    assert show(desk, script.task_key)["phone"] == script.phone


def test_at_a_forbidden_hour_the_task_is_deferred_to_the_next_allowed_moment_with_the_rule(desk: CallDesk) -> None:
    claim = next_task(desk, "A1", NIGHT)
    assert claim.script is None
    tasks = len(_tasks(desk.engine))
    assert len(claim.held_back) == min(tasks, desk.policy.checks_per_claim)
    for held in claim.held_back:
        assert "CN.HOURS" in held["rules"] and "CN.HOURS" in held["reason"]
        deferred_to = datetime.fromisoformat(held["deferred_to"])
        assert datetime(2026, 9, 29, 0, 0, tzinfo=UTC) <= deferred_to <= datetime(2026, 9, 29, 1, 0, tzinfo=UTC)
    stored = _tasks(desk.engine)
    assert {x["state"] for x in stored} == {"queued"}
    assert all("CN.HOURS" in (x["deferred_rules"] or "") for x in stored)
    assert len(_audit(desk.engine, "call.deferred")) == tasks
    # Nothing is due again until the morning; then the call goes ahead.
    assert next_task(desk, "A1", NIGHT + timedelta(hours=1)).script is None
    morning = datetime(2026, 9, 29, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert (
        _claim(desk, "A1", morning).task_key
        == min(stored, key=lambda x: (x["priority"], x["scheduled_at"], x["task_key"]))["task_key"]
    )


# --- outcomes -----------------------------------------------------------------------------------------


def _event(engine: Engine, event_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(t.contact_event).where(t.contact_event.c.event_id == event_id)).one()


def test_a_promise_to_pay_is_recorded_with_its_contact_event_and_audit(desk: CallDesk) -> None:
    script = _claim(desk, "A1")
    out = record_outcome(
        desk, script.task_key, "A1", CallOutcome("promise_to_pay", Decimal("1200.00"), date(2026, 10, 5), "salary"), NOW
    )
    event = _event(desk.engine, out["event_id"])
    assert (event.channel, event.outcome, event.counterpart, event.agent) == ("call", "conversation", "debtor", "A1")
    assert event.details["result"] == "promise_to_pay" and event.details["note"] == "salary"
    with desk.engine.connect() as conn:
        promise = conn.execute(select(t.promise_to_pay)).one()
    assert (promise.amount, promise.currency, promise.due_date) == (120_000, "CNY", date(2026, 10, 5))
    assert (promise.channel, promise.taken_by, promise.state, promise.event_id) == (
        "call",
        "A1",
        "open",
        event.event_id,
    )
    assert promise.promise_id == out["promise_id"]
    task = show(desk, script.task_key)
    assert (task["state"], task["result"], task["attempts"]) == ("closed", "promise_to_pay", 1)
    assert [p["promise_id"] for p in task["promises"]] == [promise.promise_id]
    assert [e["entity_id"] for e in _audit(desk.engine, "promise.taken")] == [promise.promise_id]
    assert [e["entity_id"] for e in _audit(desk.engine, "call.outcome")] == [str(script.task_key)]


@pytest.mark.parametrize(
    ("amount", "day", "problem"),
    [
        (Decimal("0"), date(2026, 10, 5), "positive"),
        (Decimal("-5.00"), date(2026, 10, 5), "positive"),
        (Decimal("10.001"), date(2026, 10, 5), "more decimals"),
        (Decimal("100.00"), date(2026, 10, 29), "horizon"),
        (Decimal("100.00"), date(2026, 9, 27), "horizon"),
        (None, date(2026, 10, 5), "needs an amount"),
    ],
)
def test_a_promise_outside_the_policy_is_refused_and_nothing_is_written(
    desk: CallDesk, amount: Decimal | None, day: date, problem: str
) -> None:
    script = _claim(desk, "A1")
    with pytest.raises(CallError, match=problem):
        record_outcome(desk, script.task_key, "A1", CallOutcome("promise_to_pay", amount, day), NOW)
    with desk.engine.connect() as conn:
        assert conn.execute(select(t.promise_to_pay)).first() is None
        assert conn.execute(select(t.contact_event)).first() is None
    assert show(desk, script.task_key)["state"] == "claimed"


def test_a_dispute_holds_the_loan_and_the_next_check_closes_its_other_tasks(desk: CallDesk) -> None:
    script = _claim(desk, "A1")
    out = record_outcome(desk, script.task_key, "A1", CallOutcome("dispute", note="says it was repaid"), NOW)
    with desk.engine.connect() as conn:
        hold = conn.execute(select(t.hold).where(t.hold.c.hold_id == out["hold_id"])).one()
        loan_key = conn.execute(select(t.loan.c.loan_key).where(t.loan.c.loan_id == script.loan_id)).scalar_one()
    assert (hold.kind, hold.loan_key, hold.start_date, hold.end_date) == ("dispute", loan_key, DAY, None)
    assert hold.pauses_clock and hold.pauses_outreach
    assert _event(desk.engine, out["event_id"]).outcome == "conversation"
    assert [e["entity_id"] for e in _audit(desk.engine, "hold.opened")] == [hold.hold_id]
    assert loan_state(desk.engine, script.loan_id, DAY)["holds"][0]["kind"] == "dispute"
    # A later call planned for the held loan (as the next cycle would plan one) is closed by the live check.
    a = t.proposed_action
    with desk.engine.begin() as conn:
        conn.execute(update(t.call_task).where(t.call_task.c.state == "queued").values(state="closed", result="test"))
        planned = (
            conn.execute(select(a).where(a.c.loan_key == loan_key, a.c.channel == "call").limit(1)).one()._asdict()
        )
        planned.pop("action_key")
        planned["idempotency_key"] += ":again"
        again = conn.execute(a.insert().values(planned)).inserted_primary_key[0]
        assert create_call_tasks(conn, [again], NOW) == 1
    claim = next_task(desk, "A2", NOW)
    assert claim.script is None and [h["closed"] for h in claim.held_back] == ["held"]


@pytest.mark.parametrize(
    ("result", "column", "action"),
    [
        ("asked_to_stop", "consent", "contact_point.consent_withdrawn"),
        ("wrong_party", "valid", "contact_point.invalidated"),
    ],
)
def test_stop_and_wrong_party_take_the_number_out_of_use(desk: CallDesk, result: str, column: str, action: str) -> None:
    script = _claim(desk, "A1")
    out = record_outcome(desk, script.task_key, "A1", CallOutcome(result), NOW)
    contact_key = int(out["contact"].removeprefix("cp:"))
    with desk.engine.connect() as conn:
        point = conn.execute(select(t.contact_point).where(t.contact_point.c.contact_key == contact_key)).one()
    assert getattr(point, column) is False
    event = _event(desk.engine, out["event_id"])
    expected = ("conversation", "debtor") if result == "asked_to_stop" else ("connected", "other")
    assert (event.outcome, event.counterpart, event.address) == (*expected, out["contact"])
    assert [e["entity_id"] for e in _audit(desk.engine, action)] == [str(contact_key)]
    assert show(desk, script.task_key)["state"] == "closed"


@pytest.mark.parametrize("result", ["conversation", "refusal"])
def test_a_conversation_or_refusal_closes_the_task_with_its_event(desk: CallDesk, result: str) -> None:
    script = _claim(desk, "A1")
    out = record_outcome(desk, script.task_key, "A1", CallOutcome(result), NOW)
    event = _event(desk.engine, out["event_id"])
    assert (event.outcome, event.details["result"]) == ("conversation", result)
    assert (out["state"], show(desk, script.task_key)["result"]) == ("closed", result)


@pytest.mark.parametrize("result", ["no_answer", "voicemail"])
def test_an_unanswered_call_is_retried_after_the_policy_delay_until_attempts_run_out(
    desk: CallDesk, result: str
) -> None:
    desk = replace(desk, policy=CallPolicy(retry_after=timedelta(hours=3), max_attempts=2))
    script = _claim(desk, "A1")
    with desk.engine.begin() as conn:  # only this task in the queue, so every claim below is this task
        conn.execute(
            update(t.call_task).where(t.call_task.c.task_key != script.task_key).values(state="closed", result="test")
        )
    first = record_outcome(desk, script.task_key, "A1", CallOutcome(result), NOW)
    assert (first["state"], first["retry_at"]) == ("queued", (NOW + timedelta(hours=3)).isoformat())
    assert _event(desk.engine, first["event_id"]).outcome == result
    assert next_task(desk, "A1", NOW + timedelta(hours=2)).script is None
    again = _claim(desk, "A1", NOW + timedelta(hours=3))
    assert again.task_key == script.task_key and again.attempts == 1
    second = record_outcome(desk, script.task_key, "A1", CallOutcome(result), NOW + timedelta(hours=3))
    assert (second["state"], second["attempts"], second["retry_at"]) == ("closed", 2, None)
    assert next_task(desk, "A1", NOW + timedelta(hours=8)).script is None
    assert [e["entity_id"] for e in _audit(desk.engine, "call.outcome")] == [str(script.task_key)] * 2


def test_every_step_is_in_an_audit_chain_that_verifies(desk: CallDesk) -> None:
    script = _claim(desk, "A1")
    reveal(desk, script.task_key, "A1", NOW)
    record_outcome(desk, script.task_key, "A1", CallOutcome("asked_to_stop"), NOW)
    next_task(desk, "A1", NIGHT)
    with desk.engine.connect() as conn:
        checked, broken = verify(conn)
    assert checked > 0 and broken is None
    actions = {e["action"] for e in _audit_all(desk.engine)}
    assert {"call.queued", "call.claimed", "call.cleared", "call.number_revealed", "call.outcome"} <= actions
    assert {"contact_point.consent_withdrawn", "call.deferred"} <= actions


def _audit_all(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return list(entries(conn))
