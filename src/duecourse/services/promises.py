"""Promises to pay taken by staff or made through the debtor's own channel, and how well they are kept.

A promise is stored with the contact it was made in (a "conversation" in the compliance vocabulary, so it
counts towards the contact history); the daily cycle marks it kept, partly kept or broken. The report
counts outcomes by the agent who took the promise, the channel and the loan's bucket when it was taken.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Connection, Engine, insert, select

from duecourse.adapters.db import tables as t
from duecourse.adapters.db.bulk import read_frame
from duecourse.audit.chain import AuditRecord
from duecourse.audit.log import append
from duecourse.domain.errors import NotFoundError, PlanError
from duecourse.domain.money import from_minor, to_minor
from duecourse.services.contacts import ContactEvent, record_contacts

# The channel a promise is made on, and the compliance channel its contact is counted under.
CHANNELS: Final = {"call": "call", "visit": "visit", "app": "app_push", "sms": "sms", "email": "email"}
STATES: Final = ("open", "kept", "partly_kept", "broken")
DECIDED: Final = ("kept", "partly_kept", "broken")
HORIZON_DAYS: Final = 30  # a promise further out is a plan, not a promise (as for calls, services/calls.py)
DEBTOR: Final = "debtor"  # `taken_by` of a promise the debtor made through their own channel


@dataclass(frozen=True)
class PromiseInput:
    loan_id: str
    amount: Decimal  # major units of the loan's currency, exact
    due_date: date
    channel: str  # one of CHANNELS
    taken_by: str  # the agent's id, or DEBTOR for the debtor's own channel
    in_event: str | None = None  # the contact event it was made in, when that contact is already recorded
    note: str | None = None


def take_promise(
    engine: Engine, promise: PromiseInput, now: datetime, origin: str = "cli", horizon_days: int = HORIZON_DAYS
) -> dict[str, Any]:
    """Store a promise, the contact it was made in (unless `in_event` names one already recorded) and its audit
    entry, in one transaction. The date is checked against the horizon in the debtor's own time zone."""
    if promise.channel not in CHANNELS:
        raise PlanError(f"channel {promise.channel!r} is not one of {', '.join(CHANNELS)}")
    by_debtor = promise.taken_by == DEBTOR
    with engine.begin() as conn:
        loan = conn.execute(
            select(t.loan.c.loan_key, t.loan.c.borrower_key, t.loan.c.currency).where(
                t.loan.c.loan_id == promise.loan_id
            )
        ).first()
        if loan is None:
            raise NotFoundError(f"no loan with id {promise.loan_id!r}")
        # The debtor's day: the time zone of their own first contact point (UTC when none is on file).
        zone = conn.execute(
            select(t.contact_point.c.time_zone)
            .where(t.contact_point.c.borrower_key == loan.borrower_key, t.contact_point.c.owner == "borrower")
            .order_by(t.contact_point.c.contact_key)
            .limit(1)
        ).scalar()
        today = now.astimezone(ZoneInfo(zone or "UTC")).date()
        amount = promised_amount(promise.amount, loan.currency, promise.due_date, today, horizon_days)
        promise_id = f"PTP-{now.astimezone(UTC):%Y%m%d}-{uuid.uuid4().hex[:10].upper()}"
        details = {
            "result": "promise_to_pay",
            "promise_id": promise_id,
            "amount": amount,
            "currency": loan.currency,
            "due_date": promise.due_date.isoformat(),
        }
        if promise.note:
            details["note"] = promise.note
        if promise.in_event is None:
            event_id = f"promise:{promise_id}"
            record_contacts(
                conn,
                [
                    ContactEvent(
                        event_id,
                        int(loan.borrower_key),
                        now,
                        CHANNELS[promise.channel],
                        "conversation",
                        initiated_by="debtor" if by_debtor else "collector",
                        loan_key=int(loan.loan_key),
                        agent=None if by_debtor else promise.taken_by,
                        details=details,
                    )
                ],
                now,
            )
        else:
            event_id = promise.in_event
            found = conn.execute(
                select(t.contact_event.c.borrower_key).where(t.contact_event.c.event_id == event_id)
            ).scalar()
            if found != loan.borrower_key:
                raise PlanError(f"no contact event {event_id!r} with this debtor is recorded")
        store_promise(
            conn,
            promise_id,
            int(loan.borrower_key),
            int(loan.loan_key),
            amount,
            loan.currency,
            promise.due_date,
            promise.channel,
            promise.taken_by,
            event_id,
            now,
        )
        summary = {**details, "loan_id": promise.loan_id, "channel": promise.channel, "event_id": event_id}
        why = (
            "promise made through the debtor's own channel"
            if by_debtor
            else f"promise to pay taken on {promise.channel}"
        )
        append(
            conn,
            [AuditRecord(promise.taken_by, origin, "promise.taken", "promise_to_pay", promise_id, why, summary)],
            now,
        )
    return {**summary, "amount": str(from_minor(amount, loan.currency)), "taken_by": promise.taken_by, "state": "open"}


def promised_amount(amount: Decimal, currency: str, due_date: date, today: date, horizon_days: int) -> int:
    """The promised amount in minor units, refused unless positive and exact, for a date within the horizon
    from the debtor's `today` (a promise further out is a plan, not a promise)."""
    try:
        minor = to_minor(amount, currency)
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    if minor <= 0:
        raise PlanError(f"a promised amount must be positive, not {amount}")
    last = today + timedelta(days=horizon_days)
    if not today <= due_date <= last:
        raise PlanError(
            f"a promise date must be between {today} and {last} (the {horizon_days}-day horizon), not {due_date}"
        )
    return minor


def store_promise(
    conn: Connection,
    promise_id: str,
    borrower_key: int,
    loan_key: int,
    amount: int,
    currency: str,
    due_date: date,
    channel: str,
    taken_by: str,
    event_id: str,
    now: datetime,
) -> None:
    """The promise row, open, in the caller's transaction (with its contact event and audit entry there too)."""
    conn.execute(
        insert(t.promise_to_pay).values(
            promise_id=promise_id,
            borrower_key=borrower_key,
            loan_key=loan_key,
            amount=amount,
            currency=currency,
            due_date=due_date,
            channel=channel,
            taken_by=taken_by,
            taken_at=now.astimezone(UTC),
            state="open",
            event_id=event_id,
        )
    )


def list_promises(
    engine: Engine, borrower_id: str | None = None, loan_id: str | None = None, state: str | None = None
) -> list[dict[str, Any]]:
    """Promises, latest due first."""
    p = t.promise_to_pay
    q = (
        select(p, t.loan.c.loan_id, t.borrower.c.borrower_id)
        .join(t.loan, t.loan.c.loan_key == p.c.loan_key)
        .join(t.borrower, t.borrower.c.borrower_key == p.c.borrower_key)
        .order_by(p.c.due_date.desc(), p.c.promise_key.desc())
    )
    if borrower_id is not None:
        q = q.where(t.borrower.c.borrower_id == borrower_id)
    if loan_id is not None:
        q = q.where(t.loan.c.loan_id == loan_id)
    if state is not None:
        q = q.where(p.c.state == state)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    return [
        {
            "promise_id": r.promise_id,
            "borrower_id": r.borrower_id,
            "loan_id": r.loan_id,
            "amount": str(from_minor(r.amount, r.currency)),
            "currency": r.currency,
            "due_date": r.due_date.isoformat(),
            "channel": r.channel,
            "taken_by": r.taken_by,
            "taken_at": (r.taken_at if r.taken_at.tzinfo else r.taken_at.replace(tzinfo=UTC)).isoformat(),
            "state": r.state,
        }
        for r in rows
    ]


_PROMISES: Final = pl.Schema(
    {
        "loan_key": pl.Int64,
        "taken_by": pl.String,
        "channel": pl.String,
        "taken_on": pl.Date,
        "state": pl.String,
    }
)
_SNAPSHOTS: Final = pl.Schema({"loan_key": pl.Int64, "as_of": pl.Date, "bucket": pl.String})
NO_SNAPSHOT: Final = "(no snapshot)"


def promise_report(engine: Engine, due_from: date | None = None, due_to: date | None = None) -> dict[str, Any]:
    """Promise-kept rate by agent, by channel and by the loan's bucket on the day the promise was taken (the
    latest daily snapshot on or before it), for promises due between `due_from` and `due_to` (inclusive).

    kept_rate = kept / (kept + partly_kept + broken): open promises are counted but not yet judged.
    """
    where = ["1 = 1"]
    if due_from is not None:
        where.append(f"due_date >= '{due_from.isoformat()}'")
    if due_to is not None:
        where.append(f"due_date <= '{due_to.isoformat()}'")
    cond = " AND ".join(where)
    # The UTC day of taken_at; PostgreSQL converts in UTC explicitly, SQLite keeps the instants in UTC already.
    day = (
        "CAST(taken_at AT TIME ZONE 'UTC' AS DATE)"
        if engine.dialect.name == "postgresql"
        else "substr(taken_at, 1, 10)"
    )
    promises = read_frame(
        engine,
        f"SELECT loan_key, taken_by, channel, {day} AS taken_on, state FROM promise_to_pay WHERE {cond}",
        _PROMISES,
    )
    snapshots = read_frame(
        engine,
        "SELECT loan_key, as_of, bucket FROM delinquency_snapshot"
        f" WHERE loan_key IN (SELECT loan_key FROM promise_to_pay WHERE {cond})",
        _SNAPSHOTS,
    )
    judged = promises.sort("taken_on").join_asof(
        snapshots.sort("as_of"), left_on="taken_on", right_on="as_of", by="loan_key", strategy="backward"
    )
    judged = judged.with_columns(bucket=pl.col("bucket").fill_null(NO_SNAPSHOT), agent=pl.col("taken_by"))
    return {
        "due_from": None if due_from is None else due_from.isoformat(),
        "due_to": None if due_to is None else due_to.isoformat(),
        "total": (_rates(judged.with_columns(all=pl.lit("all")), "all") or [_counted("all", "all", {})])[0],
        "by_agent": _rates(judged, "agent"),
        "by_channel": _rates(judged, "channel"),
        "by_bucket": _rates(judged, "bucket"),
    }


def _rates(judged: pl.DataFrame, by: str) -> list[dict[str, Any]]:
    counts = judged.group_by(by).agg(promises=pl.len(), **{s: (pl.col("state") == s).sum() for s in STATES})
    # One row per agent, channel or bucket: a handful, turned into exact rates one by one.
    return [_counted(by, row[by], row) for row in counts.sort(by).iter_rows(named=True)]


def _counted(by: str, key: str, row: dict[str, Any]) -> dict[str, Any]:
    counts = {s: int(row.get(s, 0)) for s in STATES}
    decided = sum(counts[s] for s in DECIDED)
    rate = None if decided == 0 else (Decimal(counts["kept"]) / decided).quantize(Decimal("0.0001"), ROUND_HALF_UP)
    return {
        by: key,
        "promises": int(row.get("promises", 0)),
        **counts,
        "kept_rate": None if rate is None else str(rate),
    }
