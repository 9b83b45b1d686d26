"""Fees claimed in a contact must be fees the contract allows: no extra charges in the name of collection."""

from __future__ import annotations

import polars as pl

from duecourse.compliance.checks.base import Check, CheckContext, Finding, Params, findings
from duecourse.compliance.facts import Proposal


class FeesParams(Params):
    """No parameters: the contract, recorded on the debt, is the limit."""


class ContractualFees(Check):
    kind = "contractual_fees"
    reads = ("debt_fees_allowed", "debt_fees_claimed")
    params = FeesParams

    def one(self, proposal: Proposal, params: FeesParams, ctx: CheckContext) -> Finding:
        claimed, allowed = proposal.debt.fees_claimed, proposal.debt.fees_allowed
        if claimed == 0:
            return Finding("pass", "no fee is claimed")
        if allowed is None:
            return Finding(
                "missing_facts", f"a fee of {claimed} minor units is claimed but the contract's fees are unknown"
            )
        if claimed > allowed:
            return Finding("violation", f"fees claimed ({claimed}) exceed what the contract allows ({allowed})")
        return Finding("pass", f"fees claimed ({claimed}) are within the contract ({allowed})")

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: FeesParams, ctx: CheckContext
    ) -> pl.DataFrame:
        claimed, allowed = pl.col("debt_fees_claimed"), pl.col("debt_fees_allowed")
        return findings(
            proposals.filter(claimed > 0).select(
                "proposal_id",
                verdict=pl.when(allowed.is_null())
                .then(pl.lit("missing_facts"))
                .when(claimed > allowed)
                .then(pl.lit("violation"))
                .otherwise(pl.lit("pass")),
                facts=pl.when(allowed.is_null())
                .then(pl.format("a fee of {} minor units is claimed but the contract's fees are unknown", claimed))
                .otherwise(pl.format("fees claimed ({}) exceed what the contract allows ({})", claimed, allowed)),
            )
        )
