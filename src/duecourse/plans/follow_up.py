"""The daily follow-up of promises to pay and repayment plans (issue 5, points 4 and 5), set-based.

A promise is kept once the cash paid on its loan from the day it was taken reaches the amount (it may be
met early); when its day (plus any grace) has passed it is partly kept if something came in, broken if
nothing did. Only an open promise whose day has not passed pauses the ladder, so a promise broken
yesterday lets treatment resume today. A plan breaks when its loan is the configured number of days past
due on the plan's own instalments (a missed plan payment); it completes when nothing is owed. Either way
it stops pausing the ladder.
"""

from __future__ import annotations

from datetime import date
from typing import Final

import polars as pl

PROMISES: Final = pl.Schema(
    {
        "promise_key": pl.Int64,
        "loan_key": pl.Int64,
        "amount": pl.Int64,
        "due_date": pl.Date,
        "taken_on": pl.Date,  # the day it was taken, in the lender's books
    }
)
CASH: Final = pl.Schema({"loan_key": pl.Int64, "value_date": pl.Date, "amount": pl.Int64})
LIVE_PLANS: Final = pl.Schema({"plan_key": pl.Int64, "loan_key": pl.Int64})


def follow_up_promises(promises: pl.DataFrame, cash: pl.DataFrame, as_of: date, grace_days: int) -> pl.DataFrame:
    """(promise_key, loan_key, paid, state) for every open promise: its state after `as_of`'s follow-up —
    kept | partly_kept | broken, or open while its day (plus grace) has not passed and it is not yet met."""
    paid = (
        promises.join(cash.filter(pl.col("value_date") <= as_of), on="loan_key", how="left")
        .filter(pl.col("value_date").is_null() | (pl.col("value_date") >= pl.col("taken_on")))
        .group_by("promise_key")
        .agg(paid=pl.col("amount_right").sum())
    )
    lapsed = pl.col("due_date") + pl.duration(days=grace_days) < pl.lit(as_of)
    return (
        promises.join(paid, on="promise_key", how="left")
        .with_columns(paid=pl.col("paid").fill_null(0))
        .select(
            "promise_key",
            "loan_key",
            "paid",
            state=pl.when(pl.col("paid") >= pl.col("amount"))
            .then(pl.lit("kept"))
            .when(~lapsed)
            .then(pl.lit("open"))
            .when(pl.col("paid") > 0)
            .then(pl.lit("partly_kept"))
            .otherwise(pl.lit("broken")),
        )
        .sort("promise_key")
    )


def follow_up_plans(plans: pl.DataFrame, state: pl.DataFrame, break_after_days: int) -> pl.DataFrame:
    """(plan_key, loan_key, state) for every live plan after the day's ledger `state`: broken | completed |
    active."""
    return (
        plans.join(state.select("loan_key", "days_past_due", "outstanding_total"), on="loan_key", how="left")
        .select(
            "plan_key",
            "loan_key",
            state=pl.when(pl.col("days_past_due") >= break_after_days)
            .then(pl.lit("broken"))
            .when(pl.col("outstanding_total").fill_null(0) <= 0)
            .then(pl.lit("completed"))
            .otherwise(pl.lit("active")),
        )
        .sort("plan_key")
    )


def pausing_loans(promises: pl.DataFrame, plans: pl.DataFrame) -> pl.DataFrame:
    """(loan_key, has_active_promise, has_active_plan) for loans with either, after the follow-up."""
    promised = (
        promises.filter(pl.col("state") == "open")
        .select("loan_key")
        .unique()
        .with_columns(has_active_promise=pl.lit(True))
    )
    planned = (
        plans.filter(pl.col("state") == "active").select("loan_key").unique().with_columns(has_active_plan=pl.lit(True))
    )
    return promised.join(planned, on="loan_key", how="full", coalesce=True).with_columns(
        pl.col("has_active_promise").fill_null(False), pl.col("has_active_plan").fill_null(False)
    )
