"""The time and place checks: hand-picked cases for their semantics, and one == batch on random proposals."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from duecourse.compliance.calendar import HolidayCalendar
from duecourse.compliance.checks.base import Check, CheckContext, Finding, Params
from duecourse.compliance.checks.contact_window import ContactWindow, ContactWindowParams
from duecourse.compliance.checks.holidays import HolidaysParams, StatutoryHolidays
from duecourse.compliance.checks.workplace import EmployerProhibitsWorkplace, InconvenientPlace, PlaceParams
from duecourse.compliance.facts import Proposal, to_frames

ROOT = Path(__file__).resolve().parents[3]
CTX = CheckContext(calendar=HolidayCalendar.load(ROOT / "rules" / "calendars"))
with (ROOT / "tests" / "rules" / "base" / "CN.yaml").open(encoding="utf-8") as f:
    BASE: dict[str, Any] = yaml.safe_load(f)

CN_HOURS = ContactWindowParams(
    start=time(8), end=time(22), agreed_windows="govern", inconvenient_windows="ignored"
)  # both boundaries banned (the defaults)


def proposal(**changes: Any) -> Proposal:
    doc = {**BASE, **{k: v for k, v in changes.items() if k != "debtor"}}
    doc["debtor"] = {**BASE["debtor"], **changes.get("debtor", {})}
    return Proposal.model_validate(doc)


def both(check: Check, params: Params, p: Proposal) -> tuple[Finding, list[dict[str, Any]]]:
    frame, history = to_frames([p])
    return check.one(p, params, CTX), check.batch(frame, history, params, CTX).to_dicts()


@pytest.mark.parametrize(
    ("local", "verdict"),
    [
        ("07:59:59", "violation"),
        ("08:00:00", "violation"),
        ("08:00:01", "pass"),
        ("21:59:59", "pass"),
        ("22:00:00", "violation"),
    ],
)
def test_cn_boundaries_to_the_second(local: str, verdict: str) -> None:
    finding, rows = both(ContactWindow(), CN_HOURS, proposal(moment=f"2026-03-03T{local}+08:00"))
    assert finding.verdict == verdict
    assert [r["verdict"] for r in rows] == ([] if verdict == "pass" else [verdict])


def test_the_facts_name_the_zone_that_blocks_and_the_allowed_hours() -> None:
    p = proposal(moment="2026-03-03T09:30:00+08:00", debtor={"time_zones": ["Asia/Shanghai", "Asia/Urumqi"]})
    finding, rows = both(ContactWindow(), CN_HOURS, p)
    assert (
        finding.facts
        == "07:30 Asia/Urumqi is outside the allowed hours (after 08:00 before 22:00) and no agreed window covers it"
    )
    assert rows == [{"proposal_id": "base-cn", "verdict": "violation", "facts": finding.facts}]


def test_an_inconvenient_window_is_named_in_the_facts() -> None:
    params = ContactWindowParams(agreed_windows="ignored", inconvenient_windows="block")
    p = proposal(debtor={"inconvenient_windows": [{"start": "09:45", "end": "10:15"}]})
    finding, rows = both(ContactWindow(), params, p)
    assert finding.facts == "10:00 Asia/Shanghai is inside 09:45–10:15, a time the debtor named inconvenient"
    assert rows[0]["facts"] == finding.facts


def test_a_permitting_agreement_widens_but_a_governing_one_replaces_the_hours() -> None:
    agreed = {"agreed_windows": [{"start": "22:00", "end": "23:00"}]}
    permit = CN_HOURS.model_copy(update={"agreed_windows": "permit"})
    morning, night = proposal(debtor=agreed), proposal(moment="2026-03-03T22:30:00+08:00", debtor=agreed)
    assert ContactWindow().one(morning, permit, CTX).verdict == "pass"
    assert ContactWindow().one(morning, CN_HOURS, CTX).verdict == "violation"
    assert ContactWindow().one(night, permit, CTX).verdict == "pass"
    assert ContactWindow().one(night, CN_HOURS, CTX).verdict == "pass"


def test_a_window_needs_both_ends() -> None:
    with pytest.raises(ValidationError, match="start and end go together"):
        ContactWindowParams(start=time(8), agreed_windows="ignored", inconvenient_windows="ignored")


def test_a_spring_festival_day_is_named_in_both_languages() -> None:
    finding, rows = both(StatutoryHolidays(), HolidaysParams(), proposal(moment="2026-02-17T10:00:00+08:00"))
    assert finding == Finding("violation", "2026-02-17 in Asia/Shanghai is Spring Festival (春节)")
    assert rows == [{"proposal_id": "base-cn", "verdict": "violation", "facts": finding.facts}]


def test_a_known_holiday_outweighs_an_uncovered_date_in_another_zone() -> None:
    # 2026-02-17 10:00 Shanghai; the debtor may also be in a zone where the calendar says nothing new.
    p = proposal(moment="2026-02-17T10:00:00+08:00", debtor={"time_zones": ["Pacific/Kiritimati", "Asia/Shanghai"]})
    finding, rows = both(StatutoryHolidays(), HolidaysParams(), p)
    assert finding.verdict == "violation" and rows[0]["verdict"] == "violation"


def test_workplace_and_place_checks_ignore_an_unknown_place_when_nothing_hangs_on_it() -> None:
    p = proposal(place=None, debtor={"employer_prohibits_contact": None})
    assert EmployerProhibitsWorkplace().one(p, PlaceParams(), CTX).verdict == "pass"
    assert InconvenientPlace().one(p, PlaceParams(), CTX).verdict == "pass"


# --- one == batch on random proposals ------------------------------------------------------------------

ZONES = ["Asia/Shanghai", "Asia/Urumqi", "America/New_York", "America/Los_Angeles", "Europe/London", "Pacific/Apia"]
# Few distinct hours and minutes, and moments built from the first zone's local time, so that moments often fall
# exactly on a window's or the rule's boundary.
HOURS, MINUTES = [0, 8, 12, 21, 22], [0, 59]
clock = st.tuples(st.sampled_from(HOURS), st.sampled_from(MINUTES)).map(lambda hm: time(*hm))
minutes = clock.map(lambda t: f"{t:%H:%M}")
windows = st.lists(st.fixed_dictionaries({"start": minutes, "end": minutes}), max_size=3)
days = st.dates(min_value=date(2019, 6, 1), max_value=date(2031, 6, 1))
offsets = st.sampled_from([-8, -5, 0, 1, 8, 14]).map(lambda h: timezone(timedelta(hours=h)))


@st.composite
def proposals(draw: st.DrawFn, index: int) -> Proposal:
    zones = draw(st.lists(st.sampled_from(ZONES), max_size=3, unique=True))
    local = datetime.combine(draw(days), draw(clock)).replace(second=draw(st.sampled_from([0, 0, 0, 1])))
    moment = local.replace(tzinfo=ZoneInfo(zones[0] if zones else "UTC")).astimezone(draw(offsets))
    country, region = draw(
        st.sampled_from([("CN", None), ("US", "NY"), ("UK", "ENG"), ("UK", "SCT"), ("UK", None), ("ZZ", None)])
    )
    return proposal(
        id=f"p{index}",
        moment=moment.isoformat(),
        jurisdiction={"country": country, "region": region},
        counterpart=draw(st.sampled_from(["debtor", "debtor", "spouse", "employer"])),
        place=draw(st.sampled_from([None, "home", "workplace", "public"])),
        debtor={
            "time_zones": zones,
            "agreed_windows": draw(windows),
            "inconvenient_windows": draw(windows),
            "inconvenient_places": draw(st.lists(st.sampled_from(["home", "workplace", "public"]), unique=True)),
            "employer_prohibits_contact": draw(st.sampled_from([None, True, False])),
        },
    )


@st.composite
def window_params(draw: st.DrawFn) -> ContactWindowParams:
    hours = draw(st.one_of(st.none(), st.tuples(clock, clock)))
    return ContactWindowParams(
        start=None if hours is None else hours[0],
        end=None if hours is None else hours[1],
        start_allowed=draw(st.booleans()),
        end_allowed=draw(st.booleans()),
        agreed_windows=draw(st.sampled_from(["ignored", "permit", "govern"])),
        inconvenient_windows=draw(st.sampled_from(["ignored", "block"])),
    )


holiday_params = st.sampled_from([HolidaysParams(), HolidaysParams(calendar_regions={"UK": ("ENG", "WLS")})])
CHECKS: dict[str, tuple[Check, st.SearchStrategy[Params]]] = {
    "statutory_holidays": (StatutoryHolidays(), holiday_params),
    "workplace_prohibited": (EmployerProhibitsWorkplace(), st.just(PlaceParams())),
    "inconvenient_place": (InconvenientPlace(), st.just(PlaceParams())),
}
batches = st.lists(st.integers(0, 10_000), min_size=1, max_size=8, unique=True).flatmap(
    lambda ids: st.tuples(*[proposals(i) for i in ids])
)


def _agree(check: Check, params: Params, batch: tuple[Proposal, ...]) -> None:
    frame, history = to_frames(batch)
    found = {r["proposal_id"]: r for r in check.batch(frame, history, params, CTX).to_dicts()}
    for p in batch:
        single = check.one(p, params, CTX)
        if single.blocks:
            assert found.get(p.id) == {"proposal_id": p.id, "verdict": single.verdict, "facts": single.facts}
        else:
            assert p.id not in found, (single, found[p.id])


@settings(max_examples=200, deadline=None)
@given(params=window_params(), batch=batches)
def test_contact_window_one_and_batch_agree(params: ContactWindowParams, batch: tuple[Proposal, ...]) -> None:
    _agree(ContactWindow(), params, batch)


@pytest.mark.parametrize("kind", list(CHECKS))
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_one_and_batch_agree(kind: str, data: st.DataObject) -> None:
    check, strategy = CHECKS[kind]
    _agree(check, data.draw(strategy), data.draw(batches))
