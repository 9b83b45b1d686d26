"""Dispatch: allowed actions leave the outbox through the channels, re-checked at send time, each exactly once.

The outbox state lives in `dispatch_outbox` (one row per dispatched `proposed_action`, keyed by its
idempotency key); the states and the exactly-once argument are in adapters/channels/README.md. Each
step is a short transaction with its audit entries: enqueue (one INSERT … SELECT), claim a batch under
a lease, the send-time re-check (debt still owed, no hold, compliance still allows at this moment) and
the codes, then the sends outside any transaction, then the results with their contact events. A
`sending` row whose lease ran out belongs to a dispatcher that stopped mid-send: it is reconciled before
anything is sent again — asked of the provider where the provider can be asked, dead-lettered "in
doubt" where it cannot. Services reach the channel adapters through the `Channel` port below.

Several processes may share one outbox: the lease-taking claim gives each batch to one of them. With
`workers` > 1 and a `recipe` (a picklable way to build an equal dispatcher elsewhere), `run` starts
`workers - 1` helper processes that claim and send batches beside it, each of its own share of the debtors (a
debtor's messages are re-checked in one process, batch after batch, each with the sends before it in the
contact history); they are forked from a server process
that has the modules imported already (`start_worker_server`), since a fork of this process would copy its
threads' locks (Polars' pool among them) and a fresh interpreter spends seconds importing.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from multiprocessing import forkserver
from typing import Any, Final, Protocol, runtime_checkable

import polars as pl
from sqlalchemy import Connection, Engine, and_, bindparam, case, exists, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from duecourse.adapters.db import tables as t
from duecourse.audit import log as audit_log
from duecourse.audit.chain import AuditRecord
from duecourse.compliance.port import CompliancePort
from duecourse.domain.dispatch import Outgoing, Receipt, Result
from duecourse.domain.verification import CodeSigner, digest, display
from duecourse.ledger.engine import ledger_state
from duecourse.services.book_frames import load_book
from duecourse.services.compliance_gate import CHANNEL, POINT_KIND
from duecourse.services.contacts import ContactEvent, record_contacts
from duecourse.services.cycle import loan_facts
from duecourse.services.messages import MessageCatalogue, render
from duecourse.services.verification import CodeRequest, issue_many

STATES: Final = ("queued", "sending", "sent", "delivered", "failed", "cancelled", "dead")
MESSAGE_CHANNELS: Final = ("sms", "email", "app")  # sent by a channel adapter
HAND_OFF_CHANNELS: Final = ("letter", "call", "visit")  # handed to another service
ORIGIN: Final = "dispatch"
SQLITE_ONE_PROCESS: Final = (
    "a SQLite outbox is sent by one process: the batch reads (ADBC) bring a SQLite library of their own, whose"
    " closing a file drops this process's other locks on it, and another process then resets the shared WAL"
    " index under it (a bus error); several processes need PostgreSQL"
)
SUBJECT: Final = {"zh": "{}：关于您的借款 {}", "en": "{}: about your loan {}"}  # lender, loan id


# --- The port: what a channel adapter offers (adapters/channels/*) ---------------------------------------


class Channel(Protocol):
    provider: str

    def send(self, messages: Sequence[Outgoing]) -> list[Result]:
        """Send a batch (one connection or request where the protocol allows); one Result per message, in order."""
        ...

    def look_up(self, message_ids: Sequence[str]) -> set[str] | None:
        """Which of these message ids the provider has; None when this provider cannot be asked."""
        ...

    def close(self) -> None:
        """Let go of any connection kept between calls."""
        ...


class Cipher(Protocol):
    def encrypt(self, plaintext: str, field: str) -> bytes: ...

    def decrypt(self, token: bytes, field: str) -> str: ...


@runtime_checkable
class ReceiptSource(Protocol):
    def receipts(self) -> list[Receipt]:
        """Delivery reports the provider holds and has not handed out before (a pull)."""
        ...


# Hands actions to another service in the caller's transaction; returns the actions it did not take, with why.
HandOff = Callable[[Connection, list[int], datetime], Mapping[int, str]]


# --- Policy and summary ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    # The send-time re-check of a batch costs about as much for 2,000 messages as for 500 (the rulebook's work is
    # mostly per rule, not per message); a larger batch also leaves more e-mails in doubt if the dispatcher stops.
    batch: int = 2000
    lease: timedelta = timedelta(minutes=5)  # longer than any batch's sends take
    max_attempts: int = 5
    backoff: timedelta = timedelta(seconds=30)  # the first retry's delay; doubles each attempt
    backoff_cap: timedelta = timedelta(hours=1)


@dataclass
class Summary:
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (channel, outcome) -> messages
    cancelled: Counter[str] = field(default_factory=Counter)  # reason -> messages
    enqueued: int = 0
    waiting: dict[str, int] = field(default_factory=dict)  # channel -> rows left queued (no channel configured)
    errors: list[str] = field(default_factory=list)

    def add(self, channel: str, outcome: str, n: int = 1) -> None:
        if n:
            self.counts[(channel, outcome)] += n

    def merge(self, other: Summary) -> None:
        """Add what a helper process did (it neither enqueues nor pulls receipts)."""
        self.counts.update(other.counts)
        self.cancelled.update(other.cancelled)
        self.errors += other.errors

    def total(self, outcome: str) -> int:
        return sum(n for (_, o), n in self.counts.items() if o == outcome)

    def to_json(self) -> dict[str, Any]:
        by_channel: dict[str, dict[str, int]] = {}
        for (channel, outcome), n in sorted(self.counts.items()):
            by_channel.setdefault(channel, {})[outcome] = n
        return {
            "enqueued": self.enqueued,
            "by_channel": by_channel,
            "totals": {o: self.total(o) for o in sorted({o for _, o in self.counts})},
            "cancelled_reasons": dict(self.cancelled.most_common()),
            "left_queued": self.waiting,
            "errors": self.errors,
        }


def message_id(idempotency_key: str) -> str:
    """The provider-facing id of an action's message: the same on every attempt, so a provider (and the
    reconciliation) recognises a resend. Hex, so it fits every provider's id syntax."""
    return "dc" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands instants back naive (stored in UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


RESULTS: Final = pl.Schema(
    {"message_id": pl.String(), "status": pl.String(), "provider_message_id": pl.String(), "error": pl.String()}
)
CLAIMED: Final = pl.Schema(
    {
        "outbox_key": pl.Int64(),
        "action_key": pl.Int64(),
        "idempotency_key": pl.String(),
        "loan_key": pl.Int64(),
        "borrower_key": pl.Int64(),
        "channel": pl.String(),
        "template": pl.String(),
        "case_key": pl.Int64(),
        "planned_on": pl.Date(),
        "attempts": pl.Int64(),
        "code_enc": pl.Binary(),
        "code_digest": pl.String(),
    }
)


@dataclass
class Dispatcher:
    engine: Engine
    cipher: Cipher
    signer: CodeSigner
    messages: MessageCatalogue
    gate: CompliancePort
    channels: Mapping[str, Channel]  # ladder channel (sms, email, app) -> adapter; absent = not configured
    hand_offs: Mapping[str, HandOff] = field(default_factory=dict)  # letter, call, visit -> service
    policy: Policy = field(default_factory=Policy)
    owner: str = "dispatcher"
    actor: str = "system:dispatch"
    workers: int = 1  # processes sending at once, this one included (helpers need a recipe)
    recipe: Callable[[], Dispatcher] | None = None  # picklable: builds this dispatcher's equal in another process

    def __post_init__(self) -> None:
        if self.workers > 1 and self.recipe is None:
            raise ValueError("several dispatching processes need a recipe to build the helpers' dispatchers")
        if self.workers > 1 and self.engine.dialect.name == "sqlite":
            raise ValueError(SQLITE_ONE_PROCESS)

    # --- the run ------------------------------------------------------------------------------------

    def run(
        self, now: datetime, limit: int | None = None, on_batch: Callable[[int, int], None] = lambda _done, _total: None
    ) -> Summary:
        """Reconcile stopped sends, enqueue what is due, send up to `limit` messages in batches, pull receipts."""
        now = now.astimezone(UTC)
        try:
            return self._run(now, limit, on_batch)
        finally:
            for adapter in self.channels.values():
                adapter.close()

    def _run(self, now: datetime, limit: int | None, on_batch: Callable[[int, int], None]) -> Summary:
        summary = Summary()
        self.reconcile(now, summary)
        summary.enqueued = self.enqueue(now)
        total = self.claimable(now)
        if limit is not None:
            total = min(total, limit)
        done = 0
        on_batch(done, total)
        # A limit is one count over all the sends: kept exact by sending in this process only.
        helpers = self._helpers(now) if limit is None and total > self.policy.batch else []
        share = (0, self.workers) if helpers else (0, 1)
        while done < total:
            claimed = self.claim(now, min(self.policy.batch, total - done), share)
            if claimed.is_empty():
                break
            self.process(claimed, now, summary)
            done += claimed.height
            on_batch(total - self.claimable(now) if helpers else done, total)
        for helper in helpers:
            summary.merge(helper.result())
        if helpers:
            on_batch(total, total)
        self.pull_receipts(now, summary)
        summary.waiting = self.left_waiting(now)
        return summary

    def _helpers(self, now: datetime) -> list[Future[Summary]]:
        """Start the helper processes, each sending batches until none is left to claim (`drain`)."""
        if self.workers < 2 or self.recipe is None:
            return []
        context = multiprocessing.get_context("forkserver")
        pool = ProcessPoolExecutor(self.workers - 1, context)
        helpers = [
            pool.submit(drain, self.recipe, f"{self.owner}/{i}", now, (i, self.workers)) for i in range(1, self.workers)
        ]
        pool.shutdown(wait=False)  # the processes end when their work is done
        return helpers

    def served(self) -> list[str]:
        return [c for c in MESSAGE_CHANNELS if c in self.channels] + [
            c for c in HAND_OFF_CHANNELS if c in self.hand_offs
        ]

    def enqueue(self, now: datetime) -> int:
        """Every allowed or rescheduled action due by `now` that is not in the outbox yet: one INSERT … SELECT."""
        a, o = t.proposed_action, t.dispatch_outbox
        due = (
            select(
                a.c.action_key,
                a.c.idempotency_key,
                a.c.loan_key,
                a.c.channel,
                literal("queued"),
                literal(0),
                a.c.scheduled_at,
                literal(now, t.dispatch_outbox.c.enqueued_at.type),
                literal(now, t.dispatch_outbox.c.updated_at.type),
            )
            .where(
                a.c.compliance_status.in_(["allowed", "rescheduled"]),
                a.c.scheduled_at <= now,
                a.c.channel.in_(MESSAGE_CHANNELS + HAND_OFF_CHANNELS),
                ~exists().where(o.c.action_key == a.c.action_key),
            )
            .order_by(a.c.action_key)
        )
        columns = ["action_key", "idempotency_key", "loan_key", "channel", "state", "attempts", "next_attempt_at"]
        with self.engine.begin() as conn:
            stmt = _insert(conn)(o).from_select([*columns, "enqueued_at", "updated_at"], due)
            keys = conn.execute(stmt.on_conflict_do_nothing().returning(o.c.idempotency_key, o.c.channel)).all()
            if keys:
                by_channel = dict(sorted(Counter(ch for _, ch in keys).items()))
                audit_log.append(
                    conn,
                    [
                        AuditRecord(
                            self.actor,
                            ORIGIN,
                            "dispatch.enqueued",
                            "dispatch_outbox",
                            now.isoformat(),
                            "allowed actions due by now entered the outbox",
                            {"count": len(keys), "by_channel": by_channel, "keys": sorted(k for k, _ in keys)},
                        )
                    ],
                    now,
                )
        return len(keys)

    def claimable(self, now: datetime) -> int:
        o = t.dispatch_outbox
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        o.c.state == "queued", o.c.next_attempt_at <= now, o.c.channel.in_(self.served())
                    )
                ).scalar_one()
            )

    def left_waiting(self, now: datetime) -> dict[str, int]:
        """Due rows of channels this dispatcher does not serve (not configured, or the other side is missing)."""
        o = t.dispatch_outbox
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(o.c.channel, func.count())
                .where(o.c.state == "queued", o.c.next_attempt_at <= now, o.c.channel.not_in(self.served()))
                .group_by(o.c.channel)
            ).all()
        return {str(ch): int(n) for ch, n in sorted(rows)}

    def claim(self, now: datetime, size: int, share: tuple[int, int] = (0, 1)) -> pl.DataFrame:
        """Lease up to `size` due rows to this dispatcher (queued -> sending) in one short transaction.

        With `share` (i, n), only the rows of borrowers whose key is i modulo n: processes sending side by side
        each take their own debtors, so a debtor's messages are re-checked one batch after another in one
        process, each batch with the contact history of the batches before it (frequency limits hold)."""
        o, a = t.dispatch_outbox, t.proposed_action
        with self.engine.begin() as conn:
            pick = (
                select(o.c.outbox_key)
                .where(o.c.state == "queued", o.c.next_attempt_at <= now, o.c.channel.in_(self.served()))
                .order_by(o.c.next_attempt_at, o.c.outbox_key)
                .limit(size)
            )
            index, of = share
            if of > 1:
                pick = pick.join(t.loan, t.loan.c.loan_key == o.c.loan_key).where(t.loan.c.borrower_key % of == index)
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True, of=o)  # two dispatchers take different rows
            keys = list(conn.execute(pick).scalars())
            if not keys:
                return pl.DataFrame(schema=CLAIMED)
            conn.execute(
                update(o)
                .where(o.c.outbox_key.in_(keys))
                .values(
                    state="sending",
                    attempts=o.c.attempts + 1,
                    lease_until=now + self.policy.lease,
                    lease_owner=self.owner,
                    updated_at=now,
                )
            )
            rows = conn.execute(
                select(
                    o.c.outbox_key,
                    o.c.action_key,
                    o.c.idempotency_key,
                    o.c.loan_key,
                    t.loan.c.borrower_key,
                    o.c.channel,
                    a.c.template,
                    a.c.case_key,
                    a.c.as_of,
                    o.c.attempts,
                    o.c.code_enc,
                    o.c.code_digest,
                )
                .select_from(
                    o.join(a, a.c.action_key == o.c.action_key).join(t.loan, t.loan.c.loan_key == o.c.loan_key)
                )
                .where(o.c.outbox_key.in_(keys))
                .order_by(o.c.outbox_key)
            ).all()
            claimed = pl.DataFrame([tuple(r) for r in rows], schema=CLAIMED, orient="row")
            audit_log.append(
                conn,
                [
                    AuditRecord(
                        self.actor,
                        ORIGIN,
                        "dispatch.claimed",
                        "dispatch_outbox",
                        self.owner,
                        f"leased until {(now + self.policy.lease).isoformat()}",
                        {"count": claimed.height, "keys": claimed.get_column("idempotency_key").to_list()},
                    )
                ],
                now,
            )
        return claimed

    # --- one batch ----------------------------------------------------------------------------------

    def process(self, claimed: pl.DataFrame, now: datetime, summary: Summary) -> None:
        checked = self.recheck(claimed, now)
        stop = checked.filter(pl.col("verdict") != "go")
        go = checked.filter(pl.col("verdict") == "go")
        with self.engine.begin() as conn:
            messages = self._addressed(conn, go.filter(pl.col("channel").is_in(MESSAGE_CHANNELS)))
            stop = pl.concat([stop, messages.filter(pl.col("verdict") != "go")], how="diagonal_relaxed")
            messages = messages.filter(pl.col("verdict") == "go")
            self._record_stops(conn, stop, now, summary)
            for channel, part in (
                go.filter(pl.col("channel").is_in(HAND_OFF_CHANNELS)).partition_by("channel", as_dict=True).items()
            ):
                self._hand_off(conn, str(channel[0]), part, now, summary)
            outgoing = self._prepare(conn, messages, now)
        if outgoing.is_empty():
            return
        results = self._send(outgoing)
        with self.engine.begin() as conn:
            self._record_results(conn, outgoing.join(results, on="message_id"), now, summary)

    def recheck(self, claimed: pl.DataFrame, now: datetime) -> pl.DataFrame:
        """Add `verdict` (go | cancel | later), `reason`, `rules` and `next_at` to each claimed row, set-based.

        The book is read as of today (or the planning day, if later): still owed (an overdue amount, or the
        coming instalment for a pre-due reminder, a step without a case), no outreach hold begun, and the
        rulebook allowing this contact at this very moment with today's contact history. A moment the rules
        only forbid by the clock or the calendar is `later` (back in the queue at the next allowed moment).
        """
        planned: date = claimed.get_column("planned_on").max()  # type: ignore[assignment]
        as_of = max(now.date(), planned)
        book = load_book(self.engine, as_of, claimed.get_column("loan_key").unique().to_list())
        state = ledger_state(book.loans, book.instalments, book.payments, book.holds, book.conventions, as_of)
        facts = loan_facts(book, state, as_of).select(SEND_TIME_FACTS)
        frame = claimed.join(facts, on="loan_key", how="left")
        owes = pl.col("overdue_total").fill_null(0) > 0
        owes_coming = pl.col("case_key").is_null() & (pl.col("next_due_amount").fill_null(0) > 0)
        frame = frame.with_columns(
            verdict=pl.when(~(owes | owes_coming))
            .then(pl.lit("cancel"))
            .when(pl.col("has_outreach_hold"))
            .then(pl.lit("cancel"))
            .otherwise(pl.lit("ask")),
            reason=pl.when(~(owes | owes_coming))
            .then(pl.format("paid: nothing is owed on {} as of {}", pl.col("idempotency_key"), pl.lit(as_of)))
            .when(pl.col("has_outreach_hold"))
            .then(pl.lit("hold: an outreach hold began"))
            .otherwise(pl.lit(None, pl.String)),
            rules=pl.lit(None, pl.String),
            next_at=pl.lit(None, pl.Datetime("us", "UTC")),
        )
        # A hand-off is judged by the service that takes it, at its own moment (see `_hand_off`).
        frame = frame.with_columns(
            verdict=pl.when((pl.col("verdict") == "ask") & pl.col("channel").is_in(HAND_OFF_CHANNELS))
            .then(pl.lit("go"))
            .otherwise(pl.col("verdict"))
        )
        asked = frame.filter(pl.col("verdict") == "ask")
        if asked.is_empty():
            return frame
        # The gate answers one proposal per loan at a time; a loan with two messages in a batch is asked twice.
        rounds = asked.with_columns(_round=pl.int_range(pl.len()).over("loan_key")).partition_by("_round")
        decided = pl.concat(
            [self.gate.review(part.drop("_round"), as_of, at=now).select("outbox_key", *_DECISION) for part in rounds]
        )
        status = pl.col("compliance_status")
        judged = asked.join(decided, on="outbox_key", how="left").with_columns(
            verdict=pl.when(status == "allowed")
            .then(pl.lit("go"))
            .when(status == "rescheduled")
            .then(pl.lit("later"))
            .otherwise(pl.lit("cancel")),
            reason=pl.when(status == "allowed")
            .then(pl.lit(None, pl.String))
            .otherwise(pl.format("compliance at {}: {}", pl.lit(now.isoformat()), pl.col("compliance_reason"))),
            rules=pl.col("compliance_rules"),
            next_at=pl.when(status == "rescheduled").then(pl.col("scheduled_at")),
        )
        return pl.concat(
            [frame.filter(pl.col("verdict") != "ask"), judged.select(frame.columns)], how="vertical_relaxed"
        )

    def _record_stops(self, conn: Connection, stop: pl.DataFrame, now: datetime, summary: Summary) -> None:
        """Cancelled rows leave the outbox with their reason; `later` rows wait for their next allowed moment."""
        if stop.is_empty():
            return
        o = t.dispatch_outbox
        cancel = stop.filter(pl.col("verdict") == "cancel")
        later = stop.filter(pl.col("verdict") == "later")
        if cancel.height:
            conn.execute(
                update(o)
                .where(o.c.outbox_key == bindparam("k"), o.c.state == "sending")
                .values(
                    state="cancelled",
                    reason=bindparam("r"),
                    rules=bindparam("rules"),
                    lease_until=None,
                    done_at=now,
                    updated_at=now,
                ),
                [
                    {"k": k, "r": r, "rules": ru}
                    for k, r, ru in cancel.select("outbox_key", "reason", "rules").iter_rows()
                ],
            )
            for channel, n in cancel.group_by("channel").len().iter_rows():
                summary.add(channel, "cancelled", n)
            summary.cancelled.update(
                {
                    str(r): int(n)
                    for r, n in cancel.select(r=pl.coalesce("rules", pl.col("reason").str.split(":").list.first()))
                    .group_by("r")
                    .len()
                    .iter_rows()
                }
            )
        if later.height:
            conn.execute(
                update(o)
                .where(o.c.outbox_key == bindparam("k"), o.c.state == "sending")
                .values(
                    state="queued",
                    attempts=o.c.attempts - 1,  # not an attempt: the rules asked to wait
                    next_attempt_at=bindparam("n"),
                    reason=bindparam("r"),
                    lease_until=None,
                    updated_at=now,
                ),
                [{"k": k, "n": n, "r": r} for k, n, r in later.select("outbox_key", "next_at", "reason").iter_rows()],
            )
            for channel, n in later.group_by("channel").len().iter_rows():
                summary.add(channel, "rescheduled", n)
        audit_log.append(
            conn,
            [
                AuditRecord(
                    self.actor,
                    ORIGIN,
                    "dispatch.cancelled" if verdict == "cancel" else "dispatch.rescheduled",
                    "dispatch_outbox",
                    key,
                    reason,
                    {"channel": channel, "rules": rules, "next_attempt_at": None if nxt is None else nxt.isoformat()},
                )
                for key, verdict, reason, rules, channel, nxt in stop.select(
                    "idempotency_key", "verdict", "reason", "rules", "channel", "next_at"
                ).iter_rows()
            ],
            now,
        )

    def _hand_off(self, conn: Connection, channel: str, part: pl.DataFrame, now: datetime, summary: Summary) -> None:
        """Letters, calls and visits are another service's work: hand over and mark the outcome in one transaction.

        The receiving service judges compliance at its own moment (a call before it is dialled, a visit when it
        is scheduled, a letter's words when it is printed); an action it does not take is cancelled with its why.
        """
        o = t.dispatch_outbox
        refused = self.hand_offs[channel](conn, part.get_column("action_key").to_list(), now)
        part = part.with_columns(
            why=pl.col("action_key").replace_strict(dict(refused), default=None, return_dtype=pl.String)
        )
        taken = part.filter(pl.col("why").is_null())
        conn.execute(
            update(o)
            .where(o.c.outbox_key.in_(taken.get_column("outbox_key").to_list()), o.c.state == "sending")
            .values(state="sent", provider=channel, lease_until=None, sent_at=now, updated_at=now)
        )
        refusals = [
            {"k": k, "r": f"not taken by {channel}: {why}"}
            for k, why in part.filter(pl.col("why").is_not_null()).select("outbox_key", "why").iter_rows()
        ]
        if refusals:
            conn.execute(
                update(o)
                .where(o.c.outbox_key == bindparam("k"), o.c.state == "sending")
                .values(state="cancelled", reason=bindparam("r"), lease_until=None, done_at=now, updated_at=now),
                refusals,
            )
        summary.add(channel, "handed_off", taken.height)
        summary.add(channel, "cancelled", len(refusals))
        summary.cancelled.update(Counter(r["r"] for r in refusals))
        audit_log.append(
            conn,
            [
                AuditRecord(
                    self.actor,
                    ORIGIN,
                    "dispatch.handed_off" if why is None else "dispatch.cancelled",
                    "dispatch_outbox",
                    key,
                    f"handed to {channel}" if why is None else f"not taken by {channel}: {why}",
                    {"channel": channel},
                )
                for key, why in part.select("idempotency_key", "why").iter_rows()
            ],
            now,
        )

    def _addressed(self, conn: Connection, go: pl.DataFrame) -> pl.DataFrame:
        """The address of each message (the borrower's own first valid, consented contact point of the channel's
        kind, as the gate chose it) and its language; one that has no address or no text is cancelled."""
        if go.is_empty():
            return go
        zh = pl.col("language").str.starts_with("zh")
        go = go.with_columns(
            compliance_channel=pl.col("channel").replace_strict(CHANNEL, return_dtype=pl.String),
            message_language=pl.when(zh).then(pl.lit("zh")).otherwise(pl.lit("en")),
            lender_name=pl.when(zh)
            .then(pl.lit(self.messages.lender.name["zh"]))
            .otherwise(pl.lit(self.messages.lender.name["en"])),
        )
        go = self._with_addresses(conn, go)
        texts = pl.DataFrame(
            [(name, lang) for name, lang in self.messages.texts],
            schema={"template": pl.String, "message_language": pl.String},
            orient="row",
        ).with_columns(_has_text=pl.lit(True))
        go = go.join(texts, on=["template", "message_language"], how="left")
        no_address = pl.col("to").is_null()
        no_text = pl.col("_has_text").is_null()
        return go.with_columns(
            verdict=pl.when(no_address | no_text).then(pl.lit("cancel")).otherwise(pl.col("verdict")),
            reason=pl.when(no_address)
            .then(pl.format("no address: no valid, consented {} contact point of the borrower", pl.col("point_kind")))
            .when(no_text)
            .then(pl.format("no text: template {} has no {} text", pl.col("template"), pl.col("message_language")))
            .otherwise(pl.col("reason")),
        ).drop("_has_text")

    def _prepare(self, conn: Connection, go: pl.DataFrame, now: datetime) -> pl.DataFrame:
        """The messages to send: a verification code (issued on the first attempt, the same one on every retry),
        the text rendered in the borrower's language as of now, and the message id the provider will know."""
        if go.is_empty():
            return pl.DataFrame()
        o = t.dispatch_outbox
        fresh = go.filter(pl.col("code_enc").is_null())
        if fresh.height:
            codes = issue_many(
                conn,
                self.signer,
                [
                    CodeRequest("message", ch, b, lender, loan_key=loan, action_key=act)
                    for ch, b, lender, loan, act in fresh.select(
                        "compliance_channel", "borrower_key", "lender_name", "loan_key", "action_key"
                    ).iter_rows()
                ],
                now,
            )
            sealed = [self.cipher.encrypt(c, "dispatch_outbox.code_enc") for c in codes]
            digests = [digest(c) for c in codes]
            go = go.update(
                pl.DataFrame(
                    {"outbox_key": fresh.get_column("outbox_key"), "code_enc": sealed, "code_digest": digests}
                ),
                on="outbox_key",
            )
        go = go.with_columns(
            verification_code=pl.Series(
                [display(self.cipher.decrypt(e, "dispatch_outbox.code_enc")) for e in go.get_column("code_enc")],
                dtype=pl.String,
            )
        )
        overdue = pl.col("days_past_due").fill_null(0) > 0
        go = go.with_columns(
            amount=pl.when(overdue).then(pl.col("overdue_total")).otherwise(pl.col("next_due_amount")),
            due_date=pl.when(overdue).then(pl.col("oldest_unpaid_due_date")).otherwise(pl.col("next_due_date")),
        )
        go = go.with_columns(text=render(self.messages, go))
        subject = (
            pl.when(pl.col("message_language") == "zh")
            .then(pl.format(SUBJECT["zh"], "lender_name", "loan_id"))
            .otherwise(pl.format(SUBJECT["en"], "lender_name", "loan_id"))
        )
        go = go.with_columns(
            message_id=pl.Series([message_id(k) for k in go.get_column("idempotency_key")], dtype=pl.String),
            provider=pl.col("channel").replace_strict({ch: a.provider for ch, a in self.channels.items()}),
            subject=subject,
        )
        # The code (the same one on a retry), and the message id and provider known before the send: a delivery
        # report can arrive before the send's result is recorded.
        conn.execute(
            update(o)
            .where(o.c.outbox_key == bindparam("k"))
            .values(
                code_enc=bindparam("e"),
                code_digest=bindparam("d"),
                provider=bindparam("p"),
                provider_message_id=bindparam("m"),
            ),
            [
                {"k": k, "e": e, "d": dg, "p": p, "m": m}
                for k, e, dg, p, m in go.select(
                    "outbox_key", "code_enc", "code_digest", "provider", "message_id"
                ).iter_rows()
            ],
        )
        return go

    def _with_addresses(self, conn: Connection, go: pl.DataFrame) -> pl.DataFrame:
        """The borrower's own first valid, consented contact point of the channel's kind (as the gate chose it)."""
        cp = t.contact_point
        points = pl.DataFrame(
            [
                tuple(r)
                for r in conn.execute(
                    select(cp.c.contact_key, cp.c.borrower_key, cp.c.kind, cp.c.value_enc).where(
                        cp.c.borrower_key.in_(go.get_column("borrower_key").unique().to_list()),
                        cp.c.owner == "borrower",
                        cp.c.valid.is_(True),
                        cp.c.consent.is_(True),
                    )
                )
            ],
            schema={"contact_key": pl.Int64, "borrower_key": pl.Int64, "kind": pl.String, "value_enc": pl.Binary},
            orient="row",
        )
        first = points.sort("contact_key").group_by("borrower_key", "kind", maintain_order=True).first()
        go = go.with_columns(
            point_kind=pl.col("compliance_channel").replace_strict(POINT_KIND, return_dtype=pl.String)
        ).join(first, left_on=["borrower_key", "point_kind"], right_on=["borrower_key", "kind"], how="left")
        return go.with_columns(
            address=pl.format("cp:{}", pl.col("contact_key")),
            to=pl.Series(
                [None if v is None else self.cipher.decrypt(v, "contact_point.value_enc") for v in go["value_enc"]],
                dtype=pl.String,
            ),
        )

    def _send(self, outgoing: pl.DataFrame) -> pl.DataFrame:
        """One send per channel for the whole batch (one connection or request where the protocol allows)."""
        frames = []
        for (channel,), part in outgoing.partition_by("channel", as_dict=True).items():
            adapter = self.channels[str(channel)]
            columns = ("message_id", "to", "text", "subject", "message_language")
            results = adapter.send([Outgoing(*row) for row in part.select(columns).iter_rows()])
            frames.append(
                pl.DataFrame(
                    [(r.message_id, r.status, r.provider_message_id, r.error) for r in results],
                    schema=RESULTS,
                    orient="row",
                )
            )
        return pl.concat(frames)

    def _record_results(self, conn: Connection, done: pl.DataFrame, now: datetime, summary: Summary) -> None:
        """Each send's result with its audit entry and, for a message that left, its contact event.

        A retry goes back to the queue after an exponential, jittered, capped delay; the last allowed
        attempt, or a send that may or may not have happened (`doubt`), becomes a dead letter instead.
        """
        o = t.dispatch_outbox
        cap = self.policy.backoff_cap.total_seconds()
        delay = pl.min_horizontal(
            pl.lit(self.policy.backoff.total_seconds()) * pl.lit(2.0).pow(pl.col("attempts") - 1), pl.lit(cap)
        )
        # Jitter in [0.5, 1) of the delay, fixed per message and attempt: retries of a failed batch spread out.
        jitter = pl.lit(0.5) + (pl.concat_str("message_id", "attempts").hash(7) % 1000).cast(pl.Float64) / 2000
        exhausted = pl.col("attempts") >= self.policy.max_attempts
        done = done.with_columns(
            state=pl.when(pl.col("status") == "sent")
            .then(pl.lit("sent"))
            .when(pl.col("status") == "failed")
            .then(pl.lit("failed"))
            .when((pl.col("status") == "doubt") | exhausted)
            .then(pl.lit("dead"))
            .otherwise(pl.lit("queued")),
            next_at=pl.lit(now) + pl.duration(milliseconds=(delay * jitter * 1000).cast(pl.Int64)),
            reason=pl.when(pl.col("status") == "doubt")
            .then(pl.format("in doubt: may have been sent ({})", pl.col("error")))
            .when((pl.col("status") == "retry") & exhausted)
            .then(pl.format("retries exhausted after {} attempts: {}", pl.col("attempts"), pl.col("error")))
            .when(pl.col("status") == "failed")
            .then(pl.col("error")),
        )
        conn.execute(
            update(o)
            .where(o.c.outbox_key == bindparam("k"))
            .values(
                # A receipt may already have moved the row on (it can arrive before this transaction).
                state=case((o.c.state == "sending", bindparam("s")), else_=o.c.state),
                provider=bindparam("p"),
                provider_message_id=bindparam("pm"),
                address=bindparam("a"),
                next_attempt_at=func.coalesce(bindparam("n", type_=o.c.next_attempt_at.type), o.c.next_attempt_at),
                last_error=bindparam("e"),
                reason=bindparam("r"),
                lease_until=None,
                sent_at=func.coalesce(bindparam("sa", type_=o.c.sent_at.type), o.c.sent_at),
                done_at=func.coalesce(bindparam("da", type_=o.c.done_at.type), o.c.done_at),
                updated_at=now,
            ),
            [
                {
                    "k": k,
                    "s": s,
                    "p": p,
                    "pm": pm,
                    "a": a,
                    "n": n if s == "queued" else None,
                    "e": e,
                    "r": r,
                    "sa": now if s == "sent" else None,
                    "da": now if s in ("failed", "dead") else None,
                }
                for k, s, p, pm, a, n, e, r in done.select(
                    "outbox_key", "state", "provider", "provider_message_id", "address", "next_at", "error", "reason"
                ).iter_rows()
            ],
        )
        left = done.filter(pl.col("state").is_in(["sent", "failed"]))
        record_contacts(
            conn,
            [
                ContactEvent(
                    event_id=f"dispatch:{key}:{state}",
                    borrower_key=b,
                    at=now,
                    channel=ch,
                    outcome="connected" if state == "sent" else "failed",
                    loan_key=loan,
                    action_key=act,
                    address=addr,
                    agent=self.owner,
                    provider_message_id=pm,
                    details={"status": state, "provider": prov, "error": err, "code_digest": code},
                )
                for key, state, b, ch, loan, act, addr, pm, prov, err, code in left.select(
                    "idempotency_key",
                    "state",
                    "borrower_key",
                    "compliance_channel",
                    "loan_key",
                    "action_key",
                    "address",
                    "provider_message_id",
                    "provider",
                    "error",
                    "code_digest",
                ).iter_rows()
            ],
            now,
        )
        outcome = pl.when(pl.col("state") == "queued").then(pl.lit("retried")).otherwise(pl.col("state"))
        for channel, what, n in done.group_by("channel", outcome.alias("o")).len().iter_rows():
            summary.add(channel, what, n)
        audit_log.append(
            conn,
            [
                AuditRecord(
                    self.actor,
                    ORIGIN,
                    f"dispatch.{'retry' if state == 'queued' else state}",
                    "dispatch_outbox",
                    key,
                    reason or ("accepted by " + prov if state == "sent" else f"attempt {attempts} failed: {err}"),
                    {
                        "channel": ch,
                        "attempt": attempts,
                        "provider": prov,
                        "provider_message_id": pm,
                        "code_digest": code,
                        "next_attempt_at": nxt.isoformat() if state == "queued" else None,
                    },
                )
                for key, state, reason, prov, err, ch, attempts, pm, code, nxt in done.select(
                    "idempotency_key",
                    "state",
                    "reason",
                    "provider",
                    "error",
                    "channel",
                    "attempts",
                    "provider_message_id",
                    "code_digest",
                    "next_at",
                ).iter_rows()
            ],
            now,
        )

    # --- stopped dispatchers, receipts, dead letters ----------------------------------------------------

    def reconcile(self, now: datetime, summary: Summary) -> None:
        """Rows left `sending` by a dispatcher whose lease ran out: it may have stopped before, during or after
        the send. One without a provider message id never left (the send follows the commit that gives it one):
        it goes back to the queue. Otherwise, where the provider can be asked (SMS), found means sent and not
        found means send again; where it cannot (e-mail, push), the row is dead-lettered "in doubt" and never
        resent automatically. A hand-off happens in the transaction that marks it sent, so an unfinished one
        simply goes back."""
        o = t.dispatch_outbox
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(o.c.outbox_key, o.c.idempotency_key, o.c.channel, o.c.attempts, o.c.provider_message_id).where(
                    o.c.state == "sending", o.c.lease_until < now
                )
            ).all()
        if not rows:
            return
        stale = pl.DataFrame(
            [tuple(r) for r in rows],
            schema={
                "outbox_key": pl.Int64,
                "idempotency_key": pl.String,
                "channel": pl.String,
                "attempts": pl.Int64,
                "provider_message_id": pl.String,
            },
            orient="row",
        ).with_columns(message_id=pl.Series([message_id(r.idempotency_key) for r in rows], dtype=pl.String))
        verdicts = []
        for (channel,), part in stale.partition_by("channel", as_dict=True).items():
            adapter = self.channels.get(str(channel))
            provider = pl.lit(str(channel) if adapter is None else adapter.provider)
            if channel in HAND_OFF_CHANNELS:
                verdicts.append(part.with_columns(provider=provider, verdict=pl.lit("resend")))
                continue
            handed = pl.col("provider_message_id").is_not_null()
            verdicts.append(part.filter(~handed).with_columns(provider=provider, verdict=pl.lit("unsent")))
            part = part.filter(handed)
            if adapter is None or part.is_empty():
                continue  # not configured in this run: left for a dispatcher that can ask or judge it
            found = adapter.look_up(part.get_column("message_id").to_list())
            verdicts.append(
                part.with_columns(
                    provider=provider,
                    verdict=pl.lit("dead")
                    if found is None
                    else pl.when(pl.col("message_id").is_in(sorted(found)))
                    .then(pl.lit("sent"))
                    .otherwise(pl.lit("resend")),
                )
            )
        judged = pl.concat(verdicts)
        if judged.is_empty():
            return
        with self.engine.begin() as conn:
            self._apply_reconciliation(conn, judged, now, summary)

    def _apply_reconciliation(self, conn: Connection, judged: pl.DataFrame, now: datetime, summary: Summary) -> None:
        o = t.dispatch_outbox
        reasons = {
            "sent": "reconciled: the provider has the message, it was sent before the dispatcher stopped",
            "resend": "reconciled: the provider never got the message; it goes back to the queue",
            "unsent": "reconciled: the dispatcher stopped before handing the message to its channel; it goes back to"
            " the queue",
            "dead": "in doubt: may have been sent (the dispatcher stopped during the send and the provider cannot be"
            " asked); never resent automatically",
        }
        state = {"sent": "sent", "resend": "queued", "unsent": "queued", "dead": "dead"}
        conn.execute(
            update(o)
            .where(o.c.outbox_key == bindparam("k"), o.c.state == "sending", o.c.lease_until < now)
            .values(
                state=bindparam("s"),
                provider=bindparam("p"),
                provider_message_id=func.coalesce(bindparam("m"), o.c.provider_message_id),
                reason=bindparam("r"),
                lease_until=None,
                next_attempt_at=func.coalesce(bindparam("n", type_=o.c.next_attempt_at.type), o.c.next_attempt_at),
                sent_at=func.coalesce(bindparam("sa", type_=o.c.sent_at.type), o.c.sent_at),
                done_at=func.coalesce(bindparam("da", type_=o.c.done_at.type), o.c.done_at),
                updated_at=now,
            ),
            [
                {
                    "k": k,
                    "s": state[v],
                    "p": p,
                    "m": m if v == "sent" else None,
                    "r": reasons[v],
                    "n": now if state[v] == "queued" else None,
                    "sa": now if v == "sent" else None,
                    "da": now if v == "dead" else None,
                }
                for k, v, p, m in judged.select("outbox_key", "verdict", "provider", "message_id").iter_rows()
            ],
        )
        sent = judged.filter(pl.col("verdict") == "sent")
        if sent.height:
            self._sent_events(conn, sent, now)
        for channel, verdict, n in judged.group_by("channel", "verdict").len().iter_rows():
            summary.add(
                channel,
                {
                    "sent": "reconciled_sent",
                    "resend": "reconciled_resend",
                    "unsent": "reconciled_resend",
                    "dead": "dead",
                }[verdict],
                n,
            )
        audit_log.append(
            conn,
            [
                AuditRecord(
                    self.actor, ORIGIN, f"dispatch.reconciled_{v}", "dispatch_outbox", k, reasons[v], {"channel": ch}
                )
                for k, v, ch in judged.select("idempotency_key", "verdict", "channel").iter_rows()
            ],
            now,
        )

    def _sent_events(self, conn: Connection, sent: pl.DataFrame, now: datetime) -> None:
        """The contact event of messages found at the provider after a stop (the send's own record was lost)."""
        o, a = t.dispatch_outbox, t.proposed_action
        rows = conn.execute(
            select(
                o.c.idempotency_key,
                t.loan.c.borrower_key,
                o.c.channel,
                o.c.loan_key,
                o.c.action_key,
                o.c.provider_message_id,
                o.c.provider,
                o.c.code_digest,
            )
            .select_from(o.join(t.loan, t.loan.c.loan_key == o.c.loan_key).join(a, a.c.action_key == o.c.action_key))
            .where(o.c.outbox_key.in_(sent.get_column("outbox_key").to_list()))
        ).all()
        record_contacts(
            conn,
            [
                ContactEvent(
                    event_id=f"dispatch:{key}:sent",
                    borrower_key=b,
                    at=now,
                    channel=CHANNEL[ch],
                    outcome="connected",
                    loan_key=loan,
                    action_key=act,
                    agent=self.owner,
                    provider_message_id=pm,
                    details={"status": "sent", "provider": prov, "code_digest": code, "reconciled": True},
                )
                for key, b, ch, loan, act, pm, prov, code in rows
            ],
            now,
        )

    def pull_receipts(self, now: datetime, summary: Summary) -> None:
        """Delivery reports the providers hold for us (the pull path beside the webhook)."""
        for channel, adapter in self.channels.items():
            if not isinstance(adapter, ReceiptSource):
                continue
            try:
                receipts = adapter.receipts()
            except (OSError, ValueError) as exc:
                # Reports stay at the provider until the next pull; this run's sends are already recorded.
                summary.errors.append(f"{channel}: delivery reports not pulled: {exc}")
                continue
            if receipts:
                for outcome, n in record_receipts(self.engine, receipts, now, self.actor).items():
                    summary.add(channel, outcome, n)


def drain(recipe: Callable[[], Dispatcher], owner: str, now: datetime, share: tuple[int, int]) -> Summary:
    """A helper process: claim and send batches of its `share` of the debtors (see `claim`) as `owner` until there
    is nothing left to claim at `now`. Reconciling, enqueueing and pulling receipts are the starting dispatcher's."""
    worker = replace(recipe(), owner=owner, workers=1)
    summary = Summary()
    try:
        while not (claimed := worker.claim(now, worker.policy.batch, share)).is_empty():
            worker.process(claimed, now, summary)
    finally:
        for adapter in worker.channels.values():
            adapter.close()
        worker.engine.dispose()
    return summary


def start_worker_server(modules: Sequence[str]) -> None:
    """Start the process helpers are forked from, with `modules` imported in it once (seconds of imports that
    each helper would otherwise repeat): early, so that it gets ready while this process starts its work."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(modules))
    forkserver.ensure_running()


# What the send-time check reads of a loan (cycle.loan_facts), in the columns the gate takes from the cycle.
SEND_TIME_FACTS: Final = (
    "loan_key", "loan_id", "borrower_id", "product", "currency", "days_past_due", "overdue_total",
    "outstanding_total", "next_due_amount", "next_due_date", "oldest_unpaid_due_date", "language", "age", "flags",
    "has_outreach_hold",
)  # fmt: skip


def record_receipts(engine: Engine, receipts: Sequence[Receipt], now: datetime, actor: str) -> dict[str, int]:
    """Delivery reports: each becomes a contact event (delivered or failed) and moves its outbox row on, once.

    Idempotent: a report seen before (the webhook and the pull path may both bring it) records nothing new.
    Reports for messages that are not ours are ignored. Returns new outcomes counted: delivered, failed.
    """
    if not receipts:
        return {}
    now = now.astimezone(UTC)
    o = t.dispatch_outbox
    by_id = {r.provider_message_id: r for r in receipts}
    with engine.begin() as conn:
        rows = conn.execute(
            select(
                o.c.outbox_key,
                o.c.idempotency_key,
                o.c.provider_message_id,
                o.c.channel,
                o.c.loan_key,
                o.c.action_key,
                o.c.address,
                o.c.provider,
                o.c.state,
                t.loan.c.borrower_key,
            )
            .select_from(o.join(t.loan, t.loan.c.loan_key == o.c.loan_key))
            .where(o.c.provider_message_id.in_(sorted(by_id)))
        ).all()
        events = [
            ContactEvent(
                event_id=f"dispatch:{r.idempotency_key}:receipt",
                borrower_key=r.borrower_key,
                # A report cannot be later than the moment it is recorded (clocks differ; tests run at a set now).
                at=min(_utc(by_id[r.provider_message_id].at) or now, now),
                channel=CHANNEL[r.channel],
                outcome="delivered" if by_id[r.provider_message_id].delivered else "failed",
                loan_key=r.loan_key,
                action_key=r.action_key,
                address=r.address,
                agent="provider:" + str(r.provider),
                provider_message_id=r.provider_message_id,
                details={"status": by_id[r.provider_message_id].status, "error": by_id[r.provider_message_id].error},
            )
            for r in rows
        ]
        new_ids = _new_event_ids(conn, [e.event_id for e in events])
        fresh = [(r, e) for r, e in zip(rows, events, strict=True) if e.event_id in new_ids]
        if not fresh:
            return {}
        # A report for a message still `sending` proves it left (its dispatcher stopped, or has not recorded the
        # send yet): its sent event is recorded here, under the id the dispatcher would use, so it stays one.
        proven = [
            replace(
                e,
                event_id=e.event_id.removesuffix(":receipt") + ":sent",
                outcome="connected",
                details={"status": "sent", "provider": r.provider, "proven_by": "delivery report"},
            )
            for r, e in fresh
            if r.state == "sending"
        ]
        record_contacts(conn, [*proven, *(e for _, e in fresh)], now)
        conn.execute(
            update(o)
            .where(o.c.outbox_key == bindparam("k"), or_(o.c.state == "sending", o.c.state == "sent"))
            .values(state=bindparam("s"), done_at=bindparam("at"), last_error=bindparam("e"), updated_at=now)
            .execution_options(synchronize_session=False),
            [
                {"k": r.outbox_key, "s": e.outcome, "at": e.at, "e": by_id[r.provider_message_id].error}
                for r, e in fresh
            ],
        )
        audit_log.append(
            conn,
            [
                AuditRecord(
                    actor,
                    ORIGIN,
                    f"dispatch.{e.outcome}",
                    "dispatch_outbox",
                    r.idempotency_key,
                    f"delivery report from {r.provider}: {by_id[r.provider_message_id].status}",
                    {"provider_message_id": r.provider_message_id, "at": e.at.isoformat()},
                )
                for r, e in fresh
            ],
            now,
        )
    return dict(Counter(e.outcome for _, e in fresh))


def _new_event_ids(conn: Connection, ids: list[str]) -> set[str]:
    seen = set(conn.execute(select(t.contact_event.c.event_id).where(t.contact_event.c.event_id.in_(ids))).scalars())
    return set(ids) - seen


def dead_letters(engine: Engine) -> list[dict[str, Any]]:
    """The dead-letter list a person reviews: why each message died and how often it was tried."""
    o = t.dispatch_outbox
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                o.c.outbox_key,
                o.c.idempotency_key,
                o.c.channel,
                o.c.attempts,
                o.c.provider,
                o.c.reason,
                o.c.last_error,
                o.c.done_at,
            )
            .where(o.c.state == "dead")
            .order_by(o.c.outbox_key)
        ).all()
    return [
        {
            "id": r.outbox_key,
            "key": r.idempotency_key,
            "channel": r.channel,
            "attempts": r.attempts,
            "provider": r.provider,
            "reason": r.reason,
            "last_error": r.last_error,
            "dead_since": None if r.done_at is None else (_utc(r.done_at) or r.done_at).isoformat(),
            "in_doubt": str(r.reason or "").startswith("in doubt"),
        }
        for r in rows
    ]


def replay(engine: Engine, ids: Sequence[int] | None, now: datetime, actor: str, reason: str) -> int:
    """Put dead letters back in the queue (all of them when `ids` is None), each audited with who and why.

    A person replaying an "in doubt" message accepts that the debtor may receive it twice.
    """
    now = now.astimezone(UTC)
    o = t.dispatch_outbox
    with engine.begin() as conn:
        q = select(o.c.outbox_key, o.c.idempotency_key, o.c.reason).where(o.c.state == "dead")
        if ids is not None:
            q = q.where(o.c.outbox_key.in_(list(ids)))
        rows = conn.execute(q).all()
        if not rows:
            return 0
        conn.execute(
            update(o)
            .where(and_(o.c.outbox_key.in_([r.outbox_key for r in rows]), o.c.state == "dead"))
            .values(
                state="queued",
                attempts=0,
                # Due at once: as of when it was last due, or now, whichever is earlier.
                next_attempt_at=case((o.c.next_attempt_at < now, o.c.next_attempt_at), else_=now),
                lease_until=None,
                done_at=None,
                updated_at=now,
            )
        )
        audit_log.append(
            conn,
            [
                AuditRecord(
                    actor,
                    "cli",
                    "dispatch.replayed",
                    "dispatch_outbox",
                    r.idempotency_key,
                    reason,
                    {"was": r.reason},
                )
                for r in rows
            ],
            now,
        )
    return len(rows)


def outbox_counts(engine: Engine) -> dict[str, dict[str, int]]:
    """Rows by channel and state: what `dispatch status` shows."""
    o = t.dispatch_outbox
    with engine.connect() as conn:
        rows = conn.execute(select(o.c.channel, o.c.state, func.count()).group_by(o.c.channel, o.c.state)).all()
    out: dict[str, dict[str, int]] = {}
    for channel, state, n in sorted(rows):
        out.setdefault(str(channel), {})[str(state)] = int(n)
    return out


_DECISION: Final = ("compliance_status", "compliance_reason", "compliance_rules", "rulebook_version", "scheduled_at")
