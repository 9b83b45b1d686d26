"""Opt-outs: both paths agree on random opt-outs and histories, and the one permitted message goes only once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import hypothesis.strategies as st
from hypothesis import given, settings

from duecourse.compliance.checks.opt_outs import MediumOptOut, OptOutParams, SocialMediaParams, SocialMediaPrivacy
from duecourse.compliance.facts import Proposal
from tests.unit.compliance.status_helpers import (
    CHANNELS,
    CTX,
    PURPOSES,
    assert_paths_agree,
    iso,
    moments,
    proposal,
    subsets,
)

ADDRESSES = ("+12125550100", "+12125550111", "d@example.com")
SETTINGS = settings(max_examples=60, deadline=None)
US_PARAMS = OptOutParams(confirm_channels=("sms", "email", "app_push", "social_media"), reply_once=True)
AGENCY = {"kind": "agency", "name": "Example Recovery LLC"}


def event(
    moment: datetime, channel: str, address: str | None, initiated_by: str, counterpart: str = "debtor"
) -> dict[str, Any]:
    return {
        "at": iso(moment),
        "channel": channel,
        "counterpart": counterpart,
        "address": address,
        "outcome": "delivered",
        "initiated_by": initiated_by,
        "actor": AGENCY,
    }


@st.composite
def opt_out_batch(draw: st.DrawFn) -> list[Proposal]:
    out = []
    for i in range(draw(st.integers(1, 8))):
        moment = draw(moments())
        history = [
            event(
                moment + timedelta(minutes=draw(st.integers(-4000, 60))),
                draw(st.sampled_from(["call", "sms", "email"])),
                draw(st.sampled_from([None, *ADDRESSES])),
                draw(st.sampled_from(["collector", "debtor", "counterpart"])),
                draw(st.sampled_from(["debtor", "debtor", "family"])),
            )
            for _ in range(draw(st.integers(0, 6)))
        ]
        changes: dict[str, Any] = {
            "moment": iso(moment),
            "channel": draw(st.sampled_from(["call", "sms", "email", "letter"])),
            "address": draw(st.sampled_from([None, *ADDRESSES])),
            "purpose": draw(st.sampled_from(PURPOSES)),
            "debtor.opted_out_channels": list(draw(subsets(["call", "sms", "email"]))),
            "debtor.opted_out_addresses": list(draw(subsets(ADDRESSES))),
            "history": history,
        }
        out.append(proposal("US", f"p{i}", changes))
    return out


@SETTINGS
@given(batch=opt_out_batch(), confirm=subsets(CHANNELS), reply_once=st.booleans())
def test_medium_opt_out_paths_agree(batch: list[Proposal], confirm: tuple[str, ...], reply_once: bool) -> None:
    assert_paths_agree(MediumOptOut(), OptOutParams(confirm_channels=confirm, reply_once=reply_once), batch)


@SETTINGS
@given(batch=opt_out_batch())
def test_without_opt_outs_nothing_is_blocked(batch: list[Proposal]) -> None:
    clear = [
        p.model_copy(
            update={"debtor": p.debtor.model_copy(update={"opted_out_channels": (), "opted_out_addresses": ()})}
        )
        for p in batch
    ]
    assert assert_paths_agree(MediumOptOut(), US_PARAMS, clear) == 0


@SETTINGS
@given(
    moment=moments(),
    minutes=st.integers(1, 3000),
    channel=st.sampled_from(["call", "sms", "email"]),
    purpose=st.sampled_from(["confirm_opt_out", "reply_to_debtor"]),
)
def test_one_message_answers_the_debtors_and_a_second_is_blocked(
    moment: datetime, minutes: int, channel: str, purpose: str
) -> None:
    address = "d@example.com" if channel == "email" else "+12125550100"
    theirs = event(moment - timedelta(minutes=minutes), channel, address, "debtor")
    ours = event(moment, channel, address, "collector")
    changes = {"channel": channel, "address": address, "purpose": purpose, "debtor.opted_out_channels": [channel]}
    first = proposal("US", "first", {**changes, "moment": iso(moment), "history": [theirs]})
    later = iso(moment + timedelta(minutes=1))
    second = proposal("US", "second", {**changes, "moment": later, "history": [theirs, ours]})
    allowed = not (purpose == "confirm_opt_out" and channel == "call")  # a call is no electronic confirmation
    assert MediumOptOut().one(first, US_PARAMS, CTX).blocks is not allowed
    assert MediumOptOut().one(second, US_PARAMS, CTX).blocks
    assert_paths_agree(MediumOptOut(), US_PARAMS, [first, second])


@SETTINGS
@given(st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=8))
def test_every_social_media_contact_and_nothing_else_blocks(channels: list[str]) -> None:
    batch = [proposal("US", f"p{i}", {"channel": c}) for i, c in enumerate(channels)]
    assert assert_paths_agree(SocialMediaPrivacy(), SocialMediaParams(), batch) == channels.count("social_media")
