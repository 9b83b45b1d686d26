"""The compliance engine: which rules apply to a proposal, what each says, and the decision.

Two paths over one rulebook: `decide` answers for one proposal (the live "may I call now?" question
and `duecourse compliance explain`), `decide_batch` for a frame of proposals (the daily cycle). Both
apply the same selection and the same decision rule, and tests prove they agree:

- no pack for the jurisdiction, or no applicable rule of law (house policy alone never makes a
  contact lawful): block;
- any applicable rule finds a violation or lacks a fact it needs: block;
- two applicable rules that declare the same `obligation` at the same rank and disagree: block as a
  conflict (the engine cannot tell which is stricter);
- otherwise allow.

A proposal blocked only by time-only rules (hours, holidays) gets the next moment those rules allow.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final, Literal

import polars as pl

from duecourse.compliance.checks.base import FINDINGS, CheckContext, Finding, Params
from duecourse.compliance.checks.frequency import event_rows
from duecourse.compliance.facts import UTC_TIME, Proposal, from_frames
from duecourse.compliance.rulebook import Citation, Rule, Rulebook, Version

Decision = Literal["allow", "block"]
# Findings the engine itself makes, under these pseudo rule ids.
NO_PACK: Final = "ENGINE.NO_PACK"
NO_RULE: Final = "ENGINE.NO_APPLICABLE_RULE"
CONFLICT: Final = "ENGINE.CONFLICT"
RESCHEDULE_STEP: Final = timedelta(minutes=15)
STEPS: Final = 14 * 96  # two weeks of 15-minute steps
FEW: Final = 16  # up to this many proposals, `decide_frame` decides one by one (the live path)


@dataclass(frozen=True)
class RuleOutcome:
    rule_id: str
    verdict: str  # pass | not_applicable | violation | missing_facts | conflict | no_rule
    facts: str
    rule: Rule | None = None
    version: Version | None = None
    applies: bool = False  # the rule is in scope and in force (whatever its check then found)

    @property
    def blocks(self) -> bool:
        return self.verdict not in ("pass", "not_applicable")

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"rule": self.rule_id, "verdict": self.verdict, "facts": self.facts}
        if self.rule is not None:
            out["title"] = self.rule.title.model_dump(exclude_none=True)
            out["kind"] = self.rule.kind
            out["pack"] = self.rule.pack
        if self.version is not None:
            out["effective_from"] = self.version.effective_from.isoformat()
            out["citations"] = [_citation(c) for c in self.version.citations]
        return out


def _citation(c: Citation) -> dict[str, object]:
    return c.model_dump(exclude_none=True)


@dataclass(frozen=True)
class Verdict:
    proposal_id: str
    decision: Decision
    rulebook_version: str
    outcomes: tuple[RuleOutcome, ...]  # every rule considered, in rulebook order
    next_allowed_at: datetime | None = None
    applied: int = field(default=0)

    @property
    def violations(self) -> tuple[RuleOutcome, ...]:
        return tuple(o for o in self.outcomes if o.blocks)

    def to_json(self, *, explain: bool = False) -> dict[str, object]:
        out: dict[str, object] = {
            "proposal_id": self.proposal_id,
            "decision": self.decision,
            "rulebook_version": self.rulebook_version,
            "rules_applied": self.applied,
            "violations": [o.to_json() for o in self.violations],
            "next_allowed_at": None if self.next_allowed_at is None else self.next_allowed_at.isoformat(),
        }
        if explain:
            out["evaluated"] = [o.to_json() for o in self.outcomes]
        return out


def _in_scope(rule: Rule, p: Proposal) -> str | None:
    """Why `rule` does not concern `p`, or None when it does."""
    s = rule.scope
    for name, allowed, value in (
        ("channel", s.channels, p.channel),
        ("actor", s.actors, p.actor.kind),
        ("counterpart", s.counterparts, p.counterpart),
        ("purpose", s.purposes, p.purpose),
        ("region", s.regions, p.jurisdiction.region),
    ):
        if allowed is not None and value not in allowed:
            return f"{name} {value!r} is outside the rule's scope ({', '.join(allowed)})"
    return None


def decide(book: Rulebook, p: Proposal, ctx: CheckContext, *, reschedule: bool = True) -> Verdict:
    """The decision for one proposal, with every rule's outcome."""
    outcomes = _evaluate(book, p, ctx)
    decision: Decision = "block" if any(o.blocks for o in outcomes) else "allow"
    applied = sum(1 for o in outcomes if o.applies)
    next_at = None
    if decision == "block" and reschedule and _only_time(outcomes):
        next_at = _next_allowed(book, p, ctx)
    return Verdict(p.id, decision, book.version, tuple(outcomes), next_at, applied)


def _only_time(outcomes: Iterable[RuleOutcome]) -> bool:
    """Blocked only by the moment: time-only rules that found a violation (waiting never supplies a missing fact)."""
    return all(o.rule is not None and o.rule.check.time_only and o.verdict == "violation" for o in outcomes if o.blocks)


def _rule_outcome(rule: Rule, p: Proposal, ctx: CheckContext) -> RuleOutcome:
    day = p.moment.date()
    why_not = _in_scope(rule, p)
    version = rule.version_on(day)
    if why_not is None and (version is None or version.params is None):
        why_not = f"not in force on {day.isoformat()}"
    if why_not is not None:
        return RuleOutcome(rule.id, "not_applicable", why_not, rule, version)
    assert version is not None and version.params is not None
    finding: Finding = rule.check.one(p, version.params, ctx)
    return RuleOutcome(rule.id, finding.verdict, finding.facts, rule, version, applies=True)


def _evaluate(book: Rulebook, p: Proposal, ctx: CheckContext) -> list[RuleOutcome]:
    country = p.jurisdiction.country
    if not book.has_country(country):
        return [RuleOutcome(NO_PACK, "no_rule", f"no rule pack for jurisdiction {country!r}: cannot decide")]
    outcomes = [_rule_outcome(rule, p, ctx) for rule in book.for_country(country)]
    applied = [o for o in outcomes if o.applies]
    if not any(o.rule is not None and o.rule.kind != "house_policy" for o in applied):
        outcomes.append(
            RuleOutcome(
                NO_RULE,
                "no_rule",
                f"no rule of law in the {country} pack applies to a {p.channel} by a {p.actor.kind} "
                f"to the {p.counterpart} ({p.purpose}): cannot decide",
            )
        )
    outcomes.extend(_conflicts(applied))
    return outcomes


def _conflicts(applied: Sequence[RuleOutcome]) -> list[RuleOutcome]:
    groups: dict[tuple[str, int], list[RuleOutcome]] = {}
    for o in applied:
        assert o.rule is not None
        groups.setdefault((o.rule.obligation, o.rule.rank), []).append(o)
    out = []
    for (obligation, _), members in groups.items():
        if len({o.blocks for o in members}) > 1:
            ids = ", ".join(o.rule_id for o in members)
            out.append(
                RuleOutcome(CONFLICT, "conflict", f"rules {ids} of obligation {obligation!r} and equal rank disagree")
            )
    return out


def _next_allowed(book: Rulebook, p: Proposal, ctx: CheckContext) -> datetime | None:
    """The first later moment the time-only rules allow (15-minute steps, two weeks ahead), if every rule
    then allows the proposal; None when there is none or another rule would block it then."""
    time_rules = [r for r in book.for_country(p.jurisdiction.country) if r.check.time_only]
    for step in range(1, STEPS + 1):
        moved = p.model_copy(update={"moment": p.moment + step * RESCHEDULE_STEP})
        if not any(_rule_outcome(rule, moved, ctx).blocks for rule in time_rules):  # violations and missing facts
            return moved.moment if not any(o.blocks for o in _evaluate(book, moved, ctx)) else None
    return None


# --- vectorised path --------------------------------------------------------------------------------

DECISIONS = pl.Schema(
    {
        "proposal_id": pl.String(),
        "decision": pl.String(),
        "violations": pl.List(pl.Struct({"rule": pl.String(), "verdict": pl.String(), "facts": pl.String()})),
        "time_only": pl.Boolean(),
        "next_allowed_at": UTC_TIME,
    }
)


APPLIED = pl.Schema(
    {
        "proposal_id": pl.String(),
        "rule": pl.String(),
        "obligation": pl.String(),
        "rank": pl.Int32(),
        "law": pl.Boolean(),
    }
)


def _scope_columns(rule: Rule) -> dict[str, tuple[str, ...]]:
    """The frame columns the rule's scope restricts, with the values it allows."""
    s = rule.scope
    named: dict[str, Sequence[str] | None] = {
        "channel": s.channels,
        "actor_kind": s.actors,
        "counterpart": s.counterparts,
        "purpose": s.purposes,
        "region": s.regions,
    }
    return {column: tuple(allowed) for column, allowed in named.items() if allowed is not None}


def _scope_mask(rule: Rule) -> pl.Expr:
    mask = pl.lit(True)
    for column, allowed in _scope_columns(rule).items():
        mask = mask & pl.col(column).is_in(list(allowed)).fill_null(False)
    return mask


FOUND = pl.Schema(
    {
        "proposal_id": pl.String(),
        "verdict": pl.String(),
        "facts": pl.String(),
        "rule": pl.String(),
        "time_only": pl.Boolean(),
    }
)


def batch_findings(
    book: Rulebook,
    proposals: pl.DataFrame,
    history: pl.DataFrame,
    ctx: CheckContext,
    *,
    only_time: bool = False,
) -> pl.DataFrame:
    """Every blocking finding for a frame of proposals: proposal_id, verdict, facts, rule, time_only.

    Rules that share a country, scope and period share one subset of the frame, projected to the columns
    their check reads; each check sees the history of its rule's country and answers for the proposals the
    rule applies to.
    `only_time` evaluates just the time-only rules, without the engine's own findings (for rescheduling).
    """
    decidable = proposals.filter(pl.col("country").is_in(book.countries))  # the others are blocked for having no pack
    for check in {id(r.check): r.check for r in book.rules if r.check.time_only or not only_time}.values():
        decidable = check.precompute(decidable)
    # Each event's proposal by its row (no join when the history runs in the proposals' order, as the cycle
    # writes it), hence its country (null: no proposal here); a country's events are filtered out when a rule
    # of it first needs them.
    event_country = decidable.get_column("country").gather(event_rows(history, decidable))
    by_country: dict[str, pl.DataFrame] = {}
    masks: dict[tuple[object, ...], pl.Series] = {}
    subsets: dict[tuple[object, ...], pl.DataFrame] = {}
    present = set(decidable.columns)
    law = pl.Series("law", [False] * decidable.height, dtype=pl.Boolean())
    # Only obligations declared by two rules of one rank can conflict; track those rules' subsets.
    contested = _contested(book)
    applied: list[pl.DataFrame] = []
    asked: list[tuple[Rule, Params, pl.DataFrame, pl.DataFrame]] = []  # each rule's check: params, subset, history
    for rule in book.rules:
        if only_time and not rule.check.time_only:
            continue
        for v in rule.versions:
            if v.params is None:
                continue
            key = (rule.country, rule.scope, v.effective_from, v.effective_to)
            if key not in masks:
                masks[key] = decidable.select(_rule_mask(rule, v.effective_from, v.effective_to)).to_series()
            mask = masks[key]
            if not mask.any():
                continue
            # Only the columns the check reads: the frame has some sixty, and a filtered copy of them all
            # per rule scope cost more than most checks.
            reads = ("proposal_id", *(c for c in rule.check.reads if c in present))
            if (key, reads) not in subsets:
                subsets[key, reads] = decidable.select(reads).filter(mask)
            subset = subsets[key, reads]
            if rule.kind != "house_policy":
                law = law | mask
            if rule.id in contested:
                applied.append(
                    subset.select(
                        "proposal_id",
                        rule=pl.lit(rule.id),
                        obligation=pl.lit(rule.obligation),
                        rank=pl.lit(rule.rank, pl.Int32()),
                    )
                )
            if rule.country != "*" and rule.country not in by_country:
                by_country[rule.country] = history.filter(event_country == rule.country)
            asked.append((rule, v.params, subset, history if rule.country == "*" else by_country[rule.country]))
    # The checks are independent: they run on as many threads as Polars has, as most of their steps work on
    # one column at a time on one thread, and Polars releases the GIL while it works.
    with ThreadPoolExecutor(max_workers=pl.thread_pool_size()) as pool:
        answers = list(pool.map(lambda a: a[0].check.batch(a[2], a[3], a[1], ctx), asked))
    parts = [
        found.select(FINDINGS.names()).with_columns(
            rule=pl.lit(rule.id),
            time_only=pl.lit(rule.check.time_only) & (pl.col("verdict") == "violation"),
        )
        for (rule, _, _, _), found in zip(asked, answers, strict=True)
        if not found.is_empty()
    ]
    found_all = pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=FOUND)
    if only_time:
        return found_all.select(FOUND.names())
    engine_findings = [
        _batch_no_pack(book, proposals),
        _batch_no_rule(decidable.filter(~law)),
        _batch_conflicts(pl.concat(applied) if applied else pl.DataFrame(schema=APPLIED), found_all),
    ]
    return pl.concat([found_all.select(FOUND.names()), *[f.select(FOUND.names()) for f in engine_findings]])


def _rule_mask(rule: Rule, start: date, end: date | None) -> pl.Expr:
    mask = _scope_mask(rule) & (pl.col("moment_local_date") >= start)
    if rule.country != "*":
        mask = mask & (pl.col("country") == rule.country)
    if end is not None:
        mask = mask & (pl.col("moment_local_date") < end)
    return mask


def _contested(book: Rulebook) -> set[str]:
    groups: dict[tuple[str, int], list[str]] = {}
    for r in book.rules:
        groups.setdefault((r.obligation, r.rank), []).append(r.id)
    return {rule_id for ids in groups.values() if len(ids) > 1 for rule_id in ids}


def _batch_no_pack(book: Rulebook, proposals: pl.DataFrame) -> pl.DataFrame:
    return proposals.filter(~pl.col("country").is_in(book.countries)).select(
        "proposal_id",
        verdict=pl.lit("no_rule"),
        facts=pl.format("no rule pack for jurisdiction '{}': cannot decide", pl.col("country")),
        rule=pl.lit(NO_PACK),
        time_only=pl.lit(False),
    )


def _batch_no_rule(unlawful: pl.DataFrame) -> pl.DataFrame:
    """Proposals (with a pack) to which no rule of law applies."""
    return unlawful.select(
        "proposal_id",
        "country",
        verdict=pl.lit("no_rule"),
        facts=pl.format(
            "no rule of law in the {} pack applies to a {} by a {} to the {} ({}): cannot decide",
            "country",
            "channel",
            "actor_kind",
            "counterpart",
            "purpose",
        ),
        rule=pl.lit(NO_RULE),
        time_only=pl.lit(False),
    )


def _batch_conflicts(applied: pl.DataFrame, found: pl.DataFrame) -> pl.DataFrame:
    blocked = found.select("proposal_id", "rule").unique().with_columns(blocks=pl.lit(True))
    return (
        applied.join(blocked, on=["proposal_id", "rule"], how="left")
        .with_columns(pl.col("blocks").fill_null(False))
        .group_by("proposal_id", "obligation", "rank", maintain_order=True)
        .agg(pl.col("rule"), n=pl.col("blocks").n_unique())
        .filter(pl.col("n") > 1)
        .select(
            "proposal_id",
            verdict=pl.lit("conflict"),
            facts=pl.format(
                "rules {} of obligation '{}' and equal rank disagree", pl.col("rule").list.join(", "), "obligation"
            ),
            rule=pl.lit(CONFLICT),
            time_only=pl.lit(False),
        )
    )


def decide_batch(
    book: Rulebook, proposals: pl.DataFrame, history: pl.DataFrame, ctx: CheckContext, *, reschedule: bool = True
) -> pl.DataFrame:
    """One row per proposal (schema `DECISIONS`): allow/block, its blocking findings, and for a proposal
    blocked only by time-only rules the next moment every rule allows (as `decide` finds it)."""
    found = batch_findings(book, proposals, history, ctx)
    grouped = found.group_by("proposal_id").agg(
        violations=pl.struct("rule", "verdict", "facts"), time_only=pl.col("time_only").all()
    )
    decided = (
        proposals.select("proposal_id")
        .join(grouped, on="proposal_id", how="left", maintain_order="left")
        .with_columns(
            decision=pl.when(pl.col("violations").is_null()).then(pl.lit("allow")).otherwise(pl.lit("block")),
            violations=pl.col("violations").fill_null([]),
            time_only=pl.col("time_only").fill_null(False),
        )
    )
    waiting = proposals.filter(decided.get_column("time_only"))  # `decided` has the proposals' rows in order
    next_at = (
        _next_allowed_batch(book, waiting, history, ctx)
        if reschedule and not waiting.is_empty()
        else pl.DataFrame(schema={"proposal_id": pl.String(), "next_allowed_at": UTC_TIME})
    )
    return decided.join(next_at, on="proposal_id", how="left", maintain_order="left").select(DECISIONS.names())


def decide_frame(
    book: Rulebook, proposals: pl.DataFrame, history: pl.DataFrame, ctx: CheckContext, *, reschedule: bool = True
) -> pl.DataFrame:
    """`decide_batch`'s answer by the cheaper path: a few proposals one by one through `decide` (an agent's
    pre-dial check: ~1 ms, where the set-based path pays ~0.5 s of per-rule set-up whatever the frame's size),
    a frame of more through `decide_batch`. The two paths agree (tests/unit/compliance/test_engine_paths.py).
    Frames with visit facts always take the set-based path: their rows keep the team's counts, not its members.
    """
    if proposals.height > FEW or proposals.get_column("visit").any():
        return decide_batch(book, proposals, history, ctx, reschedule=reschedule)
    rows = []
    for p in from_frames(proposals, history):
        verdict = decide(book, p, ctx, reschedule=reschedule)
        rows.append(
            {
                "proposal_id": p.id,
                "decision": verdict.decision,
                "violations": [{"rule": o.rule_id, "verdict": o.verdict, "facts": o.facts} for o in verdict.violations],
                "time_only": verdict.decision == "block" and _only_time(verdict.outcomes),
                "next_allowed_at": verdict.next_allowed_at,
            }
        )
    return pl.DataFrame(rows, schema=DECISIONS)


def _shifted(proposals: pl.DataFrame, steps: pl.Expr) -> pl.DataFrame:
    """`proposals` with their moment moved by `steps` 15-minute steps (local date recomputed)."""
    moment = pl.col("moment_utc") + pl.duration(minutes=steps * 15)
    return proposals.with_columns(
        moment_utc=moment,
        moment_local_date=(moment + pl.duration(minutes=pl.col("moment_offset_minutes"))).dt.date(),
    )


def _next_allowed_batch(
    book: Rulebook, waiting: pl.DataFrame, history: pl.DataFrame, ctx: CheckContext
) -> pl.DataFrame:
    """Set-based `_next_allowed`: a day of 15-minute candidates at a time, then every rule at the first one.

    The time-only rules read few facts (the moment, the debtor's time zones and windows, the counterpart, the
    country and region); the waiting proposals that share them share their candidates, so the candidates are
    evaluated once per such situation — a cycle proposes few distinct moments — and joined back by row.
    """
    time_rules = [r for r in book.rules if r.check.time_only]
    situation = sorted(
        {"moment_utc", "moment_offset_minutes", "country"}
        | {c for r in time_rules for c in (*r.check.reads, *_scope_columns(r))}
    )
    remaining = (
        waiting.select(situation)
        .with_row_index("_row")
        .group_by(situation)
        .agg("_row")
        .with_columns(proposal_id=pl.int_range(pl.len()).cast(pl.String))
    )
    done: list[pl.DataFrame] = []
    for day in range(STEPS // 96):
        if remaining.is_empty():
            break
        offsets = pl.DataFrame({"step": pl.int_range(day * 96 + 1, (day + 1) * 96 + 1, eager=True)})
        candidates = _shifted(remaining.drop("_row").join(offsets, how="cross"), pl.col("step")).with_columns(
            situation_id=pl.col("proposal_id"),
            proposal_id=pl.col("proposal_id") + pl.lit("@") + pl.col("step").cast(pl.String()),
        )
        blocked = batch_findings(book, candidates.drop("situation_id", "step"), history.head(0), ctx, only_time=True)
        first = (
            candidates.join(blocked, on="proposal_id", how="anti")
            .group_by("situation_id")
            .agg(pl.col("step").min())
            .rename({"situation_id": "proposal_id"})
        )
        if first.is_empty():
            continue
        rows = remaining.join(first, on="proposal_id").select("_row", "step").explode("_row")
        moved = _shifted(waiting[rows.get_column("_row")].with_columns(rows.get_column("step")), pl.col("step"))
        full = batch_findings(book, moved.drop("step"), history, ctx)
        done.append(
            moved.join(full, on="proposal_id", how="anti").select("proposal_id", next_allowed_at=pl.col("moment_utc"))
        )
        remaining = remaining.join(first, on="proposal_id", how="anti")
    if not done:
        return pl.DataFrame(schema={"proposal_id": pl.String(), "next_allowed_at": UTC_TIME})
    return pl.concat(done)
