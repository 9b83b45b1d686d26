"""Where a contact reaches the debtor: not at work when the employer forbids it, not at a place the debtor refused.

FDCPA 1692c(a)(3) / Reg F 1006.6(b)(1)(iii): no communication at the consumer's place of employment when the
collector knows or has reason to know the employer prohibits it. 1692c(a)(1) / 1006.6(b)(1)(ii) and CONC 7.9.4R:
no contact at a place the debtor named inconvenient. Where the contact will reach the debtor (`place`) decides,
and an unknown place blocks only when it could matter (a known prohibition, or places the debtor refused).
"""

from __future__ import annotations

import polars as pl

from duecourse.compliance.checks.base import Check, CheckContext, Finding, Params, findings
from duecourse.compliance.facts import Proposal


class PlaceParams(Params):
    """No parameters: the debtor's and the employer's stated wishes are the limit."""


class EmployerProhibitsWorkplace(Check):
    kind = "workplace_prohibited"
    reads = ("debtor_employer_prohibits_contact", "place")
    params = PlaceParams

    def one(self, proposal: Proposal, params: PlaceParams, ctx: CheckContext) -> Finding:
        place, prohibits = proposal.place, proposal.debtor.employer_prohibits_contact
        if place == "workplace":
            if prohibits is None:
                return Finding(
                    "missing_facts",
                    "the contact reaches the debtor at work and whether the employer forbids it is unknown",
                )
            if prohibits:
                return Finding("violation", "the contact reaches the debtor at work and the employer forbids it")
            return Finding("pass", "the contact reaches the debtor at work and the employer allows it")
        if place is None and prohibits:
            return Finding(
                "missing_facts",
                "the debtor's employer forbids contact at work and where this contact reaches them is unknown",
            )
        return Finding(
            "pass", f"the contact reaches the debtor at {place or 'an unknown place'}, not at a forbidden workplace"
        )

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: PlaceParams, ctx: CheckContext
    ) -> pl.DataFrame:
        place, prohibits = pl.col("place"), pl.col("debtor_employer_prohibits_contact")
        at_work = (place == "workplace").fill_null(False)
        return findings(
            proposals.select(
                "proposal_id",
                verdict=pl.when(at_work & prohibits.is_null())
                .then(pl.lit("missing_facts"))
                .when(at_work & prohibits)
                .then(pl.lit("violation"))
                .when(place.is_null() & prohibits.fill_null(False))
                .then(pl.lit("missing_facts")),
                facts=pl.when(at_work & prohibits.is_null())
                .then(pl.lit("the contact reaches the debtor at work and whether the employer forbids it is unknown"))
                .when(at_work)
                .then(pl.lit("the contact reaches the debtor at work and the employer forbids it"))
                .otherwise(
                    pl.lit(
                        "the debtor's employer forbids contact at work and where this contact reaches them is unknown"
                    )
                ),
            )
        )


class InconvenientPlace(Check):
    kind = "inconvenient_place"
    reads = ("debtor_inconvenient_places", "place")
    params = PlaceParams

    def one(self, proposal: Proposal, params: PlaceParams, ctx: CheckContext) -> Finding:
        place, refused = proposal.place, proposal.debtor.inconvenient_places
        if not refused:
            return Finding("pass", "the debtor has named no place inconvenient")
        if place is None:
            return Finding(
                "missing_facts",
                f"the debtor named {', '.join(refused)} inconvenient and where this contact reaches them is unknown",
            )
        if place in refused:
            return Finding("violation", f"the contact reaches the debtor at {place}, a place they named inconvenient")
        return Finding("pass", f"the contact reaches the debtor at {place}, not a place they named inconvenient")

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: PlaceParams, ctx: CheckContext
    ) -> pl.DataFrame:
        place, refused = pl.col("place"), pl.col("debtor_inconvenient_places")
        return findings(
            proposals.filter(refused.list.len() > 0).select(
                "proposal_id",
                verdict=pl.when(place.is_null())
                .then(pl.lit("missing_facts"))
                .when(refused.list.contains(place))
                .then(pl.lit("violation")),
                facts=pl.when(place.is_null())
                .then(
                    pl.format(
                        "the debtor named {} inconvenient and where this contact reaches them is unknown",
                        refused.list.join(", "),
                    )
                )
                .otherwise(pl.format("the contact reaches the debtor at {}, a place they named inconvenient", place)),
            )
        )
