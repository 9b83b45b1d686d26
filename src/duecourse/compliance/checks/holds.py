"""Holds: what the debtor's status (cease request, attorney, dispute, moratorium, capacity, death, bankruptcy) stops."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, timedelta
from zoneinfo import ZoneInfo

import polars as pl
from pydantic import Field

from duecourse.compliance.checks.base import STAMP, Check, CheckContext, Finding, Params, among, blocking
from duecourse.compliance.facts import CeaseForm, Flag, Proposal, Purpose, TimeZoneName

DAY = "%Y-%m-%d"


def _allowed(purposes: Sequence[str]) -> str:
    return ", ".join(purposes) if purposes else "none"


class HoldParams(Params):
    """Purposes a contact may still have while the hold stands (e.g. the three notices of FDCPA 1692c(c)).

    Each hold check reads one status fact; its rule names the law (or house policy) and the figures. A status
    recorded with a moment takes effect from that instant (FDCPA 1692c(c): a notice by mail "shall be complete
    upon receipt"). A status the rule needs that is unknown blocks as missing facts; a request, moratorium or
    flag that is not recorded (`cease`, `breathing_space` None, no flag) is taken as none.
    """

    permitted_purposes: tuple[Purpose, ...]


class CeaseParams(HoldParams):
    forms: tuple[CeaseForm, ...] = Field(min_length=1, description="Forms of request that stop communication")


class CeaseRequest(Check):
    """After the debtor's cease request (in a form the rule names) only the permitted purposes remain."""

    kind = "cease_request"
    reads = ("debtor_cease_at", "debtor_cease_form", "moment_utc", "purpose")
    params = CeaseParams

    def one(self, proposal: Proposal, params: CeaseParams, ctx: CheckContext) -> Finding:
        cease = proposal.debtor.cease
        if cease is None:
            return Finding("pass", "no cease request is recorded")
        at = f"{cease.at.astimezone(UTC):{STAMP}}"
        if cease.form not in params.forms:
            return Finding("pass", f"the {cease.form} cease request of {at} UTC does not stop contact under this rule")
        if proposal.moment_utc < cease.at:
            return Finding("pass", f"the {cease.form} cease request takes effect at {at} UTC, after this contact")
        if proposal.purpose in params.permitted_purposes:
            return Finding("pass", f"a {proposal.purpose} contact is permitted after the cease request of {at} UTC")
        return Finding("violation", _cease(cease.form, at, proposal.purpose, params.permitted_purposes))

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: CeaseParams, ctx: CheckContext
    ) -> pl.DataFrame:
        at = pl.col("debtor_cease_at")
        stopped = (
            at.is_not_null()
            & among("debtor_cease_form", params.forms)
            & (pl.col("moment_utc") >= at)
            & ~among("purpose", params.permitted_purposes)
        )
        return blocking(
            proposals.lazy()
            .filter(stopped)
            .select(
                "proposal_id",
                verdict=pl.lit("violation"),
                facts=pl.format(
                    _cease("{}", "{}", "{}", params.permitted_purposes),
                    "debtor_cease_form",
                    at.dt.to_string(STAMP),
                    "purpose",
                ),
            )
        )


def _cease(form: str, at: str, purpose: str, permitted: Sequence[str]) -> str:
    return (
        f"the debtor's {form} cease request took effect at {at} UTC: no {purpose} contact on this debt "
        f"(permitted: {_allowed(permitted)})"
    )


class AttorneyParams(Params):
    """No figures: representation and the attorney's consent, recorded on the debtor, decide."""


class AttorneyRepresentation(Check):
    """A debtor represented by an attorney is contacted directly only if the attorney consents or fails to respond."""

    kind = "attorney_representation"
    reads = ("debtor_attorney_consents", "debtor_attorney_represented")
    params = AttorneyParams

    def one(self, proposal: Proposal, params: AttorneyParams, ctx: CheckContext) -> Finding:
        debtor = proposal.debtor
        if debtor.attorney_represented is None:
            return Finding("missing_facts", MISSING_REPRESENTED)
        if not debtor.attorney_represented:
            return Finding("pass", "the debtor is not represented by an attorney")
        if debtor.attorney_consents is None:
            return Finding("missing_facts", MISSING_CONSENT)
        if not debtor.attorney_consents:
            return Finding("violation", REPRESENTED)
        return Finding("pass", "the debtor's attorney consents to direct contact or failed to respond")

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: AttorneyParams, ctx: CheckContext
    ) -> pl.DataFrame:
        represented, consents = pl.col("debtor_attorney_represented"), pl.col("debtor_attorney_consents")
        return blocking(
            proposals.lazy()
            .filter(represented.is_null() | (represented & ~consents.fill_null(False)))
            .select(
                "proposal_id",
                verdict=pl.when(represented.is_null() | (represented & consents.is_null()))
                .then(pl.lit("missing_facts"))
                .when(represented & ~consents)
                .then(pl.lit("violation"))
                .otherwise(pl.lit("pass")),
                facts=pl.when(represented.is_null())
                .then(pl.lit(MISSING_REPRESENTED))
                .when(consents.is_null())
                .then(pl.lit(MISSING_CONSENT))
                .otherwise(pl.lit(REPRESENTED)),
            )
        )


MISSING_REPRESENTED = "whether the debtor is represented by an attorney on this debt is unknown"
MISSING_CONSENT = (
    "the debtor is represented by an attorney; whether the attorney consents or failed to respond is unknown"
)
REPRESENTED = "the debtor is represented by an attorney who has not consented to direct contact"


class DisputeParams(HoldParams):
    """Purposes still open while a timely written dispute awaits verification (e.g. sending the verification)."""


class OpenDispute(Check):
    """A written dispute made within the validation period stops collection until verification is sent.

    `debt.in_validation_period` says whether the period is running at the contact: an open written dispute
    then certainly came within it. Once the period has ended the facts cannot tell whether the dispute came
    within it, so the contact blocks as missing facts (a validation-period end date would decide it).
    """

    kind = "open_dispute"
    reads = (
        "debt_in_validation_period",
        "debtor_dispute_at",
        "debtor_dispute_open",
        "debtor_dispute_written",
        "moment_utc",
        "purpose",
    )
    params = DisputeParams

    def one(self, proposal: Proposal, params: DisputeParams, ctx: CheckContext) -> Finding:
        dispute = proposal.debtor.dispute
        if dispute is None:
            return Finding("missing_facts", "whether the debt is disputed is unknown")
        if not dispute.open:
            return Finding("pass", "no dispute of the debt is open")
        if dispute.written is False:
            return Finding("pass", "the open dispute is oral: only a written dispute stops collection")
        if dispute.at is not None and proposal.moment_utc < dispute.at:
            at = f"{dispute.at.astimezone(UTC):{STAMP}}"
            return Finding("pass", f"the dispute arrives at {at} UTC, after this contact")
        if proposal.purpose in params.permitted_purposes:
            return Finding("pass", f"a {proposal.purpose} contact is permitted while the dispute awaits verification")
        if dispute.written is None:
            return Finding("missing_facts", MISSING_FORM)
        in_period = proposal.debt.in_validation_period
        if in_period is None:
            return Finding("missing_facts", MISSING_PERIOD)
        if not in_period:
            return Finding("missing_facts", PERIOD_ENDED)
        return Finding("violation", _disputed(proposal.purpose, params.permitted_purposes))

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: DisputeParams, ctx: CheckContext
    ) -> pl.DataFrame:
        written, at, in_period = (
            pl.col("debtor_dispute_written"),
            pl.col("debtor_dispute_at"),
            pl.col("debt_in_validation_period"),
        )
        unknown = pl.col("debtor_dispute_open").is_null()
        stops = (
            pl.col("debtor_dispute_open").fill_null(False)
            & written.fill_null(True)
            & ~(at > pl.col("moment_utc")).fill_null(False)
            & ~among("purpose", params.permitted_purposes)
        )
        return blocking(
            proposals.lazy()
            .filter(unknown | stops)
            .select(
                "proposal_id",
                verdict=pl.when(unknown | written.is_null() | in_period.is_null() | ~in_period)
                .then(pl.lit("missing_facts"))
                .otherwise(pl.lit("violation")),
                facts=pl.when(unknown)
                .then(pl.lit("whether the debt is disputed is unknown"))
                .when(written.is_null())
                .then(pl.lit(MISSING_FORM))
                .when(in_period.is_null())
                .then(pl.lit(MISSING_PERIOD))
                .when(~in_period)
                .then(pl.lit(PERIOD_ENDED))
                .otherwise(pl.format(_disputed("{}", params.permitted_purposes), "purpose")),
            )
        )


MISSING_FORM = "a dispute of the debt is open but whether it was made in writing is unknown"
MISSING_PERIOD = "a written dispute is open but whether the validation period is running is unknown"
PERIOD_ENDED = (
    "a written dispute is open and the validation period has ended: whether the dispute came within it is unknown"
)


def _disputed(purpose: str, permitted: Sequence[str]) -> str:
    return (
        f"a written dispute made within the validation period awaits verification: no {purpose} contact "
        f"(permitted: {_allowed(permitted)})"
    )


class BreathingSpaceParams(HoldParams):
    standard_days: int = Field(ge=1, description="Length of a standard moratorium, its first day counted as day 1")
    crisis_extra_days: int = Field(ge=0, description="Days a mental health crisis moratorium runs after treatment")
    time_zone: TimeZoneName = Field(description="Where the moratorium's dates are reckoned")


class BreathingSpace(Check):
    """No contact about enforcing a moratorium debt while a Breathing Space moratorium runs.

    A standard moratorium runs from `start` to its recorded `end` (the last day), or, with no end recorded,
    for `standard_days` days counting `start` as day 1. A mental health crisis moratorium runs from `start`
    until `crisis_extra_days` days after `end`, the day the crisis treatment ended; with no end recorded the
    treatment continues and so does the moratorium.
    """

    kind = "breathing_space"
    reads = (
        "debtor_breathing_space_end",
        "debtor_breathing_space_kind",
        "debtor_breathing_space_start",
        "moment_utc",
        "purpose",
    )
    params = BreathingSpaceParams

    def one(self, proposal: Proposal, params: BreathingSpaceParams, ctx: CheckContext) -> Finding:
        space = proposal.debtor.breathing_space
        if space is None:
            return Finding("pass", "no Breathing Space moratorium is recorded")
        day = proposal.moment.astimezone(ZoneInfo(params.time_zone)).date()
        last: date | None
        if space.kind == "standard":
            last = space.end if space.end is not None else space.start + timedelta(days=params.standard_days - 1)
        else:
            last = None if space.end is None else space.end + timedelta(days=params.crisis_extra_days)
        if day < space.start:
            return Finding("pass", f"{day.isoformat()} is before the moratorium starts on {space.start.isoformat()}")
        if last is not None and day > last:
            return Finding("pass", f"{day.isoformat()} is after the moratorium's last day, {last.isoformat()}")
        if proposal.purpose in params.permitted_purposes:
            return Finding("pass", f"a {proposal.purpose} contact is permitted during the moratorium")
        until = last.isoformat() if last is not None else _open_end(params)
        return Finding(
            "violation",
            _moratorium(day.isoformat(), space.kind, space.start.isoformat(), until, proposal.purpose, params),
        )

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: BreathingSpaceParams, ctx: CheckContext
    ) -> pl.DataFrame:
        start, end = pl.col("debtor_breathing_space_start"), pl.col("debtor_breathing_space_end")
        day = pl.col("moment_utc").dt.convert_time_zone(params.time_zone).dt.date()
        last = (
            pl.when(pl.col("debtor_breathing_space_kind") == "standard")
            .then(pl.coalesce(end, start.dt.offset_by(f"{params.standard_days - 1}d")))
            .otherwise(end.dt.offset_by(f"{params.crisis_extra_days}d"))
        )
        frame = proposals.lazy().filter(start.is_not_null()).with_columns(day=day, last=last)
        inside = (
            (pl.col("day") >= start)
            & (pl.col("last").is_null() | (pl.col("day") <= pl.col("last")))
            & ~among("purpose", params.permitted_purposes)
        )
        return blocking(
            frame.filter(inside).select(
                "proposal_id",
                verdict=pl.lit("violation"),
                facts=pl.format(
                    _moratorium("{}", "{}", "{}", "{}", "{}", params),
                    pl.col("day").dt.to_string(DAY),
                    "debtor_breathing_space_kind",
                    start.dt.to_string(DAY),
                    pl.col("last").dt.to_string(DAY).fill_null(_open_end(params)),
                    "purpose",
                ),
            )
        )


def _open_end(params: BreathingSpaceParams) -> str:
    return f"{params.crisis_extra_days} days after the crisis treatment ends"


def _moratorium(day: str, kind: str, start: str, until: str, purpose: str, params: BreathingSpaceParams) -> str:
    return (
        f"{day} falls in the debtor's {kind} Breathing Space moratorium ({start} to {until}): "
        f"no {purpose} contact (permitted: {_allowed(params.permitted_purposes)})"
    )


class FlagParams(HoldParams):
    flag: Flag = Field(description="The debtor flag that puts the hold in place")


class FlagHold(Check):
    """While the debtor carries the rule's flag (mental capacity, deceased, bankrupt) only permitted purposes remain."""

    kind = "flag_hold"
    reads = ("debtor_flags", "purpose")
    params = FlagParams

    def one(self, proposal: Proposal, params: FlagParams, ctx: CheckContext) -> Finding:
        if params.flag not in proposal.debtor.flags:
            return Finding("pass", f"the debtor is not flagged {params.flag}")
        if proposal.purpose in params.permitted_purposes:
            return Finding(
                "pass", f"a {proposal.purpose} contact is permitted while the debtor is flagged {params.flag}"
            )
        return Finding("violation", _flagged(proposal.purpose, params))

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: FlagParams, ctx: CheckContext
    ) -> pl.DataFrame:
        held = pl.col("debtor_flags").list.contains(pl.lit(params.flag)) & ~among("purpose", params.permitted_purposes)
        return blocking(
            proposals.lazy()
            .filter(held)
            .select("proposal_id", verdict=pl.lit("violation"), facts=pl.format(_flagged("{}", params), "purpose"))
        )


def _flagged(purpose: str, params: FlagParams) -> str:
    return (
        f"the debtor is flagged {params.flag}: no {purpose} contact (permitted: {_allowed(params.permitted_purposes)})"
    )
