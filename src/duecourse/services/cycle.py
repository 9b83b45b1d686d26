"""The daily cycle: the book as of a day -> ledger state -> cases -> ladder proposals -> compliance -> write-back.

Facts are gathered first, evaluated purely with an explicit `as_of`, and only then applied, in one
transaction with their audit entries. Idempotent: every row written has a natural key (snapshot:
day + loan; proposal: day + loan + step), so running a day again writes only what is missing, and
when nothing is missing it writes nothing at all.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from duecourse.adapters.db import tables as t
from duecourse.adapters.db.bulk import read_frame, write_frame
from duecourse.audit import log as audit_log
from duecourse.audit.chain import AuditRecord
from duecourse.compliance.port import CompliancePort
from duecourse.domain import frames as f
from duecourse.domain.errors import CycleError
from duecourse.ledger.engine import buckets_the_day_before, effective_payments, ledger_state, transitions
from duecourse.plans.follow_up import (
    CASH,
    LIVE_PLANS,
    PROMISES,
    follow_up_plans,
    follow_up_promises,
    pausing_loans,
)
from duecourse.plans.policy import FollowUp
from duecourse.services.book_frames import BookFrames, load_book
from duecourse.strategy.ladder import propose
from duecourse.strategy.model import Strategy

STAGES = ("extract", "ledger", "cases", "strategy", "compliance", "write-back")

# A loan without an open case (pre-due reminders) counts its step history over one billing month.
NO_CASE_HISTORY_DAYS = 31
DEFAULT_FOLLOW_UP = FollowUp()  # the shipped policy's values (policy/plans.yaml `follow_up`)


@dataclass
class CycleSummary:
    as_of: date
    replay: bool
    dry_run: bool
    changed: bool = False
    loans: int = 0
    by_bucket: list[dict[str, Any]] = field(default_factory=list)
    transitions: dict[str, int] = field(default_factory=dict)
    proposals: list[dict[str, Any]] = field(default_factory=list)
    compliance: dict[str, int] = field(default_factory=dict)
    blocks_by_rule: dict[str, int] = field(default_factory=dict)
    promises: dict[str, int] = field(default_factory=dict)  # promises judged today, by outcome
    plans: dict[str, int] = field(default_factory=dict)  # plans ended today: broken | completed
    cases_opened: int = 0
    cases_closed: int = 0
    proposals_new: int = 0
    snapshots_new: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["as_of"] = self.as_of.isoformat()
        return out


def last_run_day(engine: Engine) -> date | None:
    with engine.connect() as conn:
        value = conn.execute(select(func.max(t.cycle_run.c.as_of))).scalar()
    if value is None:
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def run_cycle(
    engine: Engine,
    strategy: Strategy,
    gate: CompliancePort,
    as_of: date,
    *,
    now: datetime,
    actor: str = "system:cycle",
    replay: bool = False,
    dry_run: bool = False,
    follow_up: FollowUp = DEFAULT_FOLLOW_UP,
    on_stage: Callable[[str], None] = lambda _stage: None,
) -> CycleSummary:
    summary = CycleSummary(as_of=as_of, replay=replay, dry_run=dry_run)
    last = last_run_day(engine)
    if last is not None and as_of < last and not replay:
        raise CycleError(f"the cycle last ran for {last}; {as_of} is earlier — use --replay to run an earlier day")
    marks: list[tuple[str, float]] = []

    def stage(name: str) -> None:
        on_stage(name)
        marks.append((name, time.perf_counter()))

    stage("extract")
    book = load_book(engine, as_of)
    open_cases = read_frame(
        engine,
        "SELECT case_key, loan_key, opened_on FROM collection_case WHERE closed_on IS NULL",
        pl.Schema({"case_key": pl.Int64, "loan_key": pl.Int64, "opened_on": pl.Date}),
    )
    history = _step_history(engine, as_of)

    stage("ledger")
    state = ledger_state(book.loans, book.instalments, book.payments, book.holds, book.conventions, as_of)
    # Only the summary and the snapshot need each loan's move since the day before, not the ladder: that
    # runs on the other core while the ladder works, and is joined before the strategy stage ends.
    with ThreadPoolExecutor(max_workers=1) as background:
        moves = background.submit(_transitions, book, state, as_of)

        stage("cases")
        delinquent = state.filter(pl.col("bucket") != "current").select("loan_key")
        to_open = (
            pl.DataFrame(schema={"loan_key": pl.Int64})
            if replay
            else delinquent.join(open_cases, on="loan_key", how="anti")
        )
        to_close = (
            open_cases.head(0)
            if replay
            else open_cases.join(state.select("loan_key", "bucket", "outstanding_total"), on="loan_key")
            .filter(pl.col("bucket") == "current")
            .with_columns(
                close_reason=pl.when(pl.col("outstanding_total") <= 0)
                .then(pl.lit("paid_off"))
                .otherwise(pl.lit("cured"))
            )
        )

        stage("strategy")
        promises, plans = _follow_ups(engine, book, state, as_of, now, follow_up)
        facts = loan_facts(book, state, as_of, pausing_loans(promises, plans)).filter(pl.col("outstanding_total") > 0)
        proposals = propose(facts, history, strategy, as_of)
        state = state.join(moves.result(), on="loan_key", how="left")

    stage("compliance")
    # The gate needs what the ladder knew (facts, with the due dates a message must state).
    asked = proposals.join(facts, on="loan_key")
    reviewed = gate.review(asked, as_of)
    reviewed = reviewed.with_columns(
        as_of=pl.lit(as_of),
        idempotency_key=pl.lit(as_of.isoformat() + ":") + pl.col("loan_id") + pl.lit(":") + pl.col("step"),
    )

    _summarise(summary, state, reviewed, len(to_open), len(to_close))
    promises, plans = promises.filter(pl.col("state") != "open"), plans.filter(pl.col("state") != "active")
    summary.promises = dict(promises.group_by("state").len().sort("state").iter_rows())
    summary.plans = dict(plans.group_by("state").len().sort("state").iter_rows())

    stage("write-back")
    if not dry_run:
        _write_back(
            engine,
            summary,
            strategy,
            as_of,
            now,
            actor,
            replay,
            state,
            to_open,
            to_close,
            reviewed,
            promises,
            plans,
        )
    marks.append(("done", time.perf_counter()))
    summary.timings = {name: round(b - a, 3) for (name, a), (_, b) in itertools.pairwise(marks)}
    return summary


def _transitions(book: BookFrames, today: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """(loan_key, transition): each loan's bucket move since the day before (ledger/engine.py)."""
    args = (book.loans, book.instalments, book.payments, book.holds, book.conventions)
    return transitions(today, buckets_the_day_before(today, *args, as_of), book.conventions)


def _step_history(engine: Engine, as_of: date) -> pl.DataFrame:
    """When each step was last proposed for each loan: within its open case, else within a billing month."""
    since = (as_of - timedelta(days=NO_CASE_HISTORY_DAYS)).isoformat()
    d = as_of.isoformat()
    return read_frame(
        engine,
        "SELECT a.loan_key, a.step, MAX(a.as_of) AS last_proposed_on FROM proposed_action a"
        " LEFT JOIN collection_case c ON c.loan_key = a.loan_key AND c.closed_on IS NULL"
        f" WHERE a.as_of < '{d}' AND a.as_of >= COALESCE(c.opened_on, '{since}')"
        " GROUP BY a.loan_key, a.step",
        pl.Schema({"loan_key": pl.Int64, "step": pl.String, "last_proposed_on": pl.Date}),
    )


def _follow_ups(
    engine: Engine, book: BookFrames, state: pl.DataFrame, as_of: date, now: datetime, follow_up: FollowUp
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Open promises and live plans as the day finds them (plans/follow_up.py)."""
    promises = read_frame(
        engine,
        "SELECT promise_key, loan_key, amount, due_date, taken_at FROM promise_to_pay WHERE state = 'open'",
        pl.Schema(
            {
                "promise_key": pl.Int64(),
                "loan_key": pl.Int64(),
                "amount": pl.Int64(),
                "due_date": pl.Date(),
                "taken_at": pl.Datetime("us", "UTC"),
            }
        ),
    )
    promises = promises.with_columns(taken_on=pl.col("taken_at").dt.date()).filter(pl.col("taken_on") <= as_of)
    # Non-cash plan credits (negative keys, ledger/plans.py) keep no promise.
    cash = effective_payments(book.payments, as_of).filter(pl.col("payment_key") > 0).select(CASH.names())
    plans = read_frame(
        engine,
        "SELECT plan_key, loan_key FROM repayment_plan"
        f" WHERE state = 'active' AND effective_date <= '{as_of.isoformat()}'",
        LIVE_PLANS,
    )
    return (
        follow_up_promises(promises.select(PROMISES.names()), cash, as_of, follow_up.promise_grace_days),
        follow_up_plans(plans, state, follow_up.break_after_days),
    )


def loan_facts(book: BookFrames, state: pl.DataFrame, as_of: date, pausing: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per loan of `state`: the FACTS the ladder evaluates (docs/strategies.md) and the due dates a
    message states — what the cycle, the dispatcher and the call desk all judge a loan by. `pausing` gives
    the loans with an open promise or an active plan (none when not given)."""
    if pausing is None:
        pausing = pl.DataFrame(
            schema={"loan_key": pl.Int64, "has_active_promise": pl.Boolean, "has_active_plan": pl.Boolean}
        )
    holds = book.holds.filter(
        pl.col("pauses_outreach")
        & (pl.col("start_date") <= as_of)
        & (pl.col("end_date").is_null() | (pl.col("end_date") >= as_of))
    )
    loans = f.flag_sorted(book.loans.select("loan_key", "loan_id", "borrower_key", "product", "currency"), "loan_key")
    loan_holds = holds.filter(pl.col("loan_key").is_not_null()).select("loan_key").unique()
    borrower_holds = holds.filter(pl.col("loan_key").is_null()).select("borrower_key").unique()
    held = (
        pl.concat([loan_holds, loans.join(borrower_holds, on="borrower_key").select("loan_key")])
        .unique()
        .with_columns(has_outreach_hold=pl.lit(True))
    )
    years = pl.lit(as_of.year) - pl.col("birth_date").dt.year()
    before_birthday = (pl.col("birth_date").dt.month() > as_of.month) | (
        (pl.col("birth_date").dt.month() == as_of.month) & (pl.col("birth_date").dt.day() > as_of.day)
    )
    borrowers = book.borrowers.with_columns(age=(years - before_birthday.cast(pl.Int32)).cast(pl.Int32))
    # Lazy, so only the columns selected below travel through the joins (the state has twice as many).
    return (
        state.lazy()
        .join(loans.lazy(), on="loan_key")
        .join(
            borrowers.lazy().select("borrower_key", "borrower_id", "flags", "age", "language"),
            on="borrower_key",
            how="left",
        )
        .join(held.lazy(), on="loan_key", how="left")
        .join(pausing.lazy(), on="loan_key", how="left")
        .select(
            "loan_key",
            "loan_id",
            "borrower_key",
            "borrower_id",
            "product",
            "currency",
            "days_past_due",
            "bucket",
            "overdue_total",
            "outstanding_total",
            days_to_next_due=(pl.col("next_due_date") - pl.lit(as_of)).dt.total_days().cast(pl.Int32),
            next_due_amount=pl.col("next_due_amount"),
            next_due_date=pl.col("next_due_date"),
            oldest_unpaid_due_date=pl.col("oldest_unpaid_due_date"),
            flags=pl.col("flags").fill_null(pl.lit([], pl.List(pl.String))),
            age=pl.col("age"),
            language=pl.col("language"),
            has_outreach_hold=pl.col("has_outreach_hold").fill_null(False),
            has_active_promise=pl.col("has_active_promise").fill_null(False),
            has_active_plan=pl.col("has_active_plan").fill_null(False),
        )
        .collect()
    )


def _summarise(summary: CycleSummary, state: pl.DataFrame, reviewed: pl.DataFrame, opened: int, closed: int) -> None:
    summary.loans = state.height
    by_bucket = (
        state.group_by("bucket")
        .agg(
            accounts=pl.len(),
            outstanding=pl.col("outstanding_total").sum(),
            overdue=pl.col("overdue_total").sum(),
            min_dpd=pl.col("days_past_due").min(),
        )
        .sort("min_dpd", "bucket")
        .drop("min_dpd")
    )
    summary.by_bucket = by_bucket.to_dicts()
    summary.transitions = dict(state.group_by("transition").len().sort("transition").iter_rows())
    summary.proposals = (
        reviewed.group_by("step", "channel")
        .agg(count=pl.len(), min_priority=pl.col("priority").min())
        .sort("min_priority", "step")
        .drop("min_priority")
        .to_dicts()
    )
    summary.compliance = dict(reviewed.group_by("compliance_status").len().sort("compliance_status").iter_rows())
    blocking = reviewed.filter(pl.col("compliance_status").is_in(["blocked", "rescheduled"]))
    summary.blocks_by_rule = dict(
        blocking.select(rule=pl.col("compliance_rules").str.split(","))
        .explode("rule")
        .drop_nulls()
        .group_by("rule")
        .len()
        .sort("len", "rule", descending=[True, False])
        .iter_rows()
    )
    summary.cases_opened = opened
    summary.cases_closed = closed


# What each batch audit entry commits to: the day's rows of a table, these columns in this order (ADR 0005).
_TEXT, _INT, _DAY = pl.String(), pl.Int64(), pl.Date()
BATCH_CONTENT: dict[str, tuple[str, str, pl.Schema]] = {
    # action: (table, the column holding the day, the columns hashed; rows are sorted by all of them)
    "case.opened": ("collection_case", "opened_on", pl.Schema({"loan_key": _INT, "opened_on": _DAY})),
    "case.closed": (
        "collection_case",
        "closed_on",
        pl.Schema({"case_key": _INT, "loan_key": _INT, "closed_on": _DAY, "close_reason": _TEXT}),
    ),
    "action.proposed": (
        "proposed_action",
        "as_of",
        pl.Schema(
            {
                "idempotency_key": _TEXT,
                "as_of": _DAY,
                "loan_key": _INT,
                "case_key": _INT,
                "segment": _TEXT,
                "ladder": _TEXT,
                "step": _TEXT,
                "action": _TEXT,
                "channel": _TEXT,
                "template": _TEXT,
                "priority": _INT,
                "arm": _TEXT,
                "reason": _TEXT,
                "compliance_status": _TEXT,
                "compliance_reason": _TEXT,
                "compliance_rules": _TEXT,
                "rulebook_version": _TEXT,
                "scheduled_at": pl.Datetime("us", "UTC"),
            }
        ),
    ),
}


def content_digest(rows: pl.DataFrame) -> str:
    """SHA-256 of rows as CSV: a header, comma-separated, non-numeric values double-quoted, nulls empty, LF."""
    return hashlib.sha256(rows.write_csv(quote_style="non_numeric").encode()).hexdigest()


def day_rows(conn: Connection, action: str, as_of: date) -> pl.DataFrame:
    """The rows a batch entry of `action` for `as_of` covers, as `conn` sees them, in the order its digest hashes them.

    Read through `conn`, not the bulk reader: inside the cycle's write transaction a second SQLite library
    (ADBC's) must not open the file, because the two do not share their file locks and the second would
    reset the write-ahead log index under the first.
    """
    table, day, schema = BATCH_CONTENT[action]
    tbl = t.metadata.tables[table]
    rows = conn.execute(select(*(tbl.c[c] for c in schema.names())).where(tbl.c[day] == as_of)).all()
    return pl.DataFrame(rows, schema=schema, orient="row").sort(schema.names(), nulls_last=True)


def _batch(
    actor: str,
    action: str,
    as_of: date,
    reason: str,
    earlier: pl.DataFrame,
    new: pl.DataFrame,
    payload: dict[str, Any],
) -> AuditRecord:
    """One audit entry for a batch of decisions: it commits to the day's rows after this run (ADR 0005).

    `earlier` are the day's rows before this run wrote `new` (a day run again after a late import), so the
    digest always covers the whole day as it stands once this transaction commits.
    """
    table, _, schema = BATCH_CONTENT[action]
    rows = pl.concat([earlier, new.select([pl.col(c).cast(t) for c, t in schema.items()])])
    return AuditRecord(
        actor,
        "cycle",
        action,
        table,
        as_of.isoformat(),
        reason,
        {
            "as_of": as_of.isoformat(),
            "new_rows": new.height,
            "day_rows": rows.height,
            "sha256": content_digest(rows.sort(schema.names(), nulls_last=True)),
            **payload,
        },
    )


def _write_back(
    engine: Engine,
    summary: CycleSummary,
    strategy: Strategy,
    as_of: date,
    now: datetime,
    actor: str,
    replay: bool,
    state: pl.DataFrame,
    to_open: pl.DataFrame,
    to_close: pl.DataFrame,
    reviewed: pl.DataFrame,
    promises: pl.DataFrame,
    plans: pl.DataFrame,
) -> None:
    """Everything the day decided, with its audit entries, in one transaction; only what is not there yet.

    Each kind of decision (cases opened, cases closed, actions proposed) is one audit entry per run that
    commits to a digest of the day's rows (ADR 0005), not one entry per row.
    """
    records: list[AuditRecord] = []
    with engine.begin() as conn:
        ran_before = conn.execute(select(t.cycle_run.c.run_key).where(t.cycle_run.c.as_of == as_of).limit(1)).first()
        existing_snapshots = conn.execute(
            select(func.count()).select_from(t.delinquency_snapshot).where(t.delinquency_snapshot.c.as_of == as_of)
        ).scalar_one()
        if existing_snapshots < state.height:
            snapshot = state.select(
                pl.lit(as_of).alias("as_of"),
                "loan_key",
                "days_past_due",
                "bucket",
                "transition",
                "overdue_total",
                "outstanding_total",
            )
            summary.snapshots_new = write_frame(conn, t.delinquency_snapshot, snapshot, on_conflict_do_nothing=True)

        if to_open.height:
            opened = to_open.select("loan_key", opened_on=pl.lit(as_of))
            earlier = day_rows(conn, "case.opened", as_of)
            write_frame(conn, t.collection_case, opened)
            reason = "delinquent: left the current bucket"
            records.append(_batch(actor, "case.opened", as_of, reason, earlier, opened, {}))
        if to_close.height:
            closing = to_close.select("case_key", "loan_key", closed_on=pl.lit(as_of), close_reason="close_reason")
            earlier = day_rows(conn, "case.closed", as_of)
            conn.execute(
                update(t.collection_case)
                .where(t.collection_case.c.case_key == bindparam("ck"))
                .values(closed_on=bindparam("co"), close_reason=bindparam("cr")),
                [
                    {"ck": ck, "co": as_of, "cr": cr}
                    for ck, cr in closing.select("case_key", "close_reason").iter_rows()
                ],
            )
            by_reason = dict(closing.group_by("close_reason").len().sort("close_reason").iter_rows())
            records.append(
                _batch(
                    actor,
                    "case.closed",
                    as_of,
                    "back in the current bucket",
                    earlier,
                    closing,
                    {"by_reason": by_reason},
                )
            )

        existing_keys = pl.DataFrame(
            {
                "idempotency_key": conn.execute(
                    select(t.proposed_action.c.idempotency_key).where(t.proposed_action.c.as_of == as_of)
                )
                .scalars()
                .all()
            },
            schema={"idempotency_key": pl.String},
        )
        new = reviewed.join(existing_keys, on="idempotency_key", how="anti")
        if new.height:
            open_cases = pl.DataFrame(
                conn.execute(
                    select(t.collection_case.c.loan_key, t.collection_case.c.case_key).where(
                        t.collection_case.c.closed_on.is_(None)
                    )
                ).all(),
                schema={"loan_key": pl.Int64, "case_key": pl.Int64},
                orient="row",
            )
            new = new.join(open_cases, on="loan_key", how="left").select(BATCH_CONTENT["action.proposed"][2].names())
            earlier = day_rows(conn, "action.proposed", as_of)
            summary.proposals_new = write_frame(conn, t.proposed_action, new)
            by_step = dict(new.group_by("step").len().sort("step").iter_rows())
            by_status = dict(new.group_by("compliance_status").len().sort("compliance_status").iter_rows())
            records.append(
                _batch(
                    actor,
                    "action.proposed",
                    as_of,
                    f"treatment ladder {strategy.name}: each proposal carries its step, reason and arm",
                    earlier,
                    new,
                    {"by_step": by_step, "compliance": by_status},
                )
            )

        if not replay:  # a replayed day re-derives its decisions; what was judged then stays judged
            records += _judge_agreements(conn, actor, as_of, promises, plans)

        summary.changed = bool(summary.snapshots_new or records)
        if summary.changed or ran_before is None:
            conn.execute(
                insert(t.cycle_run).values(
                    as_of=as_of,
                    started_at=now,
                    finished_at=now,
                    replay=replay,
                    strategy_digest=strategy.digest,
                    summary=summary.to_json(),
                )
            )
            records.append(
                AuditRecord(
                    actor,
                    "cycle",
                    "cycle.completed",
                    "cycle_run",
                    as_of.isoformat(),
                    "replay of an earlier day" if replay else "daily cycle",
                    {
                        "strategy": strategy.name,
                        "strategy_digest": strategy.digest,
                        "loans": summary.loans,
                        "snapshots_new": summary.snapshots_new,
                        "proposals_new": summary.proposals_new,
                        "cases_opened": summary.cases_opened,
                        "cases_closed": summary.cases_closed,
                    },
                )
            )
            audit_log.append(conn, records, now)


def _judge_agreements(
    conn: Connection, actor: str, as_of: date, promises: pl.DataFrame, plans: pl.DataFrame
) -> list[AuditRecord]:
    """Store the day's judgements of promises and plans (only rows still open / active, so a second run of
    the day changes nothing), one audit entry each: each is a decision about one debtor's agreement."""
    records = []
    p, r = t.promise_to_pay, t.repayment_plan
    for key, state, paid in promises.select("promise_key", "state", "paid").iter_rows():
        done = conn.execute(update(p).where(p.c.promise_key == key, p.c.state == "open").values(state=state))
        if done.rowcount:
            records.append(
                AuditRecord(
                    actor, "cycle", f"promise.{state}", "promise_to_pay", str(key),
                    f"followed up on {as_of}: {paid} paid since it was taken", {"paid": paid},
                )
            )  # fmt: skip
    for key, state in plans.select("plan_key", "state").iter_rows():
        done = conn.execute(
            update(r).where(r.c.plan_key == key, r.c.state == "active").values(state=state, ended_on=as_of)
        )
        if done.rowcount:
            why = "a plan instalment is past due beyond the limit" if state == "broken" else "nothing is owed"
            records.append(AuditRecord(actor, "cycle", f"plan.{state}", "repayment_plan", str(key), why, {}))
    return records
