"""Door visits: who goes, what they show, whether they enter, and whether a visit was warranted at all."""

from __future__ import annotations

from abc import abstractmethod
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
from pydantic import Field, StrictInt

from duecourse.compliance.checks.base import Check, CheckContext, Finding, Params, Verdict, findings
from duecourse.compliance.facts import PROPOSALS, Outcome, Place, Proposal, Visit

NO_VISIT_FACTS = "a door visit is proposed without its visit facts (staff, identification, entry, recording, notice)"
STAMP = "%Y-%m-%d %H:%M UTC"
# A condition of the batch path: (rows it holds for, verdict, sentence on the facts). The first that holds decides.
Condition = tuple[pl.Expr, Verdict, pl.Expr]


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime(STAMP)


class VisitCheck(Check):
    """A condition on a door visit: other channels are not concerned; a visit without its facts blocks."""

    reads = (
        *(name for name in PROPOSALS.names() if name.startswith("visit")),
        "channel",
        "counterpart",
        "place",
        "moment_utc",
        "moment_local_date",
        "debt_days_past_due",
        "debt_balance",
        "debt_currency",
    )

    def one(self, proposal: Proposal, params: Any, ctx: CheckContext) -> Finding:
        if proposal.channel != "visit":
            return Finding("not_applicable", f"a {proposal.channel} is not a door visit")
        if proposal.visit is None:
            return Finding("missing_facts", NO_VISIT_FACTS)
        return self.visit(proposal, proposal.visit, params)

    @abstractmethod
    def visit(self, proposal: Proposal, visit: Visit, params: Any) -> Finding:
        """The verdict for a visit whose facts were given."""

    def batch(self, proposals: pl.DataFrame, history: pl.DataFrame, params: Any, ctx: CheckContext) -> pl.DataFrame:
        visits = proposals.filter(pl.col("channel") == "visit")
        frame = self.prepare(visits, history, params)
        verdict: pl.Expr = pl.lit("pass")
        facts: pl.Expr = pl.lit("")
        # Built from the last condition outwards, so the first that holds decides (a null condition does not hold).
        first: Condition = (~pl.col("visit"), "missing_facts", pl.lit(NO_VISIT_FACTS))
        for holds, outcome, sentence in reversed([first, *self.conditions(params)]):
            verdict = pl.when(holds).then(pl.lit(outcome)).otherwise(verdict)
            facts = pl.when(holds).then(sentence).otherwise(facts)
        return findings(frame.select("proposal_id", verdict=verdict, facts=facts))

    def prepare(self, visits: pl.DataFrame, history: pl.DataFrame, params: Any) -> pl.DataFrame:
        """The visit rows with any columns `conditions` needs (from history, parameters)."""
        return visits

    @abstractmethod
    def conditions(self, params: Any) -> list[Condition]:
        """The blocking conditions of the batch path, in the order `visit` tests them."""


# --- team ---------------------------------------------------------------------------------------------


class TeamSizeParams(Params):
    min_staff: int = Field(ge=1)


class VisitTeamSize(VisitCheck):
    kind = "visit_team_size"
    params = TeamSizeParams

    def visit(self, proposal: Proposal, visit: Visit, params: TeamSizeParams) -> Finding:
        n = len(visit.staff)
        if n < params.min_staff:
            return Finding("violation", f"{n} collector(s) on the visit, fewer than {params.min_staff}")
        return Finding("pass", f"{n} collector(s) on the visit, at least {params.min_staff}")

    def conditions(self, params: TeamSizeParams) -> list[Condition]:
        n = pl.col("visit_staff_count")
        return [
            (
                n < params.min_staff,
                "violation",
                pl.format("{} collector(s) on the visit, fewer than {}", n, pl.lit(params.min_staff)),
            )
        ]


class CertifiedParams(Params):
    """No parameters: every visitor must hold a certification valid on the day of the visit."""


class VisitCertifiedStaff(VisitCheck):
    """Every visitor certified on the visit's local day (as the frame counts `visit_certified_count`)."""

    kind = "visit_certified_staff"
    params = CertifiedParams

    def visit(self, proposal: Proposal, visit: Visit, params: CertifiedParams) -> Finding:
        day = proposal.moment.date()
        if not visit.staff:
            return Finding("missing_facts", "no visiting staff are named, so their certification cannot be checked")
        lapsed = sum(1 for s in visit.staff if s.certified_until is None or s.certified_until < day)
        if lapsed:
            return Finding("violation", _uncertified(lapsed, len(visit.staff), day))
        return Finding("pass", f"all {len(visit.staff)} visiting staff are certified on {day.isoformat()}")

    def conditions(self, params: CertifiedParams) -> list[Condition]:
        n, certified = pl.col("visit_staff_count"), pl.col("visit_certified_count")
        return [
            (
                n == 0,
                "missing_facts",
                pl.lit("no visiting staff are named, so their certification cannot be checked"),
            ),
            (
                certified < n,
                "violation",
                pl.format(
                    "{} of {} visiting staff hold no collection certification valid on {}",
                    n - certified,
                    n,
                    pl.col("moment_local_date").dt.to_string("%Y-%m-%d"),
                ),
            ),
        ]


def _uncertified(lapsed: int, n: int, day: date) -> str:
    return f"{lapsed} of {n} visiting staff hold no collection certification valid on {day.isoformat()}"


# --- conduct at the door --------------------------------------------------------------------------------


class NoParams(Params):
    """No parameters: the rule is the requirement itself."""


class _RequiredVisitFact(VisitCheck):
    """A yes/no fact of the visit that must be yes; unknown blocks as missing facts."""

    params = NoParams
    done: str  # sentence when it holds
    not_done: str  # sentence when it does not

    @property
    @abstractmethod
    def fact(self) -> str:
        """The `Visit` attribute; its frame column is `visit_<fact>`."""

    def visit(self, proposal: Proposal, visit: Visit, params: NoParams) -> Finding:
        value = getattr(visit, self.fact)
        if value is None:
            return Finding("missing_facts", f"whether {self.done} is unknown")
        return Finding("pass", self.done) if value else Finding("violation", self.not_done)

    def conditions(self, params: NoParams) -> list[Condition]:
        value = pl.col(f"visit_{self.fact}")
        return [
            (value.is_null(), "missing_facts", pl.lit(f"whether {self.done} is unknown")),
            (~value, "violation", pl.lit(self.not_done)),
        ]


class VisitIdentification(_RequiredVisitFact):
    kind = "visit_identification"
    fact = "identification_shown"
    done = "the visitors show their identification"
    not_done = "the visitors do not show their identification"


class VisitRecording(_RequiredVisitFact):
    kind = "visit_recording"
    fact = "recording"
    done = "the visit is recorded"
    not_done = "the visit is not recorded"


class EntryParams(Params):
    places: tuple[Place, ...] = Field(min_length=1, description="Where entering without consent is forbidden")


class VisitEntry(VisitCheck):
    """Entering premises only with the occupant's consent, at the places the rule protects."""

    kind = "visit_entry"
    params = EntryParams

    def visit(self, proposal: Proposal, visit: Visit, params: EntryParams) -> Finding:
        if visit.enters_premises is None:
            return Finding("missing_facts", "whether the visitors enter the premises is unknown")
        if not visit.enters_premises:
            return Finding("pass", "the visitors do not enter the premises")
        if proposal.place is None:
            return Finding("missing_facts", "the visitors enter premises whose kind (home, workplace, ...) is unknown")
        if proposal.place not in params.places:
            return Finding("pass", f"entering a {proposal.place} place is outside the rule")
        if visit.consent_to_enter is None:
            return Finding("missing_facts", f"the visitors enter the {proposal.place} and consent is unknown")
        if not visit.consent_to_enter:
            return Finding("violation", f"the visitors enter the {proposal.place} without consent")
        return Finding("pass", f"the visitors enter the {proposal.place} with consent")

    def conditions(self, params: EntryParams) -> list[Condition]:
        enters, consent, place = (
            pl.col("visit_enters_premises"),
            pl.col("visit_consent_to_enter"),
            pl.col("place"),
        )
        protected = enters & place.is_in(list(params.places))
        return [
            (enters.is_null(), "missing_facts", pl.lit("whether the visitors enter the premises is unknown")),
            (
                enters & place.is_null(),
                "missing_facts",
                pl.lit("the visitors enter premises whose kind (home, workplace, ...) is unknown"),
            ),
            (
                protected & consent.is_null(),
                "missing_facts",
                pl.format("the visitors enter the {} and consent is unknown", place),
            ),
            (protected & ~consent, "violation", pl.format("the visitors enter the {} without consent", place)),
        ]


# --- notice ----------------------------------------------------------------------------------------------


class NoticeParams(Params):
    # Full days (24-hour periods) between the notice's delivery and the visit: unambiguous across time zones.
    min_days: int = Field(ge=0)
    first_visit_only: bool = Field(description="Only a first visit needs notice (no earlier visit in the history)")


class VisitNotice(VisitCheck):
    """A written notice delivered at least `min_days` full days before the visit."""

    kind = "visit_notice"
    params = NoticeParams

    def visit(self, proposal: Proposal, visit: Visit, params: NoticeParams) -> Finding:
        at = proposal.moment_utc
        if params.first_visit_only:
            earlier = [e.at for e in proposal.history if e.channel == "visit" and e.at < at]
            if earlier:
                return Finding("not_applicable", f"not a first visit: the debtor was visited on {_stamp(max(earlier))}")
        notice = visit.notice_delivered_at
        if notice is None:
            return Finding("missing_facts", "no delivery of a written notice of the visit is recorded")
        if at - notice < timedelta(days=params.min_days):
            return Finding("violation", _late(notice, params.min_days, at))
        return Finding(
            "pass",
            f"the written notice was delivered at {_stamp(notice)}, "
            f"at least {params.min_days} full day(s) before the visit",
        )

    def prepare(self, visits: pl.DataFrame, history: pl.DataFrame, params: NoticeParams) -> pl.DataFrame:
        if not params.first_visit_only:
            return visits.with_columns(earlier_visit=pl.lit(False))
        earlier = (
            history.filter(pl.col("channel") == "visit")
            .join(visits.select("proposal_id", "moment_utc"), on="proposal_id")
            .filter(pl.col("at") < pl.col("moment_utc"))
            .select("proposal_id")
            .unique()
        )
        return visits.with_columns(
            earlier_visit=pl.col("proposal_id").is_in(earlier.get_column("proposal_id").implode())
        )

    def conditions(self, params: NoticeParams) -> list[Condition]:
        notice, at = pl.col("visit_notice_delivered_at"), pl.col("moment_utc")
        first = ~pl.col("earlier_visit")
        return [
            (
                first & notice.is_null(),
                "missing_facts",
                pl.lit("no delivery of a written notice of the visit is recorded"),
            ),
            (
                first & (at - notice < pl.duration(days=params.min_days)),
                "violation",
                pl.format(
                    "the written notice was delivered at {}, less than {} full day(s) before the visit at {}",
                    notice.dt.strftime(STAMP),
                    pl.lit(params.min_days),
                    at.dt.strftime(STAMP),
                ),
            ),
        ]


def _late(notice: datetime, min_days: int, at: datetime) -> str:
    return (
        f"the written notice was delivered at {_stamp(notice)}, less than {min_days} full day(s) "
        f"before the visit at {_stamp(at)}"
    )


# --- whether to visit at all -----------------------------------------------------------------------------


class LastResortParams(Params):
    min_days_past_due: int = Field(ge=0)
    min_failed_attempts: int = Field(ge=1)
    lookback_days: int = Field(ge=1)
    failed_outcomes: tuple[Outcome, ...] = Field(min_length=1, description="Outcomes of an attempt that failed")


class VisitLastResort(VisitCheck):
    """A visit only when remote contact has been tried and has failed.

    Within `lookback_days` before the visit: at least `min_failed_attempts` remote attempts by the collector
    to reach the debtor ended in a failed outcome, and no conversation with the debtor took place (a debtor
    who talks to us can be dealt with remotely).
    """

    kind = "visit_last_resort"
    params = LastResortParams

    def visit(self, proposal: Proposal, visit: Visit, params: LastResortParams) -> Finding:
        dpd = proposal.debt.days_past_due
        if dpd < params.min_days_past_due:
            return Finding("violation", _too_early(dpd, params.min_days_past_due))
        at = proposal.moment_utc
        since = at - timedelta(days=params.lookback_days)
        window = [e for e in proposal.history if since <= e.at < at and e.counterpart == "debtor"]
        talks = [e.at for e in window if e.outcome == "conversation"]
        if talks:
            return Finding("violation", _talked(max(talks)))
        failed = sum(
            1
            for e in window
            if e.channel != "visit" and e.initiated_by == "collector" and e.outcome in params.failed_outcomes
        )
        if failed < params.min_failed_attempts:
            return Finding("violation", _few(failed, params))
        return Finding(
            "pass",
            f"{failed} failed attempts to reach the debtor in the last {params.lookback_days} days and no conversation",
        )

    def prepare(self, visits: pl.DataFrame, history: pl.DataFrame, params: LastResortParams) -> pl.DataFrame:
        at = pl.col("moment_utc")
        recent = (
            history.filter(pl.col("counterpart") == "debtor")
            .join(visits.select("proposal_id", "moment_utc"), on="proposal_id")
            .filter((pl.col("at") < at) & (pl.col("at") >= at - pl.duration(days=params.lookback_days)))
            .group_by("proposal_id")
            .agg(
                failed=(
                    (pl.col("channel") != "visit")
                    & (pl.col("initiated_by") == "collector")
                    & pl.col("outcome").is_in(list(params.failed_outcomes))
                ).sum(),
                last_talk=pl.col("at").filter(pl.col("outcome") == "conversation").max(),
            )
        )
        return visits.join(recent, on="proposal_id", how="left").with_columns(pl.col("failed").fill_null(0))

    def conditions(self, params: LastResortParams) -> list[Condition]:
        dpd, talk, failed = pl.col("debt_days_past_due"), pl.col("last_talk"), pl.col("failed")
        return [
            (
                dpd < params.min_days_past_due,
                "violation",
                pl.format(
                    "the debt is {} days past due, fewer than {}: a visit is not yet a last resort",
                    dpd,
                    pl.lit(params.min_days_past_due),
                ),
            ),
            (
                talk.is_not_null(),
                "violation",
                pl.format(
                    "the debtor had a conversation with the collector at {}: remote contact has not failed",
                    talk.dt.strftime(STAMP),
                ),
            ),
            (
                failed < params.min_failed_attempts,
                "violation",
                pl.format(
                    "{} failed attempts to reach the debtor in the last {} days, fewer than {}: "
                    "a visit is not yet a last resort",
                    failed,
                    pl.lit(params.lookback_days),
                    pl.lit(params.min_failed_attempts),
                ),
            ),
        ]


def _too_early(dpd: int, minimum: int) -> str:
    return f"the debt is {dpd} days past due, fewer than {minimum}: a visit is not yet a last resort"


def _talked(at: datetime) -> str:
    return f"the debtor had a conversation with the collector at {_stamp(at)}: remote contact has not failed"


def _few(failed: int, params: LastResortParams) -> str:
    return (
        f"{failed} failed attempts to reach the debtor in the last {params.lookback_days} days, fewer than "
        f"{params.min_failed_attempts}: a visit is not yet a last resort"
    )


class MinBalanceParams(Params):
    # Money in minor units (fen, cents, pence) per ISO currency: integers only, never floats.
    min_balance: dict[str, StrictInt] = Field(min_length=1)


class VisitMinBalance(VisitCheck):
    """A visit only for a balance worth its cost."""

    kind = "visit_min_balance"
    params = MinBalanceParams

    def visit(self, proposal: Proposal, visit: Visit, params: MinBalanceParams) -> Finding:
        balance, currency = proposal.debt.balance, proposal.debt.currency
        minimum = params.min_balance.get(currency)
        if minimum is None:
            return Finding("missing_facts", _no_threshold(currency))
        if balance < minimum:
            return Finding("violation", _small(balance, minimum, currency))
        return Finding("pass", f"a balance of {balance} {currency} minor units is worth a visit (at least {minimum})")

    def prepare(self, visits: pl.DataFrame, history: pl.DataFrame, params: MinBalanceParams) -> pl.DataFrame:
        thresholds = pl.DataFrame(
            {"debt_currency": list(params.min_balance), "minimum": list(params.min_balance.values())},
            schema={"debt_currency": pl.String, "minimum": pl.Int64},
        )
        return visits.join(thresholds, on="debt_currency", how="left")

    def conditions(self, params: MinBalanceParams) -> list[Condition]:
        balance, minimum, currency = pl.col("debt_balance"), pl.col("minimum"), pl.col("debt_currency")
        return [
            (
                minimum.is_null(),
                "missing_facts",
                pl.format("the rule sets no minimum balance for a visit in {}", currency),
            ),
            (
                balance < minimum,
                "violation",
                pl.format(
                    "a balance of {} {} minor units is below the {} that makes a visit worth its cost",
                    balance,
                    currency,
                    minimum,
                ),
            ),
        ]


def _no_threshold(currency: str) -> str:
    return f"the rule sets no minimum balance for a visit in {currency}"


def _small(balance: int, minimum: int, currency: str) -> str:
    return f"a balance of {balance} {currency} minor units is below the {minimum} that makes a visit worth its cost"
