"""Ladder evaluation: the day's treatment proposals for a whole book, set-based, with a reason per proposal.

For each loan: the first segment whose conditions all hold; the arm of its borrower; the first step
of that segment's ladder for the arm whose conditions all hold. That step is proposed unless a stop
condition holds or its cadence says not today — then the loan gets no treatment today (the engine
does not fall through to later steps). Arms are hashed only for loans that can still get a proposal,
because hashing is the one per-row Python pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

import polars as pl

from duecourse.domain.money import MINOR_UNIT_EXPONENT
from duecourse.strategy.arms import assign_arms
from duecourse.strategy.model import Segment, Step, StepKind, StopCondition, Strategy
from duecourse.strategy.predicates import all_of

FACTS: Final = pl.Schema(
    {
        "loan_key": pl.Int64(),
        "loan_id": pl.String(),
        "borrower_key": pl.Int64(),
        "borrower_id": pl.String(),
        "product": pl.String(),
        "currency": pl.String(),
        "days_past_due": pl.Int32(),
        "bucket": pl.String(),
        "overdue_total": pl.Int64(),
        "outstanding_total": pl.Int64(),
        "days_to_next_due": pl.Int32(),  # null: no future instalment
        "next_due_amount": pl.Int64(),
        "flags": pl.List(pl.String()),
        "age": pl.Int32(),  # null: unknown
        "language": pl.String(),
        "has_outreach_hold": pl.Boolean(),
        "has_active_promise": pl.Boolean(),
        "has_active_plan": pl.Boolean(),
    }
)
"""One row per loan the ladder may treat (built by the cycle)."""

STEP_HISTORY: Final = pl.Schema({"loan_key": pl.Int64(), "step": pl.String(), "last_proposed_on": pl.Date()})
"""When each step was last proposed for the loan's open case (absent: never)."""

PROPOSALS: Final = pl.Schema(
    {
        "loan_key": pl.Int64(),
        "segment": pl.String(),
        "ladder": pl.String(),
        "step": pl.String(),
        "action": pl.String(),  # the step kind
        "channel": pl.String(),
        "template": pl.String(),
        "priority": pl.Int32(),
        "arm": pl.String(),
        "reason": pl.String(),
    }
)
"""At most one row per loan: the step proposed today."""

_ALWAYS_READ: Final = (
    "loan_key",
    "borrower_id",
    "overdue_total",
    "next_due_amount",
    "has_outreach_hold",
    "has_active_promise",
    "has_active_plan",
)
_GID: Final = "_gid"  # global step number across all ladders
_SEG: Final = "_seg"  # index of the matched segment


@dataclass(frozen=True)
class _Plan:
    """A strategy compiled for evaluation: steps numbered globally, ladders and arms indexed."""

    strategy: Strategy
    steps: tuple[tuple[str, Step], ...]  # (ladder id, step), numbered by position
    ladder_ids: tuple[str, ...]

    @classmethod
    def of(cls, strategy: Strategy) -> _Plan:
        steps = tuple((lid, step) for lid, ladder in strategy.ladders.items() for step in ladder.steps)
        return cls(strategy, steps, tuple(strategy.ladders))

    def columns(self) -> list[str]:
        predicates = [p for seg in self.strategy.segments for p in seg.when]
        predicates += [p for _, s in self.steps for p in s.when]
        read = {c for p in predicates for c in p.columns} | set(_ALWAYS_READ)
        return [c for c in FACTS.names() if c in read]

    def same_step_codes(self) -> dict[int, int]:
        """Global step number -> a code shared by identical steps (an alias `*call_1` in two ladders is one step)."""
        codes: dict[Step, int] = {}
        return {gid: codes.setdefault(step, len(codes)) for gid, (_, step) in enumerate(self.steps)}

    def step_codes(self) -> dict[str, int]:
        """A dense integer per step id; a step id shared by several ladders is one step (one history)."""
        codes: dict[str, int] = {}
        for _, step in self.steps:
            codes.setdefault(step.id, len(codes))
        return codes

    def step_table(self) -> pl.DataFrame:
        """What `_admit` needs per step: its history code, cadence and stop conditions."""

        def stops(c: StopCondition) -> list[bool]:
            return [c in s.stop_if for _, s in self.steps]

        codes = self.step_codes()
        return pl.DataFrame(
            {
                _GID: list(range(len(self.steps))),
                "_code": [codes[s.id] for _, s in self.steps],
                "_every_days": [s.repeat.every_days for _, s in self.steps],
                "_pre_due": [s.kind is StepKind.PRE_DUE_REMINDER for _, s in self.steps],
                "_stop_paid": stops(StopCondition.PAID),
                "_stop_promise": stops(StopCondition.ACTIVE_PROMISE),
                "_stop_hold": stops(StopCondition.HOLD),
                "_stop_plan": stops(StopCondition.ACTIVE_PLAN),
            },
            schema={
                _GID: pl.Int32,
                "_code": pl.Int32,
                "_every_days": pl.Int32,
                "_pre_due": pl.Boolean,
                "_stop_paid": pl.Boolean,
                "_stop_promise": pl.Boolean,
                "_stop_hold": pl.Boolean,
                "_stop_plan": pl.Boolean,
            },
        )

    def segment_expr(self) -> pl.Expr:
        """Index of the first segment whose conditions all hold (null: none)."""
        expr: pl.Expr = pl.lit(None, dtype=pl.Int32)
        for i, seg in reversed(list(enumerate(self.strategy.segments))):
            expr = pl.when(all_of(seg.when)).then(pl.lit(i, dtype=pl.Int32)).otherwise(expr)
        return expr

    def first_step_expr(self, ladder_id: str) -> pl.Expr:
        """Global number of the first step of a ladder whose conditions all hold (null: none)."""
        expr: pl.Expr = pl.lit(None, dtype=pl.Int32)
        for gid, (lid, step) in reversed(list(enumerate(self.steps))):
            if lid == ladder_id:
                expr = pl.when(all_of(step.when)).then(pl.lit(gid, dtype=pl.Int32)).otherwise(expr)
        return expr

    def step_for_arm_expr(self, arm: str) -> pl.Expr:
        """The candidate step if the loan's borrower were in `arm`: its segment's ladder for that arm."""
        expr: pl.Expr = pl.lit(None, dtype=pl.Int32)
        for i, seg in reversed(list(enumerate(self.strategy.segments))):
            column = f"_ladder_{self.ladder_ids.index(seg.ladder_for(arm))}"
            expr = pl.when(pl.col(_SEG) == i).then(pl.col(column)).otherwise(expr)
        return expr


def propose(facts: pl.DataFrame, history: pl.DataFrame, strategy: Strategy, as_of: date) -> pl.DataFrame:
    """The day's proposals (PROPOSALS schema, sorted by loan_key) for FACTS rows, given STEP_HISTORY."""
    facts = _conform(facts, FACTS, "facts")
    history = _conform(history, STEP_HISTORY, "history")
    unknown = set(facts.get_column("currency").unique().drop_nulls().to_list()) - set(MINOR_UNIT_EXPONENT)
    if unknown or facts.get_column("currency").null_count():
        raise ValueError(f"facts carry currencies without a known minor unit: {sorted(unknown) or [None]}")
    if facts.is_empty():
        return pl.DataFrame(schema=PROPOSALS)
    if facts.get_column("loan_key").n_unique() != facts.height:
        raise ValueError("facts must hold one row per loan_key")

    plan = _Plan.of(strategy)
    keys = facts.get_column("loan_key")
    if keys.null_count() or not keys.is_between(0, _max_loan_key(len(plan.step_codes()))).all():
        raise ValueError("loan_key must be a non-negative surrogate key on every facts row")
    arms = strategy.split.arm_names
    arm_cols = [f"_arm_{j}" for j in range(len(arms))]
    same_step = plan.same_step_codes()
    candidates = (
        facts.lazy()
        .select(plan.columns())  # only what the conditions, stops and reasons read
        .with_columns(plan.segment_expr().alias(_SEG))
        .filter(pl.col(_SEG).is_not_null())
        .with_columns([plan.first_step_expr(lid).alias(f"_ladder_{k}") for k, lid in enumerate(plan.ladder_ids)])
        .with_columns([plan.step_for_arm_expr(arm).alias(col) for arm, col in zip(arms, arm_cols, strict=True)])
        .filter(pl.any_horizontal([pl.col(c).is_not_null() for c in arm_cols]))
        # When every arm leads to the same step (one ladder for all arms, or the same step in each arm's ladder),
        # stop and cadence can be judged before the arm is known, and narrow the rows before any hashing.
        .with_columns(
            _arm_free=pl.all_horizontal(
                [_same(pl.col(arm_cols[0]), pl.col(c), same_step) for c in arm_cols[1:]] or [pl.lit(True)]
            )
        )
        .collect()
    )
    past = _History.of(history, plan)

    known = _admit(candidates.filter("_arm_free").with_columns(pl.col(arm_cols[0]).alias(_GID)), plan, past, as_of)
    open_ = candidates.filter(~pl.col("_arm_free"))
    # Hash per row: borrowers rarely have two loans proposed on one day; de-duplicating would cost more than it saves.
    chosen: pl.Expr = pl.lit(None, dtype=pl.Int32)
    for arm, col in zip(reversed(arms), reversed(arm_cols), strict=True):
        chosen = pl.when(pl.col("arm") == arm).then(pl.col(col)).otherwise(chosen)
    known = known.with_columns(arm=assign_arms(known["borrower_id"], strategy.split)).with_columns(chosen.alias(_GID))
    open_ = open_.with_columns(arm=assign_arms(open_["borrower_id"], strategy.split)).with_columns(chosen.alias(_GID))
    open_ = _admit(open_.filter(pl.col(_GID).is_not_null()), plan, past, as_of)

    admitted = pl.concat([known, open_.select(known.columns)])
    if admitted.is_empty():
        return pl.DataFrame(schema=PROPOSALS)
    parts = [
        _with_reason(part, strategy.segments[seg], *plan.steps[gid])
        for (seg, gid), part in admitted.partition_by(_SEG, _GID, as_dict=True).items()
    ]
    return pl.concat(parts).sort("loan_key")


def _same(a: pl.Expr, b: pl.Expr, same_step: dict[int, int]) -> pl.Expr:
    """Whether two candidate step numbers name the same step (or both none)."""
    return a.replace_strict(same_step, default=None).eq_missing(b.replace_strict(same_step, default=None))


@dataclass(frozen=True)
class _History:
    """STEP_HISTORY as one sorted Int64 key per (loan, step) — loan_key * width + step code — with its dates.

    Sorted once, it answers each lookup by binary search: much cheaper than joining the whole history
    twice, and with ties sorted by date the last match is the latest date, so duplicates need no grouping."""

    keys: pl.Series
    days: pl.Series
    width: int

    @classmethod
    def of(cls, history: pl.DataFrame, plan: _Plan) -> _History:
        codes = plan.step_codes()
        width = len(codes)
        keyed = (
            history.with_columns(_code=pl.col("step").replace_strict(codes, default=None, return_dtype=pl.Int64))
            .filter(pl.col("_code").is_not_null(), pl.col("loan_key").is_between(0, _max_loan_key(width)))
            .select(_key=pl.col("loan_key") * width + pl.col("_code"), last_proposed_on=pl.col("last_proposed_on"))
            .drop_nulls()
            .sort("_key", "last_proposed_on")
        )
        return cls(keyed["_key"], keyed["last_proposed_on"], width)

    def last_proposed(self, loan_key: pl.Series, code: pl.Series) -> pl.Series:
        """The latest date for each (loan_key, code) pair, null where the step was never proposed."""
        wanted = loan_key * self.width + code
        if self.keys.is_empty():
            return pl.Series("last_proposed_on", [None] * len(wanted), dtype=pl.Date)
        position = self.keys.search_sorted(wanted, side="right").cast(pl.Int64) - 1
        safe = position.clip(0)
        found = (position >= 0) & (self.keys.gather(safe) == wanted)
        return pl.select(
            pl.when(found).then(pl.lit(self.days.gather(safe))).otherwise(None).alias("last_proposed_on")
        ).to_series()


def _max_loan_key(width: int) -> int:
    return (2**63 - 1) // max(width, 1) - 1


def _admit(rows: pl.DataFrame, plan: _Plan, history: _History, as_of: date) -> pl.DataFrame:
    """Keep the rows whose candidate step is neither stopped nor waiting for its cadence today."""
    if rows.is_empty():
        return rows
    steps = plan.step_table()

    def attribute(name: str) -> pl.Expr:  # a step attribute per row, by the row's step number
        return pl.lit(steps[name]).gather(pl.col(_GID))

    last = history.last_proposed(rows["loan_key"], rows.select(attribute("_code")).to_series().cast(pl.Int64))
    paid = (
        pl.when(attribute("_pre_due"))
        .then(pl.col("next_due_amount").fill_null(0) == 0)
        .otherwise(pl.col("overdue_total") == 0)
    )
    stopped = (
        (attribute("_stop_paid") & paid)
        | (attribute("_stop_promise") & pl.col("has_active_promise"))
        | (attribute("_stop_hold") & pl.col("has_outreach_hold"))
        | (attribute("_stop_plan") & pl.col("has_active_plan"))
    )
    every = attribute("_every_days")
    days_since = (pl.lit(as_of) - pl.lit(last)).dt.total_days()
    cadence_due = pl.lit(last).is_null() | (every.is_not_null() & (days_since >= every))
    # A null fact in a stop condition leaves the condition null, and a null drops the row: unknown means no action.
    return rows.filter(~stopped & cadence_due)


def _with_reason(part: pl.DataFrame, segment: Segment, ladder: str, step: Step) -> pl.DataFrame:
    """The proposal rows of one (segment, step) group, with a human sentence built from their own facts."""
    segment_facts = (
        [pl.lit(" ("), pl.concat_str([p.describe() for p in segment.when], separator="; "), pl.lit(")")]
        if segment.when
        else []
    )
    step_facts = pl.concat_str([p.describe() for p in step.when], separator="; ") if step.when else pl.lit("always")
    reason = pl.concat_str(
        [pl.lit(f"segment {segment.id}/"), pl.col("arm"), *segment_facts, pl.lit(f", step {step.id}: "), step_facts]
    )
    return part.select(
        "loan_key",
        segment=pl.lit(segment.id),
        ladder=pl.lit(ladder),
        step=pl.lit(step.id),
        action=pl.lit(step.kind.value),
        channel=pl.lit(step.channel.value),
        template=pl.lit(step.template),
        priority=pl.lit(step.priority, dtype=pl.Int32),
        arm="arm",
        reason=reason,
    )


def _conform(frame: pl.DataFrame, schema: pl.Schema, what: str) -> pl.DataFrame:
    missing = [c for c in schema.names() if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame lacks columns {missing}")
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()])
