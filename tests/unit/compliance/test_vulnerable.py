"""Vulnerable debtors: the single and batch paths agree on random debtors, and age is taken on the moment's date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import yaml
from hypothesis import given, settings
from pydantic import ValidationError

from duecourse.compliance.calendar import HolidayCalendar
from duecourse.compliance.checks.base import CheckContext
from duecourse.compliance.checks.vulnerable import VulnerableDebtor, VulnerableParams
from duecourse.compliance.facts import Proposal, to_frames

ROOT = Path(__file__).resolve().parents[3]
CTX = CheckContext(calendar=HolidayCalendar.load(ROOT / "rules" / "calendars"))
with (ROOT / "tests" / "rules" / "base" / "CN.yaml").open(encoding="utf-8") as f:
    BASE: dict[str, Any] = yaml.safe_load(f)
CHECK = VulnerableDebtor()
POLICY = VulnerableParams(elderly_age=70, flags=("elderly", "disabled", "seriously_ill"))
FLAGS = ["elderly", "disabled", "seriously_ill", "mental_capacity", "deceased", "bankrupt"]
OFFSETS = ["+08:00", "-05:00", "+00:00", "+14:00", "-10:00"]


def proposal(moment: str = "2026-03-03T10:00:00+08:00", pid: str = "p", **debtor: Any) -> Proposal:
    return Proposal.model_validate({**BASE, "id": pid, "moment": moment, "debtor": {**BASE["debtor"], **debtor}})


@st.composite
def debtors(draw: st.DrawFn, n: int) -> list[Proposal]:
    """Debtors around their 70th birthday (29 February included), on moments where UTC and local dates differ."""
    out = []
    for i in range(n):
        moment = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(-3 * 1440, 3 * 1440)))
        zone = datetime.fromisoformat(f"2026-01-01T00:00:00{draw(st.sampled_from(OFFSETS))}").tzinfo
        born = draw(st.one_of(st.none(), st.dates(date(1955, 2, 20), date(1957, 3, 10)), st.dates(date(1940, 1, 1))))
        out.append(
            proposal(
                moment=moment.astimezone(zone).isoformat(),
                pid=f"p{i}",
                birth_date=None if born is None else born.isoformat(),
                age=draw(st.one_of(st.none(), st.integers(60, 80))),
                flags=draw(st.lists(st.sampled_from(FLAGS), max_size=3, unique=True)),
                vulnerability_approved=draw(st.sampled_from([None, True, False, False])),
            )
        )
    return out


@settings(max_examples=150, deadline=None)
@given(
    batch=st.integers(1, 15).flatmap(debtors),
    params=st.builds(
        VulnerableParams,
        elderly_age=st.integers(68, 72),
        flags=st.lists(st.sampled_from(FLAGS), min_size=1, max_size=3, unique=True),
    ),
)
def test_one_and_batch_agree(batch: list[Proposal], params: VulnerableParams) -> None:
    frame, history = to_frames(batch)
    found = CHECK.batch(frame, history, params, CTX)
    assert found["proposal_id"].is_unique().all()
    by_batch = {row["proposal_id"]: (row["verdict"], row["facts"]) for row in found.to_dicts()}
    by_one = {}
    for p in batch:
        finding = CHECK.one(p, params, CTX)
        assert finding.facts
        if finding.blocks:
            by_one[p.id] = (finding.verdict, finding.facts)
    assert by_batch == by_one


def verdict(p: Proposal) -> str:
    return CHECK.one(p, POLICY, CTX).verdict


def test_seventy_on_the_birthday_not_the_day_before() -> None:
    assert verdict(proposal(birth_date="1956-03-04")) == "pass"
    assert verdict(proposal(birth_date="1956-03-03")) == "violation"


def test_age_is_taken_on_the_moments_own_date_not_utc() -> None:
    # 00:30 on 3 March in Shanghai is still 2 March in UTC: the debtor born 3 March 1956 is 70.
    assert verdict(proposal("2026-03-03T00:30:00+08:00", birth_date="1956-03-03")) == "violation"
    assert verdict(proposal("2026-03-02T23:30:00+08:00", birth_date="1956-03-03")) == "pass"


def test_born_on_29_february_turns_seventy_on_1_march_in_a_common_year() -> None:
    assert verdict(proposal("2026-02-28T10:00:00+08:00", birth_date="1956-02-29")) == "pass"
    assert verdict(proposal("2026-03-01T10:00:00+08:00", birth_date="1956-02-29")) == "violation"


def test_birth_date_wins_over_a_stated_age() -> None:
    assert verdict(proposal(birth_date="1985-06-01", age=75)) == "pass"
    assert verdict(proposal(birth_date=None, age=75)) == "violation"


def test_unknown_age_blocks_unless_approved_or_flagged() -> None:
    assert verdict(proposal(birth_date=None)) == "missing_facts"
    assert verdict(proposal(birth_date=None, vulnerability_approved=True)) == "pass"
    assert verdict(proposal(birth_date=None, flags=["disabled"])) == "violation"


def test_flags_outside_the_policy_do_not_make_a_debtor_vulnerable() -> None:
    assert verdict(proposal(flags=["bankrupt", "mental_capacity"])) == "pass"
    finding = CHECK.one(proposal(flags=["bankrupt", "seriously_ill", "disabled"]), POLICY, CTX)
    assert finding.verdict == "violation"
    assert "seriously_ill, disabled" in finding.facts


def test_parameters_are_strict() -> None:
    with pytest.raises(ValidationError):
        VulnerableParams.model_validate({"elderly_age": 70, "flags": ["frail"]})
    with pytest.raises(ValidationError):
        VulnerableParams.model_validate({"elderly_age": 70, "flags": []})
    with pytest.raises(ValidationError):
        VulnerableParams.model_validate({"elderly_age": 70, "flags": ["elderly"], "minimum_age": 60})
