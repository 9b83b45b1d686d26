"""No contact on a statutory holiday of the debtor's jurisdiction, on the local date in every candidate time zone.

Holidays come from the project-owned calendars (`rules/calendars/`, ctx.calendar): a listed day off is a holiday,
a make-up working day (China's 调休上班) is a working day, an ordinary weekend is neither. A date the calendar does
not cover, or a region whose holidays the country's calendar does not hold (UK.csv: England and Wales only), is
unknown, and the contact is blocked for missing facts rather than guessed.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import polars as pl

from duecourse.compliance.checks.base import Check, CheckContext, Finding, Params, findings
from duecourse.compliance.checks.contact_window import local_times
from duecourse.compliance.facts import Proposal


class HolidaysParams(Params):
    # Countries whose calendar holds only some regions' holidays: the regions it may be used for.
    calendar_regions: dict[str, tuple[str, ...]] = {}


def _region_gap(country: str, region: str | None, params: HolidaysParams) -> str | None:
    regions = params.calendar_regions.get(country)
    if regions is None or region in regions:
        return None
    where = "an unknown region" if region is None else f"region {region}"
    return f"the {country} holiday calendar holds the holidays of {', '.join(regions)} only, not of {where}"


class StatutoryHolidays(Check):
    kind = "statutory_holidays"
    params = HolidaysParams
    time_only = True

    def one(self, proposal: Proposal, params: HolidaysParams, ctx: CheckContext) -> Finding:
        country, zones = proposal.jurisdiction.country, proposal.debtor.time_zones
        cal = ctx.calendar
        if not zones:
            return Finding("missing_facts", "the debtor's time zone is unknown, so their local date cannot be known")
        gap = _region_gap(country, proposal.jurisdiction.region, params)
        days = [(zone, proposal.moment_utc.astimezone(ZoneInfo(zone)).date()) for zone in zones]
        for zone, day in days:
            if cal.is_holiday(country, day):
                return Finding("violation", f"{day.isoformat()} in {zone} is {cal.holiday_name(country, day)}")
        if gap is not None:
            return Finding("missing_facts", gap)
        for zone, day in days:
            if not cal.covers(country, day):
                return Finding(
                    "missing_facts", f"the {country} holiday calendar does not cover {day.isoformat()} ({zone})"
                )
        return Finding("pass", f"{', '.join(sorted({d.isoformat() for _, d in days}))} is not a holiday in {country}")

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: HolidaysParams, ctx: CheckContext
    ) -> pl.DataFrame:
        holidays = ctx.calendar.days_frame().filter("off_day").select("country", "date", "name")
        coverage = ctx.calendar.coverage_frame()
        rows = (
            local_times(proposals, "country", "region")
            .with_columns(date=pl.col("local").dt.date())
            .join(holidays, on=["country", "date"], how="left")
            .join(coverage, on="country", how="left")
            .with_columns(covered=pl.col("date").is_between(pl.col("first_day"), pl.col("last_day")))
        )
        region_gap = pl.lit(None, pl.String)
        for country, regions in params.calendar_regions.items():
            region_gap = (
                pl.when((pl.col("country") == country) & ~pl.col("region").is_in(list(regions)).fill_null(False))
                .then(
                    pl.format(
                        "the {} holiday calendar holds the holidays of {} only, not of {}",
                        "country",
                        pl.lit(", ".join(regions)),
                        pl.when(pl.col("region").is_null())
                        .then(pl.lit("an unknown region"))
                        .otherwise(pl.format("region {}", "region")),
                    )
                )
                .otherwise(region_gap)
            )
        # Per proposal, like `one`: the first holiday (zone order), else a region gap, else the first uncovered date.
        ranked = rows.with_columns(
            rank=pl.when(pl.col("zone").is_null())
            .then(0)
            .when(pl.col("name").is_not_null())
            .then(1)
            .when(region_gap.is_not_null())
            .then(2)
            .when(~pl.col("covered").fill_null(False))
            .then(3),
            facts=pl.when(pl.col("zone").is_null())
            .then(pl.lit("the debtor's time zone is unknown, so their local date cannot be known"))
            .when(pl.col("name").is_not_null())
            .then(pl.format("{} in {} is {}", pl.col("date").dt.to_string(), "zone", "name"))
            .when(region_gap.is_not_null())
            .then(region_gap)
            .otherwise(
                pl.format(
                    "the {} holiday calendar does not cover {} ({})", "country", pl.col("date").dt.to_string(), "zone"
                )
            ),
        ).filter(pl.col("rank").is_not_null())
        return findings(
            ranked.sort("proposal_id", "rank", "zone_index")
            .unique("proposal_id", keep="first")
            .select(
                "proposal_id",
                "facts",
                verdict=pl.when(pl.col("rank") == 1).then(pl.lit("violation")).otherwise(pl.lit("missing_facts")),
            )
        )
