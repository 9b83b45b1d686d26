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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

import polars as pl

from duecourse.compliance.checks.base import FINDINGS, CheckContext, Finding
from duecourse.compliance.facts import Proposal
from duecourse.compliance.rulebook import Citation, Rule, Rulebook, Version

Decision = Literal["allow", "block"]
# Findings the engine itself makes, under these pseudo rule ids.
NO_PACK: Final = "ENGINE.NO_PACK"
NO_RULE: Final = "ENGINE.NO_APPLICABLE_RULE"
CONFLICT: Final = "ENGINE.CONFLICT"
RESCHEDULE_STEP: Final = timedelta(minutes=15)
RESCHEDULE_HORIZON: Final = timedelta(days=14)


@dataclass(frozen=True)
class RuleOutcome:
    rule_id: str
    verdict: str  # pass | not_applicable | violation | missing_facts | conflict | no_rule
    facts: str
    rule: Rule | None = None
    version: Version | None = None

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
    applied = sum(1 for o in outcomes if o.rule is not None and o.verdict != "not_applicable")
    next_at = None
    if decision == "block" and reschedule and _only_time(outcomes):
        next_at = _next_allowed(book, p, ctx)
    return Verdict(p.id, decision, book.version, tuple(outcomes), next_at, applied)


def _only_time(outcomes: Iterable[RuleOutcome]) -> bool:
    return all(o.rule is not None and o.rule.check.time_only for o in outcomes if o.blocks)


def _evaluate(book: Rulebook, p: Proposal, ctx: CheckContext) -> list[RuleOutcome]:
    country = p.jurisdiction.country
    if not book.has_country(country):
        return [RuleOutcome(NO_PACK, "no_rule", f"no rule pack for jurisdiction {country!r}: cannot decide")]
    day = p.moment.date()
    outcomes: list[RuleOutcome] = []
    for rule in book.for_country(country):
        why_not = _in_scope(rule, p)
        version = rule.version_on(day)
        if why_not is None and (version is None or version.params is None):
            why_not = f"not in force on {day.isoformat()}"
        if why_not is not None:
            outcomes.append(RuleOutcome(rule.id, "not_applicable", why_not, rule, version))
            continue
        assert version is not None and version.params is not None
        finding: Finding = rule.check.one(p, version.params, ctx)
        outcomes.append(RuleOutcome(rule.id, finding.verdict, finding.facts, rule, version))
    applied = [o for o in outcomes if o.verdict != "not_applicable" and o.rule is not None]
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
    """The first later moment (15-minute steps, two weeks ahead) at which every rule allows `p`."""
    start = p.moment
    step = 1
    while step * RESCHEDULE_STEP <= RESCHEDULE_HORIZON:
        moved = p.model_copy(update={"moment": start + step * RESCHEDULE_STEP})
        outcomes = _evaluate(book, moved, ctx)
        if not any(o.blocks for o in outcomes):
            return moved.moment
        if not _only_time(outcomes):
            return None
        step += 1
    return None


# --- vectorised path --------------------------------------------------------------------------------

DECISIONS = pl.Schema(
    {
        "proposal_id": pl.String(),
        "decision": pl.String(),
        "violations": pl.List(pl.Struct({"rule": pl.String(), "verdict": pl.String(), "facts": pl.String()})),
        "time_only": pl.Boolean(),
    }
)


def _scope_mask(rule: Rule) -> pl.Expr:
    s = rule.scope
    mask = pl.lit(True)
    for column, allowed in (
        ("channel", s.channels),
        ("actor_kind", s.actors),
        ("counterpart", s.counterparts),
        ("purpose", s.purposes),
        ("region", s.regions),
    ):
        if allowed is not None:
            mask = mask & pl.col(column).is_in(list(allowed)).fill_null(False)
    return mask


def batch_findings(book: Rulebook, proposals: pl.DataFrame, history: pl.DataFrame, ctx: CheckContext) -> pl.DataFrame:
    """Every blocking finding for a frame of proposals: proposal_id, rule, verdict, facts, time_only."""
    parts: list[pl.DataFrame] = []
    applied_law = proposals.select("proposal_id").with_columns(law=pl.lit(False))
    applied_frames: list[pl.DataFrame] = []
    for rule in book.rules:
        country_mask = pl.lit(True) if rule.country == "*" else pl.col("country") == rule.country
        base = country_mask & _scope_mask(rule)
        for v in rule.versions:
            if v.params is None:
                continue
            in_force = pl.col("moment_local_date") >= v.effective_from
            if v.effective_to is not None:
                in_force = in_force & (pl.col("moment_local_date") < v.effective_to)
            subset = proposals.filter(base & in_force)
            if subset.is_empty():
                continue
            ids = subset.select("proposal_id")
            applied_frames.append(
                ids.with_columns(rule=pl.lit(rule.id), obligation=pl.lit(rule.obligation), rank=pl.lit(rule.rank))
            )
            if rule.kind != "house_policy":
                applied_law = applied_law.with_columns(
                    law=pl.col("law") | pl.col("proposal_id").is_in(ids.get_column("proposal_id").implode())
                )
            hist = history.join(ids, on="proposal_id", how="semi")
            found = rule.check.batch(subset, hist, v.params, ctx)
            if not found.is_empty():
                parts.append(
                    found.select(FINDINGS.names()).with_columns(
                        rule=pl.lit(rule.id), time_only=pl.lit(rule.check.time_only)
                    )
                )
    columns = {
        "proposal_id": pl.String(),
        "verdict": pl.String(),
        "facts": pl.String(),
        "rule": pl.String(),
        "time_only": pl.Boolean(),
    }
    found_all = pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=columns)
    engine_findings = [_batch_no_pack(book, proposals), _batch_no_rule(proposals, applied_law)]
    if applied_frames:
        engine_findings.append(_batch_conflicts(pl.concat(applied_frames), found_all))
    return pl.concat([found_all.select(list(columns)), *[f.select(list(columns)) for f in engine_findings]])


def _batch_no_pack(book: Rulebook, proposals: pl.DataFrame) -> pl.DataFrame:
    known = [p.country for p in book.packs.values() if p.country != "*"]
    return proposals.filter(~pl.col("country").is_in(known)).select(
        "proposal_id",
        verdict=pl.lit("no_rule"),
        facts=pl.format("no rule pack for jurisdiction '{}': cannot decide", pl.col("country")),
        rule=pl.lit(NO_PACK),
        time_only=pl.lit(False),
    )


def _batch_no_rule(proposals: pl.DataFrame, applied_law: pl.DataFrame) -> pl.DataFrame:
    # Only for proposals whose country has a pack (others already carry NO_PACK).
    return proposals.join(applied_law.filter(~pl.col("law")), on="proposal_id", how="semi").select(
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


def decide_batch(book: Rulebook, proposals: pl.DataFrame, history: pl.DataFrame, ctx: CheckContext) -> pl.DataFrame:
    """One row per proposal (schema `DECISIONS`): allow/block, its blocking findings, blocked only by time?"""
    found = batch_findings(book, proposals, history, ctx)
    grouped = found.group_by("proposal_id").agg(
        violations=pl.struct("rule", "verdict", "facts"), time_only=pl.col("time_only").all()
    )
    return (
        proposals.select("proposal_id")
        .join(grouped, on="proposal_id", how="left", maintain_order="left")
        .with_columns(
            decision=pl.when(pl.col("violations").is_null()).then(pl.lit("allow")).otherwise(pl.lit("block")),
            violations=pl.col("violations").fill_null([]),
            time_only=pl.col("time_only").fill_null(False),
        )
        .select(DECISIONS.names())
    )
