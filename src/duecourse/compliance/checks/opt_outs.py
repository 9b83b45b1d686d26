"""Opt-outs: a debtor who asked not to be reached through a channel or an address is not reached through it."""

from __future__ import annotations

from datetime import UTC

import polars as pl
from pydantic import Field

from duecourse.compliance.checks.base import STAMP, Check, CheckContext, Finding, Params, among, blocking
from duecourse.compliance.facts import UTC_TIME, Channel, Proposal


class OptOutParams(Params):
    confirm_channels: tuple[Channel, ...] = Field(description="Channels on which one opt-out confirmation may go")
    reply_once: bool = Field(description="One reply may answer the debtor's own message through the channel")


class MediumOptOut(Check):
    """No contact through a channel or address the debtor opted out of, but one message answering theirs.

    Reg F 1006.14(h)(1) (and CONC 7.9.4R's "how they may be contacted") bars the medium or address the person
    asked the collector not to use; the exceptions are one message through it after the person's own message
    through it: a reply to a person-initiated contact (1006.14(h)(2)(ii): "may respond once through the same
    medium") and, on electronic media, a confirmation of the opt-out (1006.14(h)(2)(i)). The history records no
    purposes and no opt-out times, so "once" is read strictly from it: the exception holds only when the debtor's
    latest message came through the same channel and address and no collector message went back through them since.
    Both exceptions share that one message.
    """

    kind = "medium_opt_out"
    reads = (
        "address",
        "channel",
        "counterpart",
        "debtor_opted_out_addresses",
        "debtor_opted_out_channels",
        "moment_utc",
        "purpose",
    )
    params = OptOutParams

    def one(self, proposal: Proposal, params: OptOutParams, ctx: CheckContext) -> Finding:
        debtor, channel, address = proposal.debtor, proposal.channel, proposal.address
        if address is not None and address in debtor.opted_out_addresses:
            what = f"the address {address}"
        elif channel in debtor.opted_out_channels:
            what = f"the {channel} channel"
        else:
            return Finding("pass", f"the debtor has not opted out of the {channel} channel or this address")
        if not _excepted(proposal.purpose, channel, params):
            return Finding("violation", _opted_out(what, proposal.purpose))
        ours = [
            e
            for e in proposal.history
            if e.channel == channel
            and e.address is not None
            and e.address == address
            and e.counterpart == "debtor"
            and e.at <= proposal.moment
        ]
        theirs = [e.at for e in ours if e.initiated_by == "debtor"]
        if not theirs:
            return Finding("violation", _unprompted(what, proposal.purpose))
        last = max(theirs)
        since = f"{last.astimezone(UTC):{STAMP}}"
        if any(e.initiated_by == "collector" and e.at > last for e in ours):
            return Finding("violation", _answered(what, since))
        return Finding("pass", f"one {proposal.purpose} through {what} answers the debtor's message of {since} UTC")

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: OptOutParams, ctx: CheckContext
    ) -> pl.DataFrame:
        channel, address = pl.col("channel"), pl.col("address")
        by_address = address.is_not_null() & pl.col("debtor_opted_out_addresses").list.contains(address)
        by_channel = pl.col("debtor_opted_out_channels").list.contains(channel)
        what = (
            pl.when(by_address)
            .then(pl.format("the address {}", address))
            .otherwise(pl.format("the {} channel", channel))
        )
        excepted = ((pl.col("purpose") == "confirm_opt_out") & among("channel", params.confirm_channels)) | (
            (pl.col("purpose") == "reply_to_debtor") & pl.lit(params.reply_once)
        )
        # Collected once: usually few proposals touch an opt-out, and the history is read only for those
        # asking for the one permitted message.
        out = (
            proposals.lazy()
            .filter(by_address | by_channel)
            .select("proposal_id", "purpose", "channel", "address", "moment_utc", what=what, excepted=excepted)
            .collect()
        )
        asked = out.filter("excepted")
        # A membership test reads the history faster than a join; the join then pairs the few events left.
        events = (
            history.lazy()
            .filter(pl.col("proposal_id").is_in(asked.get_column("proposal_id").implode()))
            .join(asked.lazy().select("proposal_id", "channel", "address", "moment_utc"), on="proposal_id", suffix="_p")
            .filter(
                (pl.col("channel") == pl.col("channel_p"))
                & (pl.col("address") == pl.col("address_p"))
                & (pl.col("counterpart") == "debtor")
                & (pl.col("at") <= pl.col("moment_utc"))
            )
            .collect()
        )
        last = events.filter(pl.col("initiated_by") == "debtor").group_by("proposal_id").agg(last=pl.col("at").max())
        answered = (
            events.join(last, on="proposal_id")
            .filter((pl.col("initiated_by") == "collector") & (pl.col("at") > pl.col("last")))
            .select("proposal_id")
            .unique()
            .with_columns(answered=pl.lit(True))
        )
        frame = (
            out.join(last, on="proposal_id", how="left")
            .join(answered, on="proposal_id", how="left")
            .with_columns(pl.col("last").cast(UTC_TIME), pl.col("answered").fill_null(False))
        )
        since = pl.col("last").dt.to_string(STAMP)
        return blocking(
            frame.lazy().select(
                "proposal_id",
                verdict=pl.when(~pl.col("excepted") | pl.col("last").is_null() | pl.col("answered"))
                .then(pl.lit("violation"))
                .otherwise(pl.lit("pass")),
                facts=pl.when(~pl.col("excepted"))
                .then(pl.format(_opted_out("{}", "{}"), "what", "purpose"))
                .when(pl.col("last").is_null())
                .then(pl.format(_unprompted("{}", "{}"), "what", "purpose"))
                .otherwise(pl.format(_answered("{}", "{}"), "what", since)),
            )
        )


def _excepted(purpose: str, channel: str, params: OptOutParams) -> bool:
    return (purpose == "confirm_opt_out" and channel in params.confirm_channels) or (
        purpose == "reply_to_debtor" and params.reply_once
    )


def _opted_out(what: str, purpose: str) -> str:
    return f"the debtor opted out of {what}: no {purpose} contact through it"


def _unprompted(what: str, purpose: str) -> str:
    return f"the debtor opted out of {what} and sent no message through it that a {purpose} could answer"


def _answered(what: str, since: str) -> str:
    return f"the debtor opted out of {what} and the one message allowed after theirs of {since} UTC was already sent"


class SocialMediaParams(Params):
    """No figures: the ban is on any social-media contact others can see."""


class SocialMediaPrivacy(Check):
    """Reg F 1006.22(f)(4): no social-media contact viewable by the public or the person's contacts.

    The facts do not record whether a social-media message is private, so a social-media contact cannot be
    shown lawful and blocks as missing facts.
    """

    kind = "social_media_privacy"
    reads = ("channel",)
    params = SocialMediaParams

    def one(self, proposal: Proposal, params: SocialMediaParams, ctx: CheckContext) -> Finding:
        if proposal.channel != "social_media":
            return Finding("pass", f"a {proposal.channel} contact is not made on social media")
        return Finding("missing_facts", PRIVACY_UNKNOWN)

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: SocialMediaParams, ctx: CheckContext
    ) -> pl.DataFrame:
        return blocking(
            proposals.lazy()
            .filter(pl.col("channel") == "social_media")
            .select("proposal_id", verdict=pl.lit("missing_facts"), facts=pl.lit(PRIVACY_UNKNOWN))
        )


PRIVACY_UNKNOWN = (
    "whether the social-media message is private (not viewable by the public or the person's contacts) is not recorded"
)
