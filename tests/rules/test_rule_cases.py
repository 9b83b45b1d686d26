"""Rule tests as data: every YAML case under tests/rules/<pack>/ runs through both engine paths.

A case file is about one rule:

    rule: CN.HOURS
    base: CN                 # optional: the base proposal (tests/rules/base/<base>.yaml); default the pack's country
    cases:
      - name: 21:59 is allowed
        set: {moment: "2026-03-03T21:59:00+08:00", debtor.time_zones: [Asia/Shanghai]}   # dotted paths
        unset: [debtor.reachable]                                                       # optional
        expect: pass         # the rule's verdict: pass | not_applicable | violation | missing_facts
        decision: allow      # optional: the whole decision

The single path must give exactly `expect`; the batch path must agree on whether the rule blocks and,
when it does, on the verdict.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from duecourse.compliance.calendar import HolidayCalendar
from duecourse.compliance.checks.base import CheckContext
from duecourse.compliance.engine import batch_findings, decide
from duecourse.compliance.facts import Proposal, to_frames
from duecourse.compliance.rulebook import Rulebook, load_rulebook

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).resolve().parent
VERDICTS = {"pass", "not_applicable", "violation", "missing_facts"}


@pytest.fixture(scope="module")
def book() -> Rulebook:
    return load_rulebook(ROOT / "rules")


@pytest.fixture(scope="module")
def ctx() -> CheckContext:
    return CheckContext(calendar=HolidayCalendar.load(ROOT / "rules" / "calendars"))


def _base(name: str) -> dict[str, Any]:
    with (CASES / "base" / f"{name}.yaml").open(encoding="utf-8") as f:
        data: dict[str, Any] = yaml.safe_load(f)
    return data


def _apply(doc: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for path, value in (case.get("set") or {}).items():
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    for path in case.get("unset") or []:
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node[part]
        del node[leaf]
    return out


def _collect() -> list[Any]:
    params = []
    for path in sorted(CASES.rglob("*.yaml")):
        if path.parent.name == "base":
            continue
        with path.open(encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        pack = path.relative_to(CASES).parts[0]
        base = doc.get("base") or pack.upper()
        for i, case in enumerate(doc["cases"]):
            case_id = f"{path.relative_to(CASES)}::{i}:{case['name']}"
            params.append(pytest.param(doc["rule"], base, case, id=case_id))
    return params


ALL_CASES = _collect()


@pytest.mark.parametrize(("rule_id", "base", "case"), ALL_CASES)
def test_case(book: Rulebook, ctx: CheckContext, rule_id: str, base: str, case: dict[str, Any]) -> None:
    assert case["expect"] in VERDICTS, f"unknown expect {case['expect']!r}"
    book.get(rule_id)  # the rule exists
    proposal = Proposal.model_validate(_apply(_base(base), case))

    verdict = decide(book, proposal, ctx)
    outcome = next(o for o in verdict.outcomes if o.rule_id == rule_id)
    assert outcome.verdict == case["expect"], outcome.facts
    if "decision" in case:
        assert verdict.decision == case["decision"], [o.to_json() for o in verdict.violations]

    frame, history = to_frames([proposal])
    found = batch_findings(book, frame, history, ctx)
    mine = found.filter(found["rule"] == rule_id)
    if outcome.blocks:
        assert mine.get_column("verdict").to_list() == [outcome.verdict]
    else:
        assert mine.is_empty(), mine.to_dicts()
    if "decision" in case:
        assert ("block" if not found.is_empty() else "allow") == case["decision"], found.to_dicts()


def test_every_rule_has_cases_on_both_sides(book: Rulebook) -> None:
    """Each rule has at least one case it blocks and one it lets through."""
    sides: dict[str, set[bool]] = {}
    for param in ALL_CASES:
        rule_id, _, case = param.values
        sides.setdefault(rule_id, set()).add(case["expect"] in ("violation", "missing_facts"))
    lacking = [r.id for r in book.rules if sides.get(r.id) != {True, False}]
    assert lacking == []


def test_there_are_at_least_120_cases() -> None:
    assert len(ALL_CASES) >= 120


@pytest.mark.parametrize("country", ["CN", "US", "UK"])
def test_each_base_proposal_is_allowed(book: Rulebook, ctx: CheckContext, country: str) -> None:
    proposal = Proposal.model_validate(_base(country))
    verdict = decide(book, proposal, ctx)
    assert verdict.decision == "allow", [o.to_json() for o in verdict.violations]
    assert verdict.applied > 0
