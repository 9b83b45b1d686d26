"""The agent work queue for calls: tasks from allowed call actions, a live compliance check before each dial,
and the call's outcome recorded with its effects (promise, dispute hold, opt-out, wrong number) and audit."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Connection, Engine, func, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from duecourse.adapters.db import tables as t
from duecourse.audit.chain import AuditRecord, as_utc
from duecourse.audit.log import append
from duecourse.compliance.port import CompliancePort
from duecourse.domain.errors import DueCourseError, NotFoundError, PlanError
from duecourse.domain.money import format_money
from duecourse.domain.verification import CodeSigner, display
from duecourse.ledger.engine import ledger_state
from duecourse.services.book_frames import load_book
from duecourse.services.contacts import ContactEvent, record_contacts
from duecourse.services.cycle import loan_facts
from duecourse.services.messages import MessageCatalogue
from duecourse.services.promises import promised_amount, store_promise
from duecourse.services.verification import CodeRequest, issue

# What an agent can record, and the compliance outcome and counterpart each is counted as in the contact
# history (compliance/facts.py): a promise, a dispute, a refusal or a request to stop all happen in a
# conversation with the debtor; a wrong party answered, so the line connected, to someone else.
RESULTS: Final = {
    "conversation": ("conversation", "debtor"),
    "no_answer": ("no_answer", "debtor"),
    "voicemail": ("voicemail", "debtor"),
    "wrong_party": ("connected", "other"),
    "promise_to_pay": ("conversation", "debtor"),
    "dispute": ("conversation", "debtor"),
    "refusal": ("conversation", "debtor"),
    "asked_to_stop": ("conversation", "debtor"),
}
RETRIED: Final = ("no_answer", "voicemail")  # the debtor was not reached: try again later, within the rules


# ADBC bundles its own SQLite library (adapters/db/bulk.py `read_frame`): opening the file while this process
# holds a write transaction on it can reset the write-ahead log index under the writer. The live check reads
# through ADBC, so on SQLite the queue's transactions and live checks take turns within the process.
_SQLITE_TURNS = threading.Lock()


def _turn(engine: Engine) -> AbstractContextManager[Any]:
    return _SQLITE_TURNS if engine.dialect.name == "sqlite" else nullcontext()


class CallError(DueCourseError):
    """A call-queue request that cannot be done as asked (not this agent's task, a bad promise …)."""


@dataclass(frozen=True)
class CallPolicy:
    """House policy for the queue (not law: the rules still decide every dial at the moment it happens)."""

    lease: timedelta = timedelta(minutes=20)  # how long a claimed task stays with its agent
    retry_after: timedelta = timedelta(hours=4)  # a no-answer is tried again no sooner than this
    max_attempts: int = 3  # calls placed before a task closes unanswered
    promise_horizon_days: int = 30  # a promise further out than this is a plan (issue 5), not a promise
    checks_per_claim: int = 25  # tasks live-checked for one `next` before the agent is told to wait


class Decrypter(Protocol):
    """The field cipher (adapters/crypto.py), seen through the one method the queue needs."""

    def decrypt(self, token: bytes, field: str) -> str: ...


@dataclass(frozen=True)
class CallDesk:
    """What the queue needs besides the database: the live gate, the code signer, the cipher for numbers and
    the lender's identity for the script."""

    engine: Engine
    gate: CompliancePort  # decides the one call at the moment it would be made (review(..., at=now))
    signer: CodeSigner
    cipher: Decrypter
    messages: MessageCatalogue
    policy: CallPolicy = field(default_factory=CallPolicy)


@dataclass(frozen=True)
class CallScript:
    """What the agent sees before dialling: who calls, for how much, since when, and the code to read out."""

    task_key: int
    loan_id: str
    lender: str
    language: str
    amount: int  # minor units
    currency: str
    amount_text: str
    due_date: date | None
    overdue: bool
    code: str  # XXXX-XXXX-XXXX-XXXX, to read out; shown once, only its digest is stored
    how_to_check: str
    phone: str  # masked unless revealed
    attempts: int
    lease_until: datetime

    def to_json(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, date | datetime) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Claim:
    """The result of asking for the next call: a script to call now, and the tasks the live check held back."""

    script: CallScript | None
    held_back: list[dict[str, Any]]


@dataclass(frozen=True)
class CallOutcome:
    result: str  # one of RESULTS
    amount: Decimal | None = None  # a promise, in major units of the loan's currency (exact)
    promise_date: date | None = None
    note: str | None = None


# --- creating tasks -----------------------------------------------------------------------------------


def create_call_tasks(
    conn: Connection, action_keys: Sequence[int], now: datetime, actor: str = "system:dispatch"
) -> int:
    """One queued task per `call` action among `action_keys` that has none yet (one INSERT … SELECT); returns
    how many were created. The action's planned moment (or now) is the earliest time it may be dialled."""
    if not action_keys:
        return 0
    a = t.proposed_action
    source = (
        select(
            a.c.action_key,
            t.loan.c.borrower_key,
            a.c.loan_key,
            a.c.priority,
            literal("queued").label("state"),
            func.coalesce(a.c.scheduled_at, literal(_utc(now), t.call_task.c.scheduled_at.type)).label("scheduled_at"),
            literal(0).label("attempts"),
            literal(_utc(now), t.call_task.c.created_at.type).label("created_at"),
        )
        .select_from(a.join(t.loan, t.loan.c.loan_key == a.c.loan_key))
        .where(a.c.action_key.in_([int(k) for k in action_keys]), a.c.channel == "call")
    )
    columns = ["action_key", "borrower_key", "loan_key", "priority", "state", "scheduled_at", "attempts", "created_at"]
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = (
        dialect_insert(t.call_task)
        .from_select(columns, source)
        .on_conflict_do_nothing(index_elements=["action_key"])
        .returning(t.call_task.c.task_key, t.call_task.c.action_key)
    )
    created = conn.execute(stmt).all()
    append(
        conn,
        [
            AuditRecord(
                actor,
                "dispatch",
                "call.queued",
                "call_task",
                str(r.task_key),
                "allowed call action",
                {"action_key": r.action_key},
            )
            for r in created
        ],
        now,
    )
    return len(created)


# --- the queue ----------------------------------------------------------------------------------------


def queue(conn: Connection, now: datetime, include_closed: bool = False) -> list[dict[str, Any]]:
    """Tasks in the order agents are served: priority (1 first), then scheduled time, then age."""
    c = t.call_task.c
    q = (
        select(
            c.task_key,
            c.state,
            c.priority,
            c.scheduled_at,
            c.attempts,
            c.agent,
            c.lease_until,
            c.result,
            c.deferred_rules,
            c.deferred_reason,
            t.loan.c.loan_id,
        )
        .select_from(t.call_task.join(t.loan, t.loan.c.loan_key == c.loan_key))
        .order_by(c.priority, c.scheduled_at, c.task_key)
    )
    if not include_closed:
        q = q.where(c.state != "closed")
    rows = [dict(r._mapping) for r in conn.execute(q)]
    for r in rows:
        r["scheduled_at"] = as_utc(r["scheduled_at"])
        r["lease_until"] = None if r["lease_until"] is None else as_utc(r["lease_until"])
        r["due"] = r["state"] == "queued" and r["scheduled_at"] <= _utc(now)
    return rows


def expire_leases(conn: Connection, now: datetime) -> int:
    """Return tasks whose agent's lease ran out to the queue (audited); returns how many."""
    c = t.call_task.c
    expired = conn.execute(
        update(t.call_task)
        .where(c.state == "claimed", c.lease_until < _utc(now))
        .values(state="queued", lease_until=None)
        .returning(c.task_key, c.agent)
    ).all()
    append(
        conn,
        [
            AuditRecord(
                "system:calls",
                "calls",
                "call.lease_expired",
                "call_task",
                str(r.task_key),
                "the agent's lease ran out",
                {"agent": r.agent},
            )
            for r in expired
        ],
        now,
    )
    return len(expired)


def next_task(desk: CallDesk, agent: str, now: datetime, origin: str = "cli") -> Claim:
    """Claim the most urgent due task for `agent` and, if the rules allow a call to it at `now`, issue its
    verification code and return the script. Tasks the rules forbid now are deferred to the next allowed
    moment (or closed when no moment is allowed) with the rule and reason, and the next task is tried.

    The claim commits before the live check: the gate reads on its own connections, which on SQLite would
    wait behind a write transaction held open here."""
    held_back: list[dict[str, Any]] = []
    for _ in range(desk.policy.checks_per_claim):
        with _turn(desk.engine):
            with desk.engine.begin() as conn:
                expire_leases(conn, now)
                task = _claim_one(conn, agent, now, desk.policy.lease, origin)
            if task is None:
                return Claim(None, held_back)
            verdict = _live_check(desk, task, now)
            with desk.engine.begin() as conn:
                _held_by(conn, task.task_key, agent, now)  # still ours: nobody took it over meanwhile
                if verdict["status"] == "allowed":
                    return Claim(_clear_to_dial(desk, conn, task, verdict, agent, now, origin), held_back)
                held_back.append(_hold_back(conn, task, verdict, agent, now, origin))
    return Claim(None, held_back)


def _claim_one(conn: Connection, agent: str, now: datetime, lease: timedelta, origin: str) -> Any:
    c = t.call_task.c
    q = (
        select(t.call_task)
        .where(c.state == "queued", c.scheduled_at <= _utc(now))
        .order_by(c.priority, c.scheduled_at, c.task_key)
        .limit(1)
    )
    if conn.dialect.name == "postgresql":
        # Two agents asking at once each get a different task; SQLite serialises writers at BEGIN IMMEDIATE.
        q = q.with_for_update(skip_locked=True)
    task = conn.execute(q).first()
    if task is None:
        return None
    lease_until = _utc(now + lease)
    conn.execute(
        update(t.call_task)
        .where(c.task_key == task.task_key)
        .values(state="claimed", agent=agent, lease_until=lease_until)
    )
    append(
        conn,
        [
            AuditRecord(
                agent,
                origin,
                "call.claimed",
                "call_task",
                str(task.task_key),
                "next in the queue",
                {"lease_until": lease_until},
            )
        ],
        now,
    )
    return task


def _live_check(desk: CallDesk, task: Any, now: datetime) -> dict[str, Any]:
    """Decide the one call at `now`: the debt still owing, no hold pausing outreach, a number to call, and
    every compliance rule allowing the moment (judged in the debtor's own time zone by the gate)."""
    with desk.engine.connect() as conn:
        point = _phone(conn, task.borrower_key)
    if point is None:
        return {"status": "closed", "result": "no_number", "reason": "no valid phone number with consent"}
    day = now.astimezone(ZoneInfo(point.time_zone)).date()
    facts = _facts(desk.engine, task, day)
    if facts.is_empty() or facts.item(0, "outstanding_total") <= 0:
        return {"status": "closed", "result": "settled", "reason": "nothing is owed any more"}
    if facts.item(0, "has_outreach_hold"):
        return {"status": "closed", "result": "held", "reason": "a hold pauses outreach on this debt"}
    reviewed = desk.gate.review(facts, day, at=now).row(0, named=True)
    return {
        "status": reviewed["compliance_status"],
        "result": "blocked",
        "rules": reviewed["compliance_rules"],
        "reason": reviewed["compliance_reason"],
        "next_at": reviewed["scheduled_at"],
        "point": point,
        "facts": facts.row(0, named=True),
    }


def _phone(conn: Connection, borrower_key: int) -> Any:
    """The number to dial: the debtor's own first valid phone with consent (the one the gate checks too)."""
    p = t.contact_point.c
    return conn.execute(
        select(p.contact_key, p.value_enc, p.time_zone)
        .where(p.borrower_key == borrower_key, p.kind == "phone", p.owner == "borrower", p.valid, p.consent)
        .order_by(p.contact_key)
        .limit(1)
    ).first()


def _facts(engine: Engine, task: Any, day: date) -> pl.DataFrame:
    """The one call as the gate expects a cycle proposal joined with its facts (services/cycle.py `loan_facts`)."""
    book = load_book(engine, day, [task.loan_key])
    state = ledger_state(book.loans, book.instalments, book.payments, book.holds, book.conventions, day)
    return loan_facts(book, state, day).with_columns(
        channel=pl.lit("call"),
        template=pl.lit(None, pl.String),
        action_key=pl.lit(int(task.action_key), pl.Int64),
    )


def _hold_back(
    conn: Connection, task: Any, verdict: dict[str, Any], agent: str, now: datetime, origin: str
) -> dict[str, Any]:
    """A task the live check refused: deferred to the next allowed moment, or closed when there is none."""
    c = t.call_task.c
    later = verdict["status"] == "rescheduled" and verdict.get("next_at") is not None
    values: dict[str, Any] = {
        "agent": None,
        "lease_until": None,
        "deferred_rules": verdict.get("rules"),
        "deferred_reason": verdict["reason"],
    }
    if later:
        values |= {"state": "queued", "scheduled_at": _utc(verdict["next_at"])}
    else:
        values |= {"state": "closed", "result": verdict["result"], "closed_at": _utc(now)}
    conn.execute(update(t.call_task).where(c.task_key == task.task_key).values(**values))
    shown = {
        "task_key": task.task_key,
        "deferred_to": _utc(verdict["next_at"]).isoformat() if later else None,
        "closed": None if later else verdict["result"],
        "rules": verdict.get("rules"),
        "reason": verdict["reason"],
    }
    action = "call.deferred" if later else "call.closed"
    append(conn, [AuditRecord(agent, origin, action, "call_task", str(task.task_key), verdict["reason"], shown)], now)
    return shown


def _clear_to_dial(
    desk: CallDesk, conn: Connection, task: Any, verdict: dict[str, Any], agent: str, now: datetime, origin: str
) -> CallScript:
    facts, point = verdict["facts"], verdict["point"]
    language = "zh" if str(facts["language"]).startswith("zh") else "en"
    lender = desk.messages.lender.name[language]
    code = issue(
        conn,
        desk.signer,
        CodeRequest("call", "call", task.borrower_key, lender, task.loan_key, task.action_key, f"call:{task.task_key}"),
        now,
    )
    lease_until = _utc(now + desk.policy.lease)
    conn.execute(
        update(t.call_task)
        .where(t.call_task.c.task_key == task.task_key)
        .values(contact_key=point.contact_key, deferred_rules=None, deferred_reason=None, lease_until=lease_until)
    )
    append(
        conn,
        [
            AuditRecord(
                agent,
                origin,
                "call.cleared",
                "call_task",
                str(task.task_key),
                verdict["reason"],
                {"contact": f"cp:{point.contact_key}", "lease_until": lease_until, "code_issued": True},
            )
        ],
        now,
    )
    overdue = facts["days_past_due"] > 0
    shown = display(code)
    return CallScript(
        task_key=task.task_key,
        loan_id=facts["loan_id"],
        lender=lender,
        language=language,
        amount=facts["overdue_total"] if overdue else facts["next_due_amount"],
        currency=facts["currency"],
        amount_text=format_money(facts["overdue_total"] if overdue else facts["next_due_amount"], facts["currency"]),
        due_date=facts["oldest_unpaid_due_date"] if overdue else facts["next_due_date"],
        overdue=overdue,
        code=shown,
        how_to_check=f"{desk.messages.verify_url}?code={shown} or the official hotline {desk.messages.lender.hotline}",
        phone=mask(desk.cipher.decrypt(point.value_enc, "contact_point.value_enc")),
        attempts=task.attempts,
        lease_until=lease_until,
    )


def mask(number: str) -> str:
    """All but the last four digits hidden: enough for the agent to confirm, not to copy."""
    digits = sum(ch.isdigit() for ch in number)
    seen = 0
    out = []
    for ch in number:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen > digits - 4 else "•")
        else:
            out.append(ch)
    return "".join(out)


def release(engine: Engine, task_key: int, agent: str, now: datetime, origin: str = "cli") -> None:
    """Give a claimed task back to the queue without calling (audited)."""
    with _turn(engine), engine.begin() as conn:
        _held_by(conn, task_key, agent, now)
        conn.execute(
            update(t.call_task).where(t.call_task.c.task_key == task_key).values(state="queued", lease_until=None)
        )
        append(conn, [AuditRecord(agent, origin, "call.released", "call_task", str(task_key), "released", {})], now)


def reveal(desk: CallDesk, task_key: int, agent: str, now: datetime, origin: str = "cli") -> str:
    """The number in clear for the agent holding the task; every reveal is an audit entry."""
    with _turn(desk.engine), desk.engine.begin() as conn:
        task = _held_by(conn, task_key, agent, now)
        token = conn.execute(
            select(t.contact_point.c.value_enc).where(t.contact_point.c.contact_key == task.contact_key)
        ).scalar_one()
        append(
            conn,
            [
                AuditRecord(
                    agent,
                    origin,
                    "call.number_revealed",
                    "call_task",
                    str(task_key),
                    "the agent asked to see the number",
                    {"contact": f"cp:{task.contact_key}"},
                )
            ],
            now,
        )
    return desk.cipher.decrypt(token, "contact_point.value_enc")


def show(desk: CallDesk, task_key: int) -> dict[str, Any]:
    """One task as the agent's screen shows it (the number masked)."""
    c = t.call_task.c
    with desk.engine.connect() as conn:
        row = conn.execute(
            select(t.call_task, t.loan.c.loan_id, t.contact_point.c.value_enc)
            .select_from(
                t.call_task.join(t.loan, t.loan.c.loan_key == c.loan_key).outerjoin(
                    t.contact_point, t.contact_point.c.contact_key == c.contact_key
                )
            )
            .where(c.task_key == task_key)
        ).first()
        if row is None:
            raise NotFoundError(f"no call task {task_key}")
        out = {k: v for k, v in row._mapping.items() if k != "value_enc"}
        out["phone"] = (
            None if row.value_enc is None else mask(desk.cipher.decrypt(row.value_enc, "contact_point.value_enc"))
        )
        for k in ("scheduled_at", "lease_until", "created_at", "closed_at"):
            out[k] = None if out[k] is None else as_utc(out[k])
        out["promises"] = [
            dict(p._mapping)
            for p in conn.execute(
                select(
                    t.promise_to_pay.c.promise_id,
                    t.promise_to_pay.c.amount,
                    t.promise_to_pay.c.currency,
                    t.promise_to_pay.c.due_date,
                    t.promise_to_pay.c.state,
                ).where(t.promise_to_pay.c.event_id.like(f"call:{task_key}:%"))
            )
        ]
    return out


def _held_by(conn: Connection, task_key: int, agent: str, now: datetime) -> Any:
    task = conn.execute(select(t.call_task).where(t.call_task.c.task_key == task_key)).first()
    if task is None:
        raise NotFoundError(f"no call task {task_key}")
    if task.state != "claimed" or task.agent != agent:
        raise CallError(f"call task {task_key} is not claimed by {agent} (state {task.state}, agent {task.agent})")
    if as_utc(task.lease_until) < _utc(now):
        raise CallError(f"{agent}'s lease on call task {task_key} ran out at {as_utc(task.lease_until).isoformat()}")
    return task


# --- outcomes -----------------------------------------------------------------------------------------


def record_outcome(
    desk: CallDesk, task_key: int, agent: str, outcome: CallOutcome, now: datetime, origin: str = "cli"
) -> dict[str, Any]:
    """Record what happened on the call and its effects, all in one transaction with their audit entries."""
    if outcome.result not in RESULTS:
        raise CallError(f"result {outcome.result!r} is not one of {', '.join(RESULTS)}")
    if outcome.result != "promise_to_pay" and (outcome.amount is not None or outcome.promise_date is not None):
        raise CallError("an amount and a date belong to a promise_to_pay only")
    policy = desk.policy
    with _turn(desk.engine), desk.engine.begin() as conn:
        task = _held_by(conn, task_key, agent, now)
        point = conn.execute(
            select(t.contact_point.c.time_zone).where(t.contact_point.c.contact_key == task.contact_key)
        ).first()
        local_day = now.astimezone(ZoneInfo(point.time_zone if point else "UTC")).date()
        attempt = task.attempts + 1
        event_id = f"call:{task_key}:{attempt}"
        outcome_word, counterpart = RESULTS[outcome.result]
        details: dict[str, Any] = {"result": outcome.result, "task_key": task_key, "attempt": attempt}
        if outcome.note:
            details["note"] = outcome.note
        records: list[AuditRecord] = []
        effect: dict[str, Any] = {}
        if outcome.result == "promise_to_pay":
            effect = _take_promise(conn, task, outcome, agent, event_id, local_day, policy, now)
            records.append(
                AuditRecord(
                    agent,
                    origin,
                    "promise.taken",
                    "promise_to_pay",
                    effect["promise_id"],
                    "promise to pay taken on a call",
                    effect,
                )
            )
        elif outcome.result == "dispute":
            effect = _open_dispute(conn, task, local_day)
            records.append(
                AuditRecord(
                    agent,
                    origin,
                    "hold.opened",
                    "hold",
                    effect["hold_id"],
                    "the debtor disputed the debt on a call",
                    effect,
                )
            )
        elif outcome.result in ("asked_to_stop", "wrong_party"):
            column = "consent" if outcome.result == "asked_to_stop" else "valid"
            conn.execute(
                update(t.contact_point).where(t.contact_point.c.contact_key == task.contact_key).values({column: False})
            )
            effect = {"contact": f"cp:{task.contact_key}", column: False}
            action = "contact_point.consent_withdrawn" if column == "consent" else "contact_point.invalidated"
            why = (
                "the debtor asked not to be called on this number" if column == "consent" else "a wrong party answered"
            )
            records.append(AuditRecord(agent, origin, action, "contact_point", str(task.contact_key), why, effect))
        details |= effect
        record_contacts(
            conn,
            [
                ContactEvent(
                    event_id,
                    task.borrower_key,
                    now,
                    "call",
                    outcome_word,
                    counterpart=counterpart,
                    loan_key=task.loan_key,
                    action_key=task.action_key,
                    address=f"cp:{task.contact_key}",
                    agent=agent,
                    details=details,
                )
            ],
            now,
        )
        retry = outcome.result in RETRIED and attempt < policy.max_attempts
        state: dict[str, Any] = (
            {"state": "queued", "scheduled_at": _utc(now + policy.retry_after)}
            if retry
            else {"state": "closed", "closed_at": _utc(now)}
        )
        conn.execute(
            update(t.call_task)
            .where(t.call_task.c.task_key == task_key)
            .values(attempts=attempt, result=outcome.result, lease_until=None, **state)
        )
        summary = {
            "task_key": task_key,
            "result": outcome.result,
            "event_id": event_id,
            "attempts": attempt,
            "state": state["state"],
            "retry_at": state["scheduled_at"].isoformat() if retry else None,
            **{k: v for k, v in effect.items() if k in ("promise_id", "hold_id", "contact")},
        }
        records.insert(
            0, AuditRecord(agent, origin, "call.outcome", "call_task", str(task_key), outcome.result, summary)
        )
        append(conn, records, now)
    return summary


def _take_promise(
    conn: Connection,
    task: Any,
    outcome: CallOutcome,
    agent: str,
    event_id: str,
    local_day: date,
    policy: CallPolicy,
    now: datetime,
) -> dict[str, Any]:
    if outcome.amount is None or outcome.promise_date is None:
        raise CallError("a promise to pay needs an amount and a date")
    currency = conn.execute(select(t.loan.c.currency).where(t.loan.c.loan_key == task.loan_key)).scalar_one()
    try:
        amount = promised_amount(outcome.amount, currency, outcome.promise_date, local_day, policy.promise_horizon_days)
    except PlanError as exc:
        raise CallError(exc.args[0]) from None
    promise_id = f"PTP-{event_id.replace(':', '-')}"
    store_promise(
        conn, promise_id, task.borrower_key, task.loan_key, amount, currency, outcome.promise_date, "call", agent,
        event_id, now,
    )  # fmt: skip
    return {
        "promise_id": promise_id,
        "amount": amount,
        "currency": currency,
        "due_date": outcome.promise_date.isoformat(),
    }


def _open_dispute(conn: Connection, task: Any, local_day: date) -> dict[str, Any]:
    """A dispute raised on a call holds the loan like an imported one: outreach and the clock pause."""
    hold_id = f"DISPUTE-call-{task.task_key}-{task.attempts + 1}"
    conn.execute(
        insert(t.hold).values(
            hold_id=hold_id,
            borrower_key=task.borrower_key,
            loan_key=task.loan_key,
            kind="dispute",
            start_date=local_day,
            end_date=None,
            pauses_clock=True,
            pauses_outreach=True,
        )
    )
    return {"hold_id": hold_id, "start_date": local_day.isoformat()}


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return at.astimezone(UTC)
