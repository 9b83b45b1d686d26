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
    "loan_key", "borrower_key", "borrower_id", "overdue_total", "next_due_amount",
    "has_outreach_hold", "has_active_promise", "has_active_plan",
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
        predicates = [p for seg in self.strategy.segments for p in seg.when] + [p for _, s in self.steps for p in s.when]
        read = {c for p in predicates for c in p.columns} | set(_ALWAYS_READ)
        return [c for c in FACTS.names() if c in read]

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
                _GID: pl.Int32, "_code": pl.Int32, "_every_days": pl.Int32, "_pre_due": pl.Boolean,
                "_stop_paid": pl.Boolean, "_stop_promise": pl.Boolean, "_stop_hold": pl.Boolean, "_stop_plan": pl.Boolean,
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
    if facts.get_column("loan_key").is_duplicated().any():
        raise ValueError("facts must hold one row per loan_key")

    plan = _Plan.of(strategy)
    arms = strategy.split.arm_names
    arm_cols = [f"_arm_{j}" for j in range(len(arms))]
    candidates = (
        facts.lazy()
        .select(plan.columns())  # only what the conditions, stops and reasons read
        .with_columns(plan.segment_expr().alias(_SEG))
        .filter(pl.col(_SEG).is_not_null())
        .with_columns([plan.first_step_expr(lid).alias(f"_ladder_{k}") for k, lid in enumerate(plan.ladder_ids)])
        .with_columns([plan.step_for_arm_expr(arm).alias(col) for arm, col in zip(arms, arm_cols)])
        .filter(pl.any_horizontal([pl.col(c).is_not_null() for c in arm_cols]))
        # When every arm leads to the same step (one ladder for all arms, or ladders that agree here), the step is
        # known before the arm, so stop and cadence can narrow the rows before any hashing.
        .with_columns(
            _arm_free=pl.all_horizontal([pl.col(arm_cols[0]).eq_missing(pl.col(c)) for c in arm_cols[1:]] or [True])
        )
        .collect()
    )
    steps = plan.step_table()
    last = _last_proposed(history, plan)

    known = _admit(candidates.filter("_arm_free").with_columns(pl.col(arm_cols[0]).alias(_GID)), steps, last, as_of)
    open_ = candidates.filter(~pl.col("_arm_free"))
    assigned = _arms_by_borrower(pl.concat([known.select(_BORROWER), open_.select(_BORROWER)]), strategy)
    known = known.with_columns(_arm_of(known, assigned))
    open_ = open_.with_columns(_arm_of(open_, assigned))
    chosen: pl.Expr = pl.lit(None, dtype=pl.Int32)
    for arm, col in zip(reversed(arms), reversed(arm_cols)):
        chosen = pl.when(pl.col("arm") == arm).then(pl.col(col)).otherwise(chosen)
    open_ = _admit(open_.with_columns(chosen.alias(_GID)).filter(pl.col(_GID).is_not_null()), steps, last, as_of)

    admitted = pl.concat([known, open_.select(known.columns)])
    if admitted.is_empty():
        return pl.DataFrame(schema=PROPOSALS)
    parts = [
        _with_reason(part, strategy.segments[seg], *plan.steps[gid])
        for (seg, gid), part in admitted.partition_by(_SEG, _GID, as_dict=True).items()
    ]
    return pl.concat(parts).sort("loan_key")


_BORROWER: Final = ["borrower_key", "borrower_id"]


def _arms_by_borrower(borrowers: pl.DataFrame, strategy: Strategy) -> pl.DataFrame:
    """borrower_key -> arm, hashing each borrower once however many loans they have."""
    unique = borrowers.unique(subset="borrower_key")
    return unique.select("borrower_key", arm=assign_arms(unique.get_column("borrower_id"), strategy.split))


def _arm_of(rows: pl.DataFrame, assigned: pl.DataFrame) -> pl.Series:
    """The arm of each row, looked up on the narrow key column only (the rows keep their order)."""
    return rows.select("borrower_key").join(assigned, on="borrower_key", how="left", maintain_order="left")["arm"]


def _last_proposed(history: pl.DataFrame, plan: _Plan) -> pl.DataFrame:
    """(loan_key, step code) -> last_proposed_on, for the steps of this strategy; integer keys keep the join cheap."""
    return (
        history.select(
            "loan_key",
            pl.col("step").replace_strict(plan.step_codes(), default=None, return_dtype=pl.Int32).alias("_code"),
            "last_proposed_on",
        )
        .filter(pl.col("_code").is_not_null())
    )


def _admit(rows: pl.DataFrame, steps: pl.DataFrame, last: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Keep the rows whose candidate step is neither stopped nor waiting for its cadence today.

    The decision is made on a narrow frame (keys and the facts stop conditions read) and applied to the
    wide one by loan_key, so the joins never move the string and list columns."""
    narrow = rows.select(
        "loan_key", _GID, "overdue_total", "next_due_amount", "has_outreach_hold", "has_active_promise",
        "has_active_plan",
    ).join(steps, on=_GID, how="left")
    joined = narrow.join(last, on=["loan_key", "_code"], how="left")
    if joined.height != rows.height:  # the history had several rows for one (loan, step): keep the latest
        latest = last.group_by("loan_key", "_code").agg(pl.col("last_proposed_on").max())
        joined = narrow.join(latest, on=["loan_key", "_code"], how="left")
    paid = (
        pl.when(pl.col("_pre_due"))
        .then(pl.col("next_due_amount").fill_null(0) == 0)
        .otherwise(pl.col("overdue_total") == 0)
    )
    stopped = (
        (pl.col("_stop_paid") & paid)
        | (pl.col("_stop_promise") & pl.col("has_active_promise"))
        | (pl.col("_stop_hold") & pl.col("has_outreach_hold"))
        | (pl.col("_stop_plan") & pl.col("has_active_plan"))
    )
    days_since = (pl.lit(as_of) - pl.col("last_proposed_on")).dt.total_days()
    cadence_due = pl.col("last_proposed_on").is_null() | (
        pl.col("_every_days").is_not_null() & (days_since >= pl.col("_every_days"))
    )
    # A null fact in a stop condition leaves the condition null, and a null drops the row: unknown means no action.
    # Joins without order are cheaper; one row per loan makes loan_key enough to carry the decision back.
    keep = joined.filter(~stopped & cadence_due).get_column("loan_key")
    return rows.filter(pl.col("loan_key").is_in(keep.implode()))


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
