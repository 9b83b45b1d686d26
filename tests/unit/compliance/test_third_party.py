"""The third-party checks: who is the debtor's side, when a CN contact may be reached, US location calls —
hand-built cases, and the single and batch paths agreeing on random proposals and parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import hypothesis.strategies as st
import yaml
from hypothesis import HealthCheck, given, settings

from duecourse.compliance.calendar import HolidayCalendar
from duecourse.compliance.checks.base import Check, CheckContext, Params
from duecourse.compliance.checks.frequency import CapParams
from duecourse.compliance.checks.third_party import (
    Counterparts,
    CounterpartsParams,
    LocationContact,
    UnreachableDebtor,
    UnreachableParams,
)
from duecourse.compliance.facts import Proposal, to_frames

ROOT = Path(__file__).resolve().parents[3]
CTX = CheckContext(calendar=HolidayCalendar.load(ROOT / "rules" / "calendars"))
COUNTERPARTS = ["debtor", "spouse", "family", "emergency_contact", "employer", "guarantor", "attorney", "other"]
PURPOSES = ["collect", "locate", "notify", "confirm_opt_out", "reply_to_debtor"]
OUTCOMES = ["conversation", "connected", "no_answer", "voicemail", "busy", "invalid_number", "delivered", "failed"]
CBA = UnreachableParams(
    purposes=("locate", "notify"),
    failed_calls=3,
    failed_outcomes=("no_answer", "voicemail", "busy", "invalid_number", "failed"),
    wait_days=1,
    flags=("deceased", "mental_capacity"),
)
ONCE = CapParams(
    what="location communications",
    cap=1,
    days=None,
    channels=("call", "sms", "letter"),
    outcomes=("conversation", "connected", "voicemail", "delivered"),
    initiated_by=("collector",),
    per=("counterpart", "address", "actor"),
)


def _base(name: str) -> dict[str, Any]:
    with (ROOT / "tests" / "rules" / "base" / f"{name}.yaml").open(encoding="utf-8") as f:
        data: dict[str, Any] = yaml.safe_load(f)
    return data


def _both(check: Check, p: Proposal, params: Params) -> tuple[str, list[str]]:
    frame, history = to_frames([p])
    return check.one(p, params, CTX).verdict, check.batch(frame, history, params, CTX).get_column("verdict").to_list()


def _failed(at: str, outcome: str = "no_answer") -> dict[str, Any]:
    return {
        "at": at,
        "channel": "call",
        "counterpart": "debtor",
        "address": "+8613800138000",
        "outcome": outcome,
        "actor": {"kind": "lender", "name": "示例消费金融有限公司"},
    }


def _contact(history: list[dict[str, Any]], **debtor: Any) -> Proposal:
    doc = _base("CN")
    doc.update(counterpart="emergency_contact", purpose="locate", history=history)
    doc["debtor"] = {k: v for k, v in {**doc["debtor"], **debtor}.items() if v is not None}
    return Proposal.model_validate(doc)


def test_a_contact_is_reachable_the_day_after_the_third_failed_call_not_the_same_day() -> None:
    check = UnreachableDebtor()
    yesterday = [_failed(f"2026-03-02T1{h}:00:00+08:00") for h in (0, 1, 2)]
    today = [_failed(f"2026-03-03T0{h}:00:00+08:00") for h in (7, 8, 9)]
    assert _both(check, _contact(yesterday, reachable=None), CBA) == ("pass", [])
    assert _both(check, _contact(today, reachable=None), CBA) == ("violation", ["violation"])
    assert _both(check, _contact(yesterday[:2], reachable=None), CBA) == ("missing_facts", ["missing_facts"])


def test_reaching_the_debtor_resets_the_count_of_failed_calls() -> None:
    check = UnreachableDebtor()
    failed = [_failed(f"2026-03-01T1{h}:00:00+08:00") for h in (0, 1, 2)]
    reached = _failed("2026-03-01T18:00:00+08:00", "conversation")
    again = [_failed(f"2026-03-02T1{h}:00:00+08:00") for h in (0, 1, 2)]
    assert _both(check, _contact([*failed, reached], reachable=None), CBA)[0] == "missing_facts"
    assert _both(check, _contact([*failed, reached, *again], reachable=None), CBA)[0] == "pass"


def test_a_contact_may_only_be_asked_where_the_debtor_is_or_to_pass_on_a_message() -> None:
    doc = _base("CN")
    doc.update(counterpart="family", purpose="collect")
    doc["debtor"] = {**doc["debtor"], "reachable": False, "unreachable_since": "2026-02-01T10:00:00+08:00"}
    assert _both(UnreachableDebtor(), Proposal.model_validate(doc), CBA) == ("violation", ["violation"])


def test_counterparts_pass_the_debtors_side_and_block_third_parties() -> None:
    us = CounterpartsParams(parties=("debtor", "spouse", "attorney", "guarantor"), third_party_purposes=("locate",))
    cn = CounterpartsParams(parties=("debtor", "attorney"), unverified=("guarantor", "spouse"))
    doc = _base("CN")
    for who, purpose, params, verdict in [
        ("spouse", "collect", us, "pass"),
        ("family", "locate", us, "pass"),
        ("family", "collect", us, "violation"),
        ("spouse", "collect", cn, "missing_facts"),
        ("employer", "collect", cn, "violation"),
        ("attorney", "collect", cn, "pass"),
    ]:
        p = Proposal.model_validate({**doc, "counterpart": who, "purpose": purpose})
        single, batch = _both(Counterparts(), p, params)
        assert single == verdict, (who, purpose)
        assert batch == ([] if verdict == "pass" else [verdict])


def test_location_calls_stop_at_one_per_person_and_once_an_attorney_is_known() -> None:
    doc = _base("US")
    doc.update(counterpart="family", purpose="locate", address="+12125550177")
    earlier = {
        "at": "2026-01-05T10:00:00-05:00",
        "channel": "call",
        "counterpart": "family",
        "address": "+12125550177",
        "outcome": "conversation",
        "actor": {"kind": "agency", "name": "Example Recovery LLC"},
    }
    check = LocationContact()
    assert _both(check, Proposal.model_validate(doc), ONCE) == ("pass", [])
    assert _both(check, Proposal.model_validate({**doc, "history": [earlier]}), ONCE)[0] == "violation"
    represented = {**doc, "debtor": {**doc["debtor"], "attorney_represented": True}}
    assert _both(check, Proposal.model_validate(represented), ONCE) == ("violation", ["violation"])


# --- one and batch agree -----------------------------------------------------------------------------------


@st.composite
def proposals(draw: st.DrawFn, n: int) -> list[Proposal]:
    out = []
    for i in range(n):
        doc = _base(draw(st.sampled_from(["CN", "US"])))
        moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 365 * 24 * 60)))
        doc["id"] = f"p{i}"
        doc["moment"] = moment.astimezone(ZoneInfo(draw(st.sampled_from(["Asia/Shanghai", "UTC"])))).isoformat()
        doc["counterpart"] = draw(st.sampled_from(COUNTERPARTS))
        doc["purpose"] = draw(st.sampled_from(PURPOSES))
        doc["address"] = draw(st.sampled_from([None, "+1", "+2"]))
        doc["actor"] = {"kind": "agency", "name": draw(st.sampled_from(["A", "B"]))}
        debtor = doc["debtor"]
        debtor["time_zones"] = draw(st.sampled_from([[], ["Asia/Shanghai"], ["America/New_York", "Asia/Shanghai"]]))
        debtor["flags"] = draw(st.sampled_from([[], [], ["deceased"], ["elderly"], ["mental_capacity"]]))
        debtor["reachable"] = draw(st.sampled_from([None, True, False, False]))
        since = draw(st.one_of(st.none(), st.integers(-24 * 60, 3 * 24 * 60)))
        debtor["unreachable_since"] = None if since is None else (moment - timedelta(minutes=since)).isoformat()
        debtor["attorney_represented"] = draw(st.sampled_from([None, False, False, True]))
        debtor["attorney_consents"] = draw(st.sampled_from([None, True, False]))
        doc["history"] = [
            {
                "at": (moment - timedelta(minutes=draw(st.integers(-12 * 60, 3 * 24 * 60)))).isoformat(),
                "channel": draw(st.sampled_from(["call", "call", "call", "sms", "letter"])),
                "counterpart": draw(st.sampled_from(["debtor", "debtor", "family", "spouse"])),
                "address": draw(st.sampled_from([None, "+1", "+2"])),
                "outcome": draw(st.sampled_from(OUTCOMES)),
                "initiated_by": draw(st.sampled_from(["collector", "collector", "collector", "debtor", "counterpart"])),
                "actor": {"kind": "agency", "name": draw(st.sampled_from(["A", "B"]))},
            }
            for _ in range(draw(st.integers(0, 8)))
        ]
        out.append(Proposal.model_validate(doc))
    return out


@st.composite
def unreachable_params(draw: st.DrawFn) -> UnreachableParams:
    return UnreachableParams(
        purposes=tuple(draw(st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=3, unique=True))),
        failed_calls=draw(st.one_of(st.none(), st.integers(1, 4))),
        failed_outcomes=tuple(draw(st.lists(st.sampled_from(OUTCOMES[2:]), min_size=1, unique=True))),
        wait_days=draw(st.integers(0, 2)),
        flags=tuple(draw(st.lists(st.sampled_from(["deceased", "mental_capacity"]), unique=True))),
    )


@st.composite
def counterparts_params(draw: st.DrawFn) -> CounterpartsParams:
    parties = draw(st.lists(st.sampled_from(COUNTERPARTS), min_size=1, max_size=4, unique=True))
    rest = [c for c in COUNTERPARTS if c not in parties]
    return CounterpartsParams(
        parties=tuple(parties),
        unverified=tuple(draw(st.lists(st.sampled_from(rest), max_size=2, unique=True))) if rest else (),
        third_party_purposes=tuple(draw(st.lists(st.sampled_from(PURPOSES), max_size=2, unique=True))),
    )


SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def _agree(check: Check, batch: list[Proposal], params: Params, shuffle: Any) -> None:
    frame, history = to_frames(batch)
    order = list(range(history.height))  # shuffled: the batch must not depend on the history's order
    shuffle.shuffle(order)
    found = check.batch(frame, history[order], params, CTX)
    got = {row["proposal_id"]: (row["verdict"], row["facts"]) for row in found.iter_rows(named=True)}
    assert found.height == len(got)  # one finding per proposal
    for p in batch:
        single = check.one(p, params, CTX)
        if single.blocks:
            assert got.get(p.id) == (single.verdict, single.facts), p.id
        else:
            assert p.id not in got, (p.id, single, got[p.id])


@SETTINGS
@given(batch=proposals(6), params=unreachable_params(), shuffle=st.randoms(use_true_random=False))
def test_unreachable_debtor_paths_agree(batch: list[Proposal], params: UnreachableParams, shuffle: Any) -> None:
    _agree(UnreachableDebtor(), batch, params, shuffle)


@SETTINGS
@given(batch=proposals(6), params=counterparts_params(), shuffle=st.randoms(use_true_random=False))
def test_counterparts_paths_agree(batch: list[Proposal], params: CounterpartsParams, shuffle: Any) -> None:
    _agree(Counterparts(), batch, params, shuffle)


@SETTINGS
@given(batch=proposals(6), shuffle=st.randoms(use_true_random=False))
def test_location_contact_paths_agree(batch: list[Proposal], shuffle: Any) -> None:
    _agree(LocationContact(), batch, ONCE, shuffle)
