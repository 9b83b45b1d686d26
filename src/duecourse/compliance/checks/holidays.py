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
from duecourse.compliance.checks.contact_window import first_per_proposal, local_times
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
    reads = ("moment_utc", "debtor_time_zones", "country", "region")
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
        cal = ctx.calendar
        holidays = cal.days_frame().filter("off_day").select("country", "date", "name")
        rows = local_times(proposals, "country", "region").with_columns(date=pl.col("local").dt.date())
        # Most rows are on no holiday of any country: only rows on a listed date are joined to the calendar.
        hits = (
            rows.filter(pl.col("date").is_in(holidays.get_column("date").unique().implode()))
            .join(holidays, on=["country", "date"])
            .select("row", "zone_index", "name")
        )
        covered = pl.lit(False)
        for country, (since, until) in cal.coverage.items():
            covered = (
                pl.when(pl.col("country") == country).then(pl.col("date").is_between(since, until)).otherwise(covered)
            )
        rows = rows.join(hits, on=["row", "zone_index"], how="left").with_columns(covered=covered)
        region_gap, covered_regions = pl.lit(False), pl.lit(None, pl.String)
        for country, regions in params.calendar_regions.items():
            mine = pl.col("country") == country
            region_gap = region_gap | (mine & ~pl.col("region").is_in(list(regions)).fill_null(False))
            covered_regions = pl.when(mine).then(pl.lit(", ".join(regions))).otherwise(covered_regions)
        # Per proposal, like `one`: the first holiday (zone order), else a region gap, else the first uncovered date.
        blocked = rows.with_columns(
            rank=pl.when(pl.col("zone").is_null())
            .then(0)
            .when(pl.col("name").is_not_null())
            .then(1)
            .when(region_gap)
            .then(2)
            .when(~pl.col("covered"))
            .then(3)
        ).filter(pl.col("rank").is_not_null())
        first = first_per_proposal(proposals, blocked, "rank")
        day = pl.col("date").dt.to_string()
        where = (
            pl.when(pl.col("region").is_null())
            .then(pl.lit("an unknown region"))
            .otherwise(pl.format("region {}", "region"))
        )
        facts = (
            pl.when(pl.col("rank") == 0)
            .then(pl.lit("the debtor's time zone is unknown, so their local date cannot be known"))
            .when(pl.col("rank") == 1)
            .then(pl.format("{} in {} is {}", day, "zone", "name"))
            .when(pl.col("rank") == 2)
            .then(
                pl.format(
                    "the {} holiday calendar holds the holidays of {} only, not of {}",
                    "country",
                    covered_regions,
                    where,
                )
            )
            .otherwise(pl.format("the {} holiday calendar does not cover {} ({})", "country", day, "zone"))
        )
        return findings(
            first.select(
                "proposal_id",
                facts=facts,
                verdict=pl.when(pl.col("rank") == 1).then(pl.lit("violation")).otherwise(pl.lit("missing_facts")),
            )
        )
