"""Recording contacts that happened (messages, receipts, calls, visits) as the compliance contact history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import polars as pl
from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from duecourse.adapters.db import tables as t
from duecourse.compliance.facts import HISTORY, ActorKind, Channel, Counterpart, Initiator, Outcome

# The compliance vocabulary each field must use (compliance/facts.py): the history the rules count is
# read back from these rows, so a word outside it would silently escape a frequency cap.
VOCABULARY: Final[Mapping[str, tuple[str, ...]]] = {
    "channel": Channel.__args__,  # type: ignore[attr-defined]
    "counterpart": Counterpart.__args__,  # type: ignore[attr-defined]
    "outcome": Outcome.__args__,  # type: ignore[attr-defined]
    "initiated_by": Initiator.__args__,  # type: ignore[attr-defined]
    "actor_kind": ActorKind.__args__,  # type: ignore[attr-defined]
}


@dataclass(frozen=True)
class ContactEvent:
    """One contact that happened. `outcome` is the nearest compliance outcome; the detailed one (e.g.
    "promise_to_pay", "sent") goes in `details`. `address` is "cp:<contact_key>" when a contact point was used."""

    event_id: str  # idempotency key: recording the same event twice stores it once
    borrower_key: int
    at: datetime
    channel: str
    outcome: str
    counterpart: str = "debtor"
    initiated_by: str = "collector"
    actor_kind: str = "lender"
    loan_key: int | None = None
    action_key: int | None = None
    address: str | None = None
    agent: str | None = None
    provider_message_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, allowed in VOCABULARY.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"contact event {self.event_id!r}: {name} {value!r} is not one of {allowed}")
        if self.at.tzinfo is None:
            raise ValueError(f"contact event {self.event_id!r}: at must be timezone-aware")


def record_contacts(conn: Connection, events: Sequence[ContactEvent], now: datetime) -> int:
    """Insert `events` in the caller's transaction, skipping event_ids already stored; returns how many were new.

    One compiled statement, executed for the whole batch (SQLAlchemy batches the rows into multi-row
    INSERTs itself and caches the compiled form, so a dispatcher's thousand events do not compile a new
    statement each time). The caller audits the change it records (a call outcome, a dispatch).
    """
    if now.tzinfo is None:
        raise ValueError("recording time must be timezone-aware")
    if not events:
        return 0
    rows = [_row(e, now) for e in events]
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = (
        dialect_insert(t.contact_event)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(t.contact_event.c.event_key)
    )
    # RETURNING counts what was inserted on both backends (psycopg reports no rowcount for this statement).
    return len(conn.execute(stmt, rows).all())


def _row(e: ContactEvent, now: datetime) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "borrower_key": e.borrower_key,
        "loan_key": e.loan_key,
        "action_key": e.action_key,
        "at": e.at.astimezone(UTC),  # SQLite keeps the wall time it is given: store UTC
        "channel": e.channel,
        "counterpart": e.counterpart,
        "address": e.address,
        "outcome": e.outcome,
        "initiated_by": e.initiated_by,
        "actor_kind": e.actor_kind,
        "agent": e.agent,
        "provider_message_id": e.provider_message_id,
        "details": dict(e.details),
        "recorded_at": now.astimezone(UTC),
    }


def contact_history(conn: Connection, borrower_keys: Sequence[int], since: datetime) -> pl.DataFrame:
    """Contacts with these borrowers at or after `since`: `borrower_key` plus the `facts.HISTORY` columns.

    `proposal_id` and `actor_name` are null: the caller joins on `borrower_key` to its proposals and names
    the actor (the lender names itself in the language of each contact). `debts` holds the loan id.
    """
    if since.tzinfo is None:
        raise ValueError("history bound must be timezone-aware")
    e = t.contact_event
    q = (
        select(
            e.c.borrower_key,
            e.c.at,
            e.c.channel,
            e.c.counterpart,
            e.c.address,
            e.c.outcome,
            e.c.initiated_by,
            t.loan.c.loan_id,
            e.c.actor_kind,
        )
        .select_from(e.outerjoin(t.loan, t.loan.c.loan_key == e.c.loan_key))
        .where(e.c.borrower_key.in_([int(k) for k in borrower_keys]), e.c.at >= since.astimezone(UTC))
        .order_by(e.c.borrower_key, e.c.at, e.c.event_key)
    )
    # Rows through the caller's connection (pl.read_database would import sqlalchemy.orm on first use: ~0.5 s).
    result = conn.execute(q)
    raw = pl.DataFrame(
        [tuple(r) for r in result],
        schema=list(result.keys()),
        orient="row",
        schema_overrides=_STORED,
        infer_schema_length=None,
    )
    instants = raw.get_column("at")
    if instants.dtype == pl.Null:  # no rows: nothing to infer the type from
        instants = instants.cast(pl.Datetime("us"))
    if getattr(instants.dtype, "time_zone", None) is None:  # SQLite returns them naive (kept in UTC)
        instants = instants.dt.replace_time_zone("UTC")
    return raw.select(
        "borrower_key",
        proposal_id=pl.lit(None, pl.String),
        at=instants.dt.convert_time_zone("UTC").cast(HISTORY["at"]),
        channel="channel",
        counterpart="counterpart",
        address="address",
        outcome="outcome",
        initiated_by="initiated_by",
        debts=pl.when(pl.col("loan_id").is_null())
        .then(pl.lit([], pl.List(pl.String)))
        .otherwise(pl.concat_list(pl.col("loan_id"))),
        actor_kind="actor_kind",
        actor_name=pl.lit(None, pl.String),
    ).select("borrower_key", *HISTORY.names())


_STORED: Final = {
    "borrower_key": pl.Int64(),
    **{
        c: pl.String()
        for c in ("channel", "counterpart", "address", "outcome", "initiated_by", "loan_id", "actor_kind")
    },
}
