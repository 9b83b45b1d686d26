"""Vulnerable debtors (elderly, disabled, seriously ill): contact only once a supervisor has approved it."""

from __future__ import annotations

from datetime import date

import polars as pl
from pydantic import Field

from duecourse.compliance.checks.base import Check, CheckContext, Finding, Params, findings
from duecourse.compliance.facts import Flag, Proposal, age_on


class VulnerableParams(Params):
    elderly_age: int = Field(ge=0, le=150, description="Age in whole years from which a debtor counts as elderly")
    flags: tuple[Flag, ...] = Field(min_length=1, description="Debtor flags that make a debtor vulnerable")


class VulnerableDebtor(Check):
    """A vulnerable debtor may be contacted only with `debtor.vulnerability_approved`; an unknown age blocks."""

    kind = "vulnerable_debtor"
    reads = ("debtor_age", "debtor_birth_date", "debtor_flags", "debtor_vulnerability_approved", "moment_local_date")
    params = VulnerableParams

    def one(self, proposal: Proposal, params: VulnerableParams, ctx: CheckContext) -> Finding:
        debtor = proposal.debtor
        if debtor.vulnerability_approved:
            return Finding("pass", "a supervisor approved contact with this debtor")
        flagged = [f for f in debtor.flags if f in params.flags]
        if flagged:
            return Finding("violation", _flagged(", ".join(flagged)))
        day = proposal.moment.date()
        age = age_on(proposal, day)
        if age is None:
            return Finding("missing_facts", "the debtor's age is unknown (no birth date or age)")
        if age >= params.elderly_age:
            return Finding("violation", _elderly(age, day.isoformat(), params.elderly_age))
        return Finding("pass", f"the debtor is {age} on {day.isoformat()} and not flagged as vulnerable")

    def batch(
        self, proposals: pl.DataFrame, history: pl.DataFrame, params: VulnerableParams, ctx: CheckContext
    ) -> pl.DataFrame:
        day, born, flags = pl.col("moment_local_date"), pl.col("debtor_birth_date"), pl.col("debtor_flags")
        # Cheap tests on every row first (a date comparison against the latest birth date that makes a debtor
        # elderly on each distinct day); ages and sentences only for the rows that block.
        days = proposals.get_column("moment_local_date").unique()
        born_by = pl.LazyFrame(
            {"moment_local_date": days, "born_by": [_born_by(d, params.elderly_age) for d in days]},
            schema={"moment_local_date": pl.Date, "born_by": pl.Date},
        )
        elderly = (
            pl.when(born.is_not_null())
            .then(born <= pl.col("born_by"))
            .otherwise(pl.col("debtor_age") >= params.elderly_age)
        )
        flagged = pl.any_horizontal([flags.list.contains(pl.lit(f)) for f in params.flags])
        blocked = (
            proposals.lazy()
            .filter(~pl.col("debtor_vulnerability_approved").fill_null(False))
            .select("proposal_id", "moment_local_date", "debtor_birth_date", "debtor_age", "debtor_flags")
            .join(born_by, on="moment_local_date", how="left")
            .with_columns(flagged=flagged)
            .filter(pl.col("flagged") | elderly.fill_null(True))
            .with_columns(
                age=pl.coalesce(
                    _year(day) - _year(born) - (_month_day(day) < _month_day(born)).cast(pl.Int32),
                    pl.col("debtor_age").cast(pl.Int32),
                )
            )
        )
        return findings(
            blocked.select(
                "proposal_id",
                verdict=pl.when(pl.col("flagged") | pl.col("age").is_not_null())
                .then(pl.lit("violation"))
                .otherwise(pl.lit("missing_facts")),
                facts=pl.when(pl.col("flagged"))
                .then(
                    pl.format(
                        "the debtor is flagged {} and no supervisor approved contact",
                        flags.list.filter(pl.element().is_in(list(params.flags))).list.join(", "),
                    )
                )
                .when(pl.col("age").is_null())
                .then(pl.lit("the debtor's age is unknown (no birth date or age)"))
                .otherwise(
                    pl.format(
                        "the debtor is {} on {}, at least {}, and no supervisor approved contact",
                        pl.col("age"),
                        day.dt.to_string("%Y-%m-%d"),
                        pl.lit(params.elderly_age),
                    )
                ),
            ).collect()
        )


def _born_by(day: date, years: int) -> date:
    """The latest birth date of someone aged at least `years` on `day` (born 29 February: of age on 1 March)."""
    year = day.year - years
    if year < 1:
        return date.min
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February in a common year: someone born 28 February has had the birthday
        return date(year, 2, 28)


def _year(day: pl.Expr) -> pl.Expr:
    return day.dt.year().cast(pl.Int32)


def _month_day(day: pl.Expr) -> pl.Expr:
    """Month and day as one comparable number (Int32: polars' Int8 month would overflow at × 100)."""
    return day.dt.month().cast(pl.Int32) * 100 + day.dt.day().cast(pl.Int32)


def _flagged(flags: str) -> str:
    return f"the debtor is flagged {flags} and no supervisor approved contact"


def _elderly(age: int, day: str, elderly_age: int) -> str:
    return f"the debtor is {age} on {day}, at least {elderly_age}, and no supervisor approved contact"
