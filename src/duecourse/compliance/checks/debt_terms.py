"""Debt terms: payment only to the lender's designated accounts, and what a time-barred debt still allows."""

from __future__ import annotations

from datetime import UTC

import polars as pl
from pydantic import Field

from duecourse.compliance.checks.base import STAMP, Check, CheckContext, Finding, Params, among, blocking
from duecourse.compliance.facts import Proposal, Purpose

DAYS_PER_YEAR = 365  # a limitation period of N years is never shorter than N * 365 days


class PaymentParams(Params):
    """No figures: the lender's designated accounts, recorded on the debt, are the limit."""


class OfficialPaymentAccount(Check):
    """The account a debtor is told to pay to must be one the lender designated, written exactly as designated."""

    kind = "official_payment_account"
    reads = ("debt_payment_account", "debt_official_accounts")
    params = PaymentParams

    def one(self, proposal: Proposal, params: PaymentParams, ctx: CheckContext) -> Finding:
        account, official = proposal.debt.payment_account, proposal.debt.official_accounts
        if account is None:
            return Finding("pass", "no payment account is named")
        if not official:
            return Finding("missing_facts", _unknown(account))
        if account not in official:
            return Finding("violation", _unofficial(account))
        return Finding("pass", f"the payment account {account!r} is one of the lender's official accounts")

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: PaymentParams, ctx: CheckContext
    ) -> pl.DataFrame:
        account, official = pl.col("debt_payment_account"), pl.col("debt_official_accounts")
        return blocking(
            proposals.lazy()
            .filter(account.is_not_null() & ~official.list.contains(account))
            .select(
                "proposal_id",
                verdict=pl.when(official.list.len() == 0).then(pl.lit("missing_facts")).otherwise(pl.lit("violation")),
                facts=pl.when(official.list.len() == 0)
                .then(pl.format(_unknown("{}"), account))
                .otherwise(pl.format(_unofficial("{}"), account)),
            )
        )


def _unknown(account: str) -> str:
    return f"the payment account '{account}' is named but the lender's official accounts are not recorded"


def _unofficial(account: str) -> str:
    return f"the payment account '{account}' is not one of the lender's official accounts"


class LimitationParams(Params):
    limitation_years: dict[str, int] = Field(
        description="Limitation period in years by region; a debt younger than the shortest cannot be time-barred"
    )
    demand_purposes: tuple[Purpose, ...] = Field(
        description="Purposes that demand payment, which stop once the debtor refuses to pay a time-barred debt"
    )


class TimeBarred(Check):
    """Whether the debt is time-barred must be known; once it is and the debtor refused to pay, demands stop.

    A suit or a threat of suit on a time-barred debt is in the message, which the content rules screen; they
    can do so only when the status is known, so this rule blocks while it is unknown. When `debt.time_barred`
    is unknown, a debt fewer days past due than the region's limitation period (the shortest of the rule's
    periods where the region is unknown) cannot be time-barred yet. The debtor's refusal to pay is the
    recorded cease request (`debtor.cease`, either form: FDCPA 1692c(c) "refuses to pay ... or ... wishes
    ... to cease"; CONC 7.15.8 "stated that he will not be paying").
    """

    kind = "time_barred"
    reads = ("debt_time_barred", "debtor_cease_at", "region", "debt_days_past_due", "purpose", "moment_utc")
    params = LimitationParams

    def one(self, proposal: Proposal, params: LimitationParams, ctx: CheckContext) -> Finding:
        debt = proposal.debt
        barred = debt.time_barred
        years = _years(proposal.jurisdiction.region, params)
        if barred is None and years is not None and debt.days_past_due < years * DAYS_PER_YEAR:
            return Finding("pass", f"{debt.days_past_due} days past due is within the {years}-year limitation period")
        if barred is None:
            return Finding("missing_facts", _unknown_status(str(debt.days_past_due)))
        if not barred:
            return Finding("pass", "the debt is not time-barred")
        cease = proposal.debtor.cease
        if proposal.purpose in params.demand_purposes and cease is not None and cease.at <= proposal.moment:
            return Finding("violation", _refused(f"{cease.at.astimezone(UTC):{STAMP}}", proposal.purpose))
        return Finding("pass", "the debt is time-barred: its messages may not mention suit (content rules screen them)")

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: LimitationParams, ctx: CheckContext
    ) -> pl.DataFrame:
        barred, cease_at = pl.col("debt_time_barred"), pl.col("debtor_cease_at")
        if params.limitation_years:
            shortest = min(params.limitation_years.values())
            years = pl.col("region").replace_strict(params.limitation_years, default=shortest, return_dtype=pl.Int64)
            young = pl.col("debt_days_past_due") < years * DAYS_PER_YEAR
        else:
            young = pl.lit(False)
        unknown = barred.is_null() & ~young
        refused = (
            barred.fill_null(False)
            & among("purpose", params.demand_purposes)
            & (cease_at <= pl.col("moment_utc")).fill_null(False)
        )
        return blocking(
            proposals.lazy()
            .filter(unknown | refused)
            .select(
                "proposal_id",
                verdict=pl.when(unknown).then(pl.lit("missing_facts")).otherwise(pl.lit("violation")),
                facts=pl.when(unknown)
                .then(pl.format(_unknown_status("{}"), "debt_days_past_due"))
                .otherwise(pl.format(_refused("{}", "{}"), cease_at.dt.to_string(STAMP), "purpose")),
            )
        )


def _years(region: str | None, params: LimitationParams) -> int | None:
    periods = params.limitation_years
    if not periods:
        return None
    return periods.get(region or "", min(periods.values()))


def _unknown_status(days: str) -> str:
    return f"whether the debt ({days} days past due) is time-barred is unknown"


def _refused(at: str, purpose: str) -> str:
    return f"the debt is time-barred and the debtor refused to pay at {at} UTC: no further {purpose} demand"
