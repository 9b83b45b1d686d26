"""Holds: both paths agree on random facts and parameters, and each hold starts and ends where the law puts it."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import hypothesis.strategies as st
from hypothesis import given, settings

from duecourse.compliance.checks.holds import (
    AttorneyParams,
    AttorneyRepresentation,
    BreathingSpace,
    BreathingSpaceParams,
    CeaseParams,
    CeaseRequest,
    DisputeParams,
    FlagHold,
    FlagParams,
    OpenDispute,
)
from duecourse.compliance.facts import Proposal
from tests.unit.compliance.status_helpers import (
    COUNTERPARTS,
    CTX,
    PURPOSES,
    assert_paths_agree,
    iso,
    moments,
    proposal,
    subsets,
)

FLAGS = ("elderly", "disabled", "seriously_ill", "mental_capacity", "deceased", "bankrupt")
ZONES = ("Europe/London", "America/New_York", "Asia/Shanghai", "Pacific/Auckland")
SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def cease_batch(draw: st.DrawFn) -> list[Proposal]:
    out = []
    for i in range(draw(st.integers(1, 8))):
        moment = draw(moments())
        cease = draw(
            st.one_of(
                st.none(),
                st.builds(
                    lambda minutes, form, moment=moment: {"at": iso(moment + timedelta(minutes=minutes)), "form": form},
                    st.integers(-3 * 24 * 60, 3 * 24 * 60) | st.just(0),
                    st.sampled_from(["written", "oral"]),
                ),
            )
        )
        changes = {"moment": iso(moment), "debtor.cease": cease, "purpose": draw(st.sampled_from(PURPOSES))}
        out.append(proposal("US", f"p{i}", changes))
    return out


@SETTINGS
@given(
    batch=cease_batch(),
    forms=subsets(["written", "oral"], min_size=1),
    permitted=subsets(PURPOSES),
)
def test_cease_paths_agree(batch: list[Proposal], forms: tuple[str, ...], permitted: tuple[str, ...]) -> None:
    assert_paths_agree(CeaseRequest(), CeaseParams(forms=forms, permitted_purposes=permitted), batch)


@SETTINGS
@given(moment=moments(), minutes=st.integers(-10_000, 10_000), purpose=st.sampled_from(PURPOSES))
def test_a_written_cease_stops_exactly_from_its_receipt(moment: datetime, minutes: int, purpose: str) -> None:
    cease_at = moment + timedelta(minutes=minutes)
    p = proposal(
        "US", "p", {"moment": iso(moment), "purpose": purpose, "debtor.cease": {"at": iso(cease_at), "form": "written"}}
    )
    params = CeaseParams(forms=("written",), permitted_purposes=("notify",))
    blocked = CeaseRequest().one(p, params, CTX).blocks
    assert blocked == (cease_at <= moment and purpose != "notify")


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.sampled_from([None, True, False]), st.sampled_from([None, True, False]), st.sampled_from(COUNTERPARTS)
        ),
        min_size=1,
        max_size=8,
    )
)
def test_attorney_paths_agree(facts: list[tuple[bool | None, bool | None, str]]) -> None:
    batch = [
        proposal("US", f"p{i}", {"debtor.attorney_represented": r, "debtor.attorney_consents": c, "counterpart": who})
        for i, (r, c, who) in enumerate(facts)
    ]
    blocked = assert_paths_agree(AttorneyRepresentation(), AttorneyParams(), batch)
    # Only a representation that is unknown, or known without the attorney's consent, blocks.
    assert blocked == sum(1 for r, c, _ in facts if r is None or (r and c is not True))


@st.composite
def dispute_batch(draw: st.DrawFn) -> list[Proposal]:
    out = []
    for i in range(draw(st.integers(1, 8))):
        moment = draw(moments())
        dispute = draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {"open": st.booleans()},
                    optional={
                        "written": st.booleans(),
                        "at": st.integers(-5000, 5000).map(lambda m, moment=moment: iso(moment + timedelta(minutes=m))),
                    },
                ),
            )
        )
        changes: dict[str, Any] = {
            "moment": iso(moment),
            "debtor.dispute": dispute,
            "debt.in_validation_period": draw(st.sampled_from([None, True, False])),
            "purpose": draw(st.sampled_from(PURPOSES)),
        }
        out.append(proposal("US", f"p{i}", changes))
    return out


@SETTINGS
@given(batch=dispute_batch(), permitted=subsets(PURPOSES))
def test_dispute_paths_agree(batch: list[Proposal], permitted: tuple[str, ...]) -> None:
    assert_paths_agree(OpenDispute(), DisputeParams(permitted_purposes=permitted), batch)


@st.composite
def breathing_batch(draw: st.DrawFn) -> list[Proposal]:
    out = []
    for i in range(draw(st.integers(1, 8))):
        moment = draw(moments())
        start = moment.date() + timedelta(days=draw(st.integers(-120, 5)))
        space = draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {
                        "start": st.just(start.isoformat()),
                        "kind": st.sampled_from(["standard", "mental_health_crisis"]),
                    },
                    optional={
                        "end": st.integers(0, 90).map(lambda d, start=start: (start + timedelta(days=d)).isoformat())
                    },
                ),
            )
        )
        changes = {"moment": iso(moment), "debtor.breathing_space": space, "purpose": draw(st.sampled_from(PURPOSES))}
        out.append(proposal("UK", f"p{i}", changes))
    return out


@SETTINGS
@given(
    batch=breathing_batch(),
    standard=st.integers(1, 90),
    extra=st.integers(0, 40),
    zone=st.sampled_from(ZONES),
    permitted=subsets(PURPOSES),
)
def test_breathing_space_paths_agree(
    batch: list[Proposal], standard: int, extra: int, zone: str, permitted: tuple[str, ...]
) -> None:
    params = BreathingSpaceParams(
        standard_days=standard, crisis_extra_days=extra, time_zone=zone, permitted_purposes=permitted
    )
    assert_paths_agree(BreathingSpace(), params, batch)


UK_PARAMS = BreathingSpaceParams(
    standard_days=60, crisis_extra_days=30, time_zone="Europe/London", permitted_purposes=("reply_to_debtor",)
)


@SETTINGS
@given(day=st.integers(-5, 70), kind=st.sampled_from(["standard", "mental_health_crisis"]))
def test_standard_moratorium_is_days_1_to_60_and_crisis_runs_30_days_past_treatment(day: int, kind: str) -> None:
    start = date(2026, 1, 3)
    today = start + timedelta(days=day)  # day 0 here is the moratorium's day 1
    space: dict[str, str] = {"start": start.isoformat(), "kind": kind}
    if kind == "mental_health_crisis":
        space["end"] = (start + timedelta(days=10)).isoformat()  # treatment ended on day 11
    p = proposal("UK", "p", {"moment": f"{today.isoformat()}T12:00:00+00:00", "debtor.breathing_space": space})
    blocked = BreathingSpace().one(p, UK_PARAMS, CTX).blocks
    last = 59 if kind == "standard" else 10 + 30
    assert blocked == (0 <= day <= last)


@SETTINGS
@given(
    st.lists(st.tuples(subsets(FLAGS), st.sampled_from(PURPOSES)), min_size=1, max_size=8),
    st.sampled_from(FLAGS),
    subsets(PURPOSES),
)
def test_flag_hold_paths_agree(facts: list[tuple[tuple[str, ...], str]], flag: str, permitted: tuple[str, ...]) -> None:
    batch = [proposal("CN", f"p{i}", {"debtor.flags": list(f), "purpose": p}) for i, (f, p) in enumerate(facts)]
    blocked = assert_paths_agree(FlagHold(), FlagParams(flag=flag, permitted_purposes=permitted), batch)
    assert blocked == sum(1 for f, p in facts if flag in f and p not in permitted)
