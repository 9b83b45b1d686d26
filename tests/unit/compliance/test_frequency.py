"""The `contact_cap` check: counting rules on hand-built histories, local days across time-zone transitions,
and the single and batch paths agreeing on random histories and random parameters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import hypothesis.strategies as st
import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from duecourse.compliance.calendar import HolidayCalendar
from duecourse.compliance.checks.base import CheckContext
from duecourse.compliance.checks.frequency import CapParams, ContactCap, day_start, local_day, with_days
from duecourse.compliance.facts import Proposal, to_frames

ROOT = Path(__file__).resolve().parents[3]
CTX = CheckContext(calendar=HolidayCalendar.load(ROOT / "rules" / "calendars"))
CHECK = ContactCap()
# Zones with midnight transitions (Havana and Beirut skip or repeat midnight; Santiago moves at 24:00),
# half-hour offsets, and the packs' own zones.
ZONES = [
    "Asia/Shanghai",
    "America/New_York",
    "Europe/London",
    "America/Havana",
    "America/Santiago",
    "Asia/Beirut",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
]
OUTCOMES = ["conversation", "connected", "no_answer", "voicemail", "busy", "invalid_number", "delivered", "failed"]
NUMBERS = ["+1", "+2", "+3"]


def _base(name: str) -> dict[str, Any]:
    with (ROOT / "tests" / "rules" / "base" / f"{name}.yaml").open(encoding="utf-8") as f:
        data: dict[str, Any] = yaml.safe_load(f)
    return data


def _event(at: str, outcome: str = "no_answer", **extra: Any) -> dict[str, Any]:
    event = {
        "at": at,
        "channel": "call",
        "counterpart": "debtor",
        "address": "+12125550100",
        "outcome": outcome,
        "debts": ["L-2001"],
        "actor": {"kind": "agency", "name": "Example Recovery LLC"},
    }
    event.update(extra)
    return event


def _us(history: list[dict[str, Any]], **changes: Any) -> Proposal:
    doc = _base("US")
    doc.update(changes, history=history)
    return Proposal.model_validate(doc)


SEVEN_IN_SEVEN = CapParams(
    what="calls",
    cap=7,
    days=7,
    channels=("call",),
    outcomes=("conversation", "connected", "no_answer", "voicemail"),
    initiated_by=("collector",),
    per=("counterpart", "debt", "actor"),
    consent_days=7,
)


def _both(p: Proposal, params: CapParams) -> tuple[str, list[str]]:
    """The single verdict, and the batch verdicts (empty when the batch lets the proposal through)."""
    frame, history = to_frames([p])
    found = CHECK.batch(frame, history, params, CTX)
    return CHECK.one(p, params, CTX).verdict, found.get_column("verdict").to_list()


def test_the_eighth_call_in_seven_days_is_blocked_and_the_seventh_is_not() -> None:
    days = [f"2026-02-{d}T10:00:00-05:00" for d in range(25, 29)] + [f"2026-03-0{d}T09:00:00-05:00" for d in (1, 2, 3)]
    assert _both(_us([_event(at) for at in days[:6]]), SEVEN_IN_SEVEN) == ("pass", [])
    assert _both(_us([_event(at) for at in days]), SEVEN_IN_SEVEN) == ("violation", ["violation"])


def test_busy_and_dead_numbers_do_not_count_but_voicemail_does() -> None:
    six = [_event(f"2026-03-0{d}T0{h}:00:00-05:00") for d in (1, 2) for h in (7, 8, 9)]
    for outcome, verdict in (("busy", "pass"), ("invalid_number", "pass"), ("voicemail", "violation")):
        p = _us([*six, _event("2026-03-03T08:00:00-05:00", outcome)])
        assert _both(p, SEVEN_IN_SEVEN)[0] == verdict, outcome


def test_an_event_about_two_debts_counts_for_each() -> None:
    seven = [_event(f"2026-03-0{d}T0{h}:00:00-05:00", debts=["L-2001", "L-9"]) for d in (1, 2) for h in (6, 7, 8)]
    seven.append(_event("2026-03-03T08:00:00-05:00", debts=["L-9", "L-2001"]))
    assert _both(_us(seven), SEVEN_IN_SEVEN)[0] == "violation"
    other = _us(seven, debt={**_base("US")["debt"], "id": "L-9"})
    assert _both(other, SEVEN_IN_SEVEN)[0] == "violation"
    third = _us(seven, debt={**_base("US")["debt"], "id": "L-3"})
    assert _both(third, SEVEN_IN_SEVEN)[0] == "pass"


def test_consent_excludes_calls_for_seven_days_counting_the_day_it_was_received() -> None:
    seven = [_event(f"2026-03-0{d}T0{h}:00:00-05:00") for d in (1, 2) for h in (6, 7, 8)]
    seven.append(_event("2026-03-03T08:00:00-05:00"))
    debtor = _base("US")["debtor"]
    on_day_1 = _us(seven, debtor={**debtor, "consent_to_call_at": "2026-02-25T23:59:00-05:00"})
    on_day_0 = _us(seven, debtor={**debtor, "consent_to_call_at": "2026-02-24T23:59:00-05:00"})
    assert _both(on_day_1, SEVEN_IN_SEVEN) == ("pass", [])
    assert _both(on_day_0, SEVEN_IN_SEVEN) == ("violation", ["violation"])


def test_a_daily_cap_counts_the_debtors_local_day_not_the_utc_day() -> None:
    daily = SEVEN_IN_SEVEN.model_copy(update={"cap": 1, "days": 1, "per": ()})
    # 2026-03-03 00:30 in Shanghai is 2026-03-02 16:30 UTC.
    doc = _base("CN")
    doc["history"] = [{**_event("2026-03-02T16:30:00Z", "connected"), "debts": []}]
    assert _both(Proposal.model_validate(doc), daily)[0] == "violation"
    doc["history"] = [{**_event("2026-03-02T15:30:00Z", "connected"), "debts": []}]
    assert _both(Proposal.model_validate(doc), daily)[0] == "pass"


def test_day_starts_follow_zoneinfo_through_skipped_and_repeated_midnights() -> None:
    havana = ZoneInfo("America/Havana")  # 2026-03-08: 00:00 jumps to 01:00, the day starts at 05:00 UTC
    assert day_start(date(2026, 3, 8), havana) == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
    assert local_day(datetime(2026, 3, 8, 4, 59, tzinfo=UTC), havana) == date(2026, 3, 7)
    assert local_day(datetime(2026, 3, 8, 5, 0, tzinfo=UTC), havana) == date(2026, 3, 8)
    moments = [datetime(2026, 3, 8, 4, 59, tzinfo=UTC), datetime(2026, 3, 8, 5, 0, tzinfo=UTC)]
    frame = pl.DataFrame(
        {"moment_utc": moments, "debtor_time_zones": [["America/Havana"], ["America/Havana"]]},
        schema={"moment_utc": pl.Datetime("us", "UTC"), "debtor_time_zones": pl.List(pl.String)},
    )
    out = with_days(frame, {"next": 1})
    assert out.get_column("day").to_list() == [date(2026, 3, 7), date(2026, 3, 8)]
    assert out.get_column("next").to_list() == [moments[1], day_start(date(2026, 3, 9), havana)]


# --- one and batch agree -----------------------------------------------------------------------------------


@st.composite
def cap_params(draw: st.DrawFn) -> CapParams:
    return CapParams(
        what="contacts",
        cap=draw(st.integers(1, 4)),
        days=draw(st.one_of(st.none(), st.integers(1, 8))),
        channels=tuple(draw(st.lists(st.sampled_from(["call", "sms"]), min_size=1, max_size=2, unique=True))),
        outcomes=tuple(draw(st.lists(st.sampled_from(OUTCOMES), min_size=1, max_size=5, unique=True))),
        initiated_by=tuple(
            draw(st.lists(st.sampled_from(["collector", "debtor", "counterpart"]), min_size=1, unique=True))
        ),
        per=tuple(draw(st.lists(st.sampled_from(["counterpart", "address", "debt", "actor"]), unique=True))),
        consent_days=draw(st.one_of(st.none(), st.integers(1, 8))),
    )


@st.composite
def histories(draw: st.DrawFn, n: int) -> list[Proposal]:
    out = []
    for i in range(n):
        doc = _base(draw(st.sampled_from(["CN", "US"])))
        moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 365 * 24 * 60)))
        offset = draw(st.sampled_from([ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York"), UTC]))
        doc["id"] = f"p{i}"
        doc["moment"] = moment.astimezone(offset).isoformat()
        doc["counterpart"] = draw(st.sampled_from(["debtor", "debtor", "spouse"]))
        doc["address"] = draw(st.sampled_from([None, *NUMBERS, *NUMBERS]))
        doc["actor"] = {"kind": "agency", "name": draw(st.sampled_from(["A", "B"]))}
        doc["debt"]["id"] = draw(st.sampled_from(["D1", "D2"]))
        doc["debtor"]["time_zones"] = draw(
            st.lists(st.sampled_from(ZONES), min_size=draw(st.sampled_from([0, 1, 1, 1])), max_size=2, unique=True)
        )
        consent = draw(st.one_of(st.none(), st.integers(-9 * 24 * 60, 24 * 60)))
        if consent is not None:
            doc["debtor"]["consent_to_call_at"] = (moment - timedelta(minutes=consent)).isoformat()
        doc["history"] = [
            {
                "at": (
                    moment - timedelta(minutes=draw(st.integers(-24 * 60, draw(st.sampled_from([1, 3, 10])) * 24 * 60)))
                ).isoformat(),
                "channel": draw(st.sampled_from(["call", "call", "sms"])),
                "counterpart": draw(st.sampled_from(["debtor", "debtor", "spouse"])),
                "address": draw(st.sampled_from([None, *NUMBERS])),
                "outcome": draw(st.sampled_from(OUTCOMES)),
                "initiated_by": draw(st.sampled_from(["collector", "collector", "debtor", "counterpart"])),
                "debts": draw(st.lists(st.sampled_from(["D1", "D2"]), max_size=2, unique=True)),
                "actor": {"kind": "agency", "name": draw(st.sampled_from(["A", "B"]))},
            }
            for _ in range(draw(st.integers(0, 12)))
        ]
        out.append(Proposal.model_validate(doc))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=histories(6), params=cap_params(), shuffle=st.randoms(use_true_random=False))
def test_single_and_batch_agree(batch: list[Proposal], params: CapParams, shuffle: Any) -> None:
    frame, history = to_frames(batch)
    order = list(range(history.height))  # shuffled: the batch must not depend on the history's order
    shuffle.shuffle(order)
    found = CHECK.batch(frame, history[order], params, CTX)
    got = {row["proposal_id"]: (row["verdict"], row["facts"]) for row in found.iter_rows(named=True)}
    for p in batch:
        single = CHECK.one(p, params, CTX)
        if single.blocks:
            assert got.get(p.id) == (single.verdict, single.facts), p.id
        else:
            assert p.id not in got, (p.id, single, got[p.id])


@pytest.mark.parametrize("n", [0, 1])
def test_empty_frames_block_nothing(n: int) -> None:
    batch = [_us([])][:n]
    frame, history = to_frames(batch)
    assert CHECK.batch(frame, history, SEVEN_IN_SEVEN, CTX).is_empty()
