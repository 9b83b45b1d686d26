"""The two engine paths agree on random proposals over the whole shipped rulebook.

The single path (`decide`, one proposal at a time) and the vectorised path (`decide_batch`, a frame of
proposals with their history) must give the same decision, the same blocking findings (rule and
verdict) and the same next allowed moment, for proposals that vary every fact a rule reads.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from duecourse.compliance.calendar import HolidayCalendar
from duecourse.compliance.checks.base import CheckContext
from duecourse.compliance.engine import FEW, decide, decide_batch, decide_frame
from duecourse.compliance.facts import HistoryEvent, Proposal, from_frames, to_frames
from duecourse.compliance.rulebook import Rulebook, load_rulebook

ROOT = Path(__file__).resolve().parents[3]
BOOK = load_rulebook(ROOT / "rules")
CTX = CheckContext(calendar=HolidayCalendar.load(ROOT / "rules" / "calendars"))

ZONES = ["Asia/Shanghai", "America/New_York", "America/Los_Angeles", "Europe/London", "Asia/Urumqi"]
CHANNELS = ["call", "sms", "email", "letter", "app_push", "visit", "social_media"]
COUNTERPARTS = ["debtor", "spouse", "family", "emergency_contact", "employer", "guarantor", "attorney", "other"]
PURPOSES = ["collect", "locate", "notify", "confirm_opt_out", "reply_to_debtor"]
OUTCOMES = ["conversation", "connected", "no_answer", "voicemail", "busy", "invalid_number", "delivered", "failed"]
FLAGS = ["elderly", "disabled", "seriously_ill", "mental_capacity", "deceased", "bankrupt"]
TEXTS = [
    "您好，这里是示例消费金融有限公司。您应还款 ¥1,234.56，已于 2026年1月17日到期。请通过官方账户 ACC-1 还款。",
    "This is Example Recovery LLC, a debt collector, attempting to collect a debt. Balance $1,234.56 due "
    "January 17, 2026. Pay only at ACC-1. Reply STOP to opt out.",
    "再不还钱就通知你单位，上征信黑名单，警察会来抓你。",
    "Pay now or you will be arrested and we will tell your employer.",
    "Please call us back.",
]
ADDRESSES = ["+8613800138000", "+8613900139000", "+12125550100", "a@example.com"]


def _aware(day: datetime, zone: str) -> str:
    return day.replace(tzinfo=ZoneInfo(zone)).isoformat()


@st.composite
def proposals(draw: st.DrawFn, n: int) -> list[Proposal]:
    out = []
    for i in range(n):
        country = draw(st.sampled_from(["CN", "US", "UK", "CN", "US", "FR"]))
        zone = {"CN": "Asia/Shanghai", "US": "America/New_York", "UK": "Europe/London"}.get(country, "Europe/Paris")
        local = datetime(2026, 1, 1) + timedelta(
            days=draw(st.integers(-3000, 700)), minutes=draw(st.integers(0, 24 * 60 - 1))
        )
        moment = local.replace(tzinfo=ZoneInfo(zone))
        channel = draw(st.sampled_from(CHANNELS))
        doc: dict[str, Any] = {
            "id": f"p{i}",
            "jurisdiction": {"country": country, "region": draw(st.sampled_from([None, "MA", "NY", "ENG"]))},
            "moment": moment.isoformat(),
            "actor": {"kind": draw(st.sampled_from(["lender", "agency", "debt_collector"])), "name": "Example"},
            "channel": channel,
            "counterpart": draw(st.sampled_from(["debtor", "debtor", *COUNTERPARTS])),
            "purpose": draw(st.sampled_from(["collect", "collect", *PURPOSES])),
            "address": draw(st.sampled_from([None, *ADDRESSES])),
            "place": draw(st.sampled_from([None, "home", "workplace", "public", "other"])),
            "message": draw(
                st.one_of(st.none(), st.builds(lambda t: {"text": t, "language": "zh"}, st.sampled_from(TEXTS)))
            ),
            "debtor": {
                "id": f"b{draw(st.integers(0, 3))}",
                "time_zones": draw(st.lists(st.sampled_from(ZONES), min_size=0, max_size=3, unique=True)),
                "birth_date": draw(st.one_of(st.none(), st.dates(date(1930, 1, 1), date(2005, 12, 31)))),
                "flags": draw(st.lists(st.sampled_from(FLAGS), max_size=2, unique=True)),
                "vulnerability_approved": draw(st.sampled_from([None, True, False])),
                "attorney_represented": draw(st.sampled_from([None, False, False, True])),
                "attorney_consents": draw(st.sampled_from([None, True, False])),
                "dispute": draw(
                    st.sampled_from(
                        [None, {"open": False}, {"open": True, "written": True}, {"open": True, "written": False}]
                    )
                ),
                "opted_out_channels": draw(st.lists(st.sampled_from(CHANNELS), max_size=2, unique=True)),
                "agreed_windows": draw(st.sampled_from([[], [{"start": "21:00", "end": "23:30"}]])),
                "inconvenient_windows": draw(st.sampled_from([[], [{"start": "09:00", "end": "12:00"}]])),
                "employer_prohibits_contact": draw(st.sampled_from([None, False, True])),
                "reachable": draw(st.sampled_from([None, True, False])),
                "unreachable_since": draw(
                    st.sampled_from(
                        [None, (moment - timedelta(days=2)).isoformat(), (moment - timedelta(hours=3)).isoformat()]
                    )
                ),
                "breathing_space": draw(
                    st.sampled_from([None, {"start": (moment - timedelta(days=30)).date().isoformat()}])
                ),
                "consent_to_call_at": draw(st.sampled_from([None, (moment - timedelta(days=2)).isoformat()])),
            },
            "debt": {
                "id": "d1",
                "days_past_due": draw(st.integers(0, 400)),
                "balance": draw(st.integers(0, 5_000_000)),
                "currency": "CNY",
                "due_date": "2026-01-17",
                "time_barred": draw(st.sampled_from([None, False, True])),
                "in_validation_period": draw(st.sampled_from([None, False, True])),
                "fees_claimed": draw(st.sampled_from([0, 0, 500])),
                "fees_allowed": draw(st.sampled_from([None, 0, 500])),
                "payment_account": draw(st.sampled_from([None, "ACC-1", "ACC-2"])),
                "official_accounts": ["ACC-1"],
            },
            "history": [
                {
                    "at": (moment - timedelta(minutes=draw(st.integers(1, 12 * 24 * 60)))).astimezone(UTC).isoformat(),
                    "channel": draw(st.sampled_from(["call", "call", "sms", "visit"])),
                    "counterpart": draw(st.sampled_from(["debtor", "debtor", "spouse"])),
                    "address": draw(st.sampled_from(ADDRESSES[:2])),
                    "outcome": draw(st.sampled_from(OUTCOMES)),
                    "initiated_by": draw(st.sampled_from(["collector", "collector", "debtor"])),
                    "debts": ["d1"],
                    "actor": {"kind": draw(st.sampled_from(["lender", "agency"])), "name": "Example"},
                }
                for _ in range(draw(st.integers(0, 10)))
            ],
        }
        if channel == "visit" and draw(st.booleans()):
            doc["visit"] = {
                "staff": [
                    {
                        "name": f"S{k}",
                        "badge": f"B{k}",
                        "certified_until": draw(st.sampled_from([None, "2030-01-01", "2020-01-01"])),
                    }
                    for k in range(draw(st.integers(0, 3)))
                ],
                "identification_shown": draw(st.sampled_from([None, True, False])),
                "enters_premises": draw(st.sampled_from([None, True, False])),
                "consent_to_enter": draw(st.sampled_from([None, True, False])),
                "recording": draw(st.sampled_from([None, True, False])),
                "notice_delivered_at": draw(
                    st.sampled_from(
                        [None, (moment - timedelta(days=2)).isoformat(), (moment - timedelta(days=10)).isoformat()]
                    )
                ),
            }
        if not doc["debtor"]["time_zones"]:
            doc["debtor"]["time_zones"] = [zone] if draw(st.booleans()) else []
        out.append(Proposal.model_validate(doc))
    return out


def _blocking(outcomes: list[tuple[str, str]]) -> set[tuple[str, str]]:
    return set(outcomes)


def _random_proposals(examples: int) -> Any:
    # No shrinking: a failure prints the whole batch, and shrinking several full proposals takes minutes.
    return settings(
        max_examples=examples,
        deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@_random_proposals(40)
@given(batch=proposals(8))
def test_single_and_batch_paths_agree(batch: list[Proposal]) -> None:
    _agree(BOOK, batch)


@_random_proposals(40)
@given(batch=proposals(4))
def test_frames_turn_back_into_the_proposals_they_came_from(batch: list[Proposal]) -> None:
    frame, history = to_frames(batch)
    if frame.get_column("visit").any():  # the frame keeps a visit team's counts, not its members
        with pytest.raises(ValueError, match="visit's staff"):
            from_frames(frame, history)
        batch = [p for p in batch if p.visit is None]
        frame, history = to_frames(batch)
    rebuilt = from_frames(frame, history)
    # Equal as values (other moments are instants: the frame keeps them in UTC); the proposed moment keeps its
    # own UTC offset too, which picks the local day a rule version is in force on.
    assert [p.model_dump() for p in rebuilt] == [p.model_dump() for p in batch]
    assert [p.moment.isoformat() for p in rebuilt] == [p.moment.isoformat() for p in batch]


# The live path of the gate: few proposals are decided one by one; the answer is decide_batch's, row for row.
@_random_proposals(25)
@given(batch=proposals(3))
def test_a_few_proposals_decided_one_by_one_match_the_batch(batch: list[Proposal]) -> None:
    frame, history = to_frames([p for p in batch if p.visit is None])
    assert frame.height <= FEW
    few = decide_frame(BOOK, frame, history, CTX)
    batched = decide_batch(BOOK, frame, history, CTX)
    assert few.get_column("proposal_id").to_list() == batched.get_column("proposal_id").to_list()
    for one, many in zip(few.iter_rows(named=True), batched.iter_rows(named=True), strict=True):
        assert one["decision"] == many["decision"], (one, many)
        assert one["time_only"] == many["time_only"], (one, many)
        assert one["next_allowed_at"] == many["next_allowed_at"], (one, many)
        assert sorted((v["rule"], v["verdict"]) for v in one["violations"]) == sorted(
            (v["rule"], v["verdict"]) for v in many["violations"]
        )


def _agree(book: Rulebook, batch: list[Proposal]) -> None:
    frame, history = to_frames(batch)
    decided = {row["proposal_id"]: row for row in decide_batch(book, frame, history, CTX).iter_rows(named=True)}
    for p in batch:
        single = decide(book, p, CTX)
        row = decided[p.id]
        assert row["decision"] == single.decision, (p.id, [o.to_json() for o in single.violations], row["violations"])
        assert {(v["rule"], v["verdict"]) for v in row["violations"]} == {
            (o.rule_id, o.verdict) for o in single.violations
        }
        expected = None if single.next_allowed_at is None else single.next_allowed_at.astimezone(UTC)
        got = row["next_allowed_at"]
        assert got == expected, (p.id, got, expected)


def _outside_the_packs(pid: str, country: str) -> Proposal:
    return Proposal.model_validate(
        {
            "id": pid,
            "jurisdiction": {"country": country},
            "moment": "2026-03-03T10:00:00+00:00",
            "actor": {"kind": "lender", "name": "L"},
            "channel": "call",
            "counterpart": "debtor",
            "purpose": "collect",
            "debtor": {"id": "b", "time_zones": ["Europe/London"]},
            "debt": {"id": "d", "days_past_due": 10, "balance": 100, "currency": "GBP"},
        }
    )


HISTORY_EVENT = HistoryEvent.model_validate(
    {
        "at": "2026-03-02T10:00:00+00:00",
        "channel": "call",
        "counterpart": "debtor",
        "outcome": "no_answer",
        "actor": {"kind": "lender", "name": "L"},
    }
)


@pytest.mark.parametrize("country", ["CN", "US", "UK"])
def test_unknown_jurisdiction_is_blocked_with_a_reason(country: str) -> None:
    base = _outside_the_packs("x", "ZZ")
    verdict = decide(BOOK, base, CTX)
    assert verdict.decision == "block"
    assert [o.rule_id for o in verdict.violations] == ["ENGINE.NO_PACK"]
    assert "ZZ" in verdict.violations[0].facts
    _agree(
        BOOK,
        [
            base,
            base.model_copy(
                update={"id": "y", "jurisdiction": base.jurisdiction.model_copy(update={"country": country})}
            ),
        ],
    )


def test_a_frame_with_no_decidable_proposal_still_locates_its_history() -> None:
    """Every proposal outside the packs and some history: all are blocked (the history locates no proposal)."""
    lone = _outside_the_packs("z", "FR").model_copy(update={"history": (HISTORY_EVENT,)})
    frame, history = to_frames([lone])
    decided = decide_batch(BOOK, frame, history, CTX).row(0, named=True)
    assert decided["decision"] == "block"
    assert [v["rule"] for v in decided["violations"]] == ["ENGINE.NO_PACK"]
    _agree(BOOK, [lone])
