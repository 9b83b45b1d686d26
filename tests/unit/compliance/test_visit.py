"""Door-visit checks: the single and batch paths agree on random visits, and the parameters are strict."""

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
from duecourse.compliance.checks.base import Check, CheckContext, Params
from duecourse.compliance.checks.visit import (
    CertifiedParams,
    EntryParams,
    LastResortParams,
    MinBalanceParams,
    NoParams,
    NoticeParams,
    TeamSizeParams,
    VisitCertifiedStaff,
    VisitEntry,
    VisitIdentification,
    VisitLastResort,
    VisitMinBalance,
    VisitNotice,
    VisitRecording,
    VisitTeamSize,
)
from duecourse.compliance.facts import Proposal
from tests.unit.compliance.status_helpers import assert_paths_agree

ROOT = Path(__file__).resolve().parents[3]
CTX = CheckContext(calendar=HolidayCalendar.load(ROOT / "rules" / "calendars"))
with (ROOT / "tests" / "rules" / "base" / "CN.yaml").open(encoding="utf-8") as f:
    BASE: dict[str, Any] = yaml.safe_load(f)

OFFSETS = ["+08:00", "-05:00", "+00:00", "+01:00", "-10:00", "+14:00"]
OUTCOMES = ["conversation", "connected", "no_answer", "voicemail", "busy", "invalid_number", "delivered", "failed"]
FAILED = ["no_answer", "voicemail", "busy", "invalid_number", "failed"] * 2
ACTOR = {"kind": "lender", "name": "示例消费金融有限公司"}
GOOD_VISIT: dict[str, Any] = {
    "staff": [
        {"name": "张伟", "badge": "C-101", "certified_until": "2026-12-31"},
        {"name": "李娜", "badge": "C-102", "certified_until": "2026-12-31"},
    ],
    "identification_shown": True,
    "enters_premises": False,
    "recording": True,
    "notice_delivered_at": "2026-02-20T10:00:00+08:00",
}


def proposal(**changes: Any) -> Proposal:
    doc = {**BASE, "channel": "visit", "visit": GOOD_VISIT, **changes}
    return Proposal.model_validate(doc)


def _at(instant: datetime, offset: str) -> str:
    return instant.astimezone(datetime.fromisoformat(f"2026-01-01T00:00:00{offset}").tzinfo).isoformat()


@st.composite
def visits(draw: st.DrawFn, n: int) -> list[Proposal]:
    """Visits (and a few calls) whose every fact a visit check reads varies, near each threshold."""
    out = []
    for i in range(n):
        # Minutes around the UTC midnights of early March 2026, so UTC and local dates differ.
        moment = datetime(2026, 3, 3, tzinfo=UTC) + timedelta(minutes=draw(st.integers(-3000, 3000)))
        offset = draw(st.sampled_from(OFFSETS))
        day = moment.date()
        staff = [
            {
                "name": f"s{k}",
                "badge": f"B{k}",
                "certified_until": None if lapse is None else (day + timedelta(days=lapse)).isoformat(),
            }
            for k, lapse in enumerate(draw(st.lists(st.sampled_from([None, -1, 0, 0, 1, 2, 2]), max_size=3)))
        ]
        notice = draw(st.sampled_from([None, *range(-1, 11)]))  # days before the visit, give or take a minute
        visit = {
            "staff": staff,
            "identification_shown": draw(st.sampled_from([None, True, False])),
            "enters_premises": draw(st.sampled_from([None, True, False])),
            "consent_to_enter": draw(st.sampled_from([None, True, False])),
            "recording": draw(st.sampled_from([None, True, False])),
            "notice_delivered_at": None
            if notice is None
            else _at(moment - timedelta(days=notice, minutes=draw(st.integers(-1, 1))), draw(st.sampled_from(OFFSETS))),
        }
        history = [
            {
                "at": _at(
                    moment - timedelta(days=draw(st.integers(-1, 32)), minutes=draw(st.integers(-1, 1))), "+08:00"
                ),
                "channel": draw(st.sampled_from(["call", "call", "sms", "visit"])),
                "counterpart": draw(st.sampled_from(["debtor", "debtor", "emergency_contact"])),
                "outcome": draw(st.sampled_from([*OUTCOMES, *FAILED])),
                "initiated_by": draw(st.sampled_from(["collector", "collector", "debtor"])),
                "actor": ACTOR,
            }
            for _ in range(draw(st.integers(0, 10)))
        ]
        out.append(
            proposal(
                id=f"p{i}",
                moment=_at(moment, offset),
                channel=draw(st.sampled_from(["visit", "visit", "visit", "call"])),
                place=draw(st.sampled_from([None, "home", "workplace", "public", "other"])),
                visit=draw(st.sampled_from([None, *[visit] * 5])),
                history=history,
                debt={
                    **BASE["debt"],
                    "days_past_due": draw(st.integers(55, 65)),
                    "balance": draw(st.integers(399_990, 400_010)),
                    "currency": draw(st.sampled_from(["CNY", "CNY", "USD", "HKD"])),
                },
            )
        )
    return out


PARAMS: list[tuple[Check, st.SearchStrategy[Params]]] = [
    (VisitTeamSize(), st.builds(TeamSizeParams, min_staff=st.integers(1, 3))),
    (VisitCertifiedStaff(), st.just(CertifiedParams())),
    (VisitIdentification(), st.just(NoParams())),
    (VisitRecording(), st.just(NoParams())),
    (
        VisitEntry(),
        st.builds(
            EntryParams,
            places=st.lists(st.sampled_from(["home", "workplace", "public", "other"]), min_size=1, unique=True),
        ),
    ),
    (VisitNotice(), st.builds(NoticeParams, min_days=st.sampled_from([0, 1, 7]), first_visit_only=st.booleans())),
    (
        VisitLastResort(),
        st.builds(
            LastResortParams,
            min_days_past_due=st.integers(55, 65),
            min_failed_attempts=st.integers(1, 3),
            lookback_days=st.sampled_from([1, 7, 30]),
            failed_outcomes=st.lists(st.sampled_from(OUTCOMES), min_size=1, unique=True),
        ),
    ),
    (
        VisitMinBalance(),
        st.builds(
            MinBalanceParams,
            min_balance=st.fixed_dictionaries(
                {"CNY": st.integers(399_995, 400_005)}, optional={"USD": st.integers(0, 10**6)}
            ),
        ),
    ),
]


@pytest.mark.parametrize(("check", "params"), PARAMS, ids=[c.kind for c, _ in PARAMS])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_one_and_batch_agree(check: Check, params: st.SearchStrategy[Params], data: st.DataObject) -> None:
    assert_paths_agree(check, data.draw(params), data.draw(visits(data.draw(st.integers(1, 12)))))


def test_a_call_is_not_a_visit_and_a_visit_without_facts_blocks() -> None:
    call = proposal(channel="call", visit=None)
    bare = proposal(visit=None)
    for check, params in [(VisitTeamSize(), TeamSizeParams(min_staff=2)), (VisitRecording(), NoParams())]:
        assert check.one(call, params, CTX).verdict == "not_applicable"
        assert check.one(bare, params, CTX).verdict == "missing_facts"


def test_notice_counts_full_days_in_elapsed_time() -> None:
    check, params = VisitNotice(), NoticeParams(min_days=7, first_visit_only=False)
    visit_at = datetime.fromisoformat("2026-03-03T10:00:00+08:00")

    def verdict(delivered: datetime) -> str:
        p = proposal(visit={**GOOD_VISIT, "notice_delivered_at": delivered.isoformat()})
        return check.one(p, params, CTX).verdict

    assert verdict(visit_at - timedelta(days=7)) == "pass"
    assert verdict(visit_at - timedelta(days=7) + timedelta(seconds=1)) == "violation"
    assert verdict(visit_at - timedelta(days=6)) == "violation"  # one day too late
    # The same instant in another offset gives the same answer.
    assert verdict((visit_at - timedelta(days=7)).astimezone(UTC)) == "pass"


def test_last_resort_names_the_conversation_that_shows_remote_contact_works() -> None:
    talk = {"at": "2026-02-27T15:00:00+08:00", "channel": "call", "counterpart": "debtor", "outcome": "conversation"}
    failed = [
        {"at": f"2026-02-2{d}T10:00:00+08:00", "channel": "call", "counterpart": "debtor", "outcome": "no_answer"}
        for d in (0, 1, 2)
    ]
    params = LastResortParams(
        min_days_past_due=60, min_failed_attempts=3, lookback_days=30, failed_outcomes=("no_answer",)
    )
    p = proposal(debt={**BASE["debt"], "days_past_due": 60}, history=[{**e, "actor": ACTOR} for e in [*failed, talk]])
    finding = VisitLastResort().one(p, params, CTX)
    assert finding.verdict == "violation"
    assert "2026-02-27 07:00 UTC" in finding.facts
    without_talk = proposal(debt={**BASE["debt"], "days_past_due": 60}, history=[{**e, "actor": ACTOR} for e in failed])
    assert VisitLastResort().one(without_talk, params, CTX).verdict == "pass"


def test_certification_is_valid_through_its_last_day() -> None:
    def verdict(until: date) -> str:
        staff = [{"name": "张伟", "badge": "C-101", "certified_until": until.isoformat()}]
        return VisitCertifiedStaff().one(proposal(visit={**GOOD_VISIT, "staff": staff}), CertifiedParams(), CTX).verdict

    assert verdict(date(2026, 3, 3)) == "pass"
    assert verdict(date(2026, 3, 2)) == "violation"


@pytest.mark.parametrize("bad", [400000.0, 400000.5, "400000"])
def test_minimum_balance_is_integer_minor_units_only(bad: object) -> None:
    with pytest.raises(ValidationError):
        MinBalanceParams.model_validate({"min_balance": {"CNY": bad}})


def test_parameters_refuse_unknown_keys_and_values() -> None:
    with pytest.raises(ValidationError):
        TeamSizeParams.model_validate({"min_staff": 2, "max_staff": 4})
    with pytest.raises(ValidationError):
        TeamSizeParams.model_validate({"min_staff": 0})
    with pytest.raises(ValidationError):
        EntryParams.model_validate({"places": ["garden"]})
    with pytest.raises(ValidationError):
        LastResortParams.model_validate(
            {"min_days_past_due": 60, "min_failed_attempts": 3, "lookback_days": 30, "failed_outcomes": ["ignored"]}
        )
