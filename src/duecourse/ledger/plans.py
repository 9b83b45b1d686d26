"""Repayment plans on the ledger: an accepted plan is an event that supersedes a loan's schedule.

From a plan's effective day P on, the loan's instalments due after P are replaced by the plan's, and a
non-cash credit valued on P settles exactly what was due and unpaid by then (instalments due on or
before P, with the penalty accrued on them; `credit_amount`, fixed when the plan is accepted). So from P
the loan is current and its days past due and bucket follow the plan's instalments; before P nothing
changes. Because both the replaced rows and the credit are events with a value date, the state as of
any day stays a pure function of the events: a payment valued before P that arrives late is allocated
before the credit, and what the credit then finds already paid flows on to the plan's instalments —
the debtor is never charged twice for it. A later plan (after a break) supersedes the earlier one from
its own effective day in the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Final

import polars as pl

from duecourse.domain.conventions import ProductConventions
from duecourse.domain.frames import INSTALMENTS, PAYMENTS
from duecourse.ledger.engine import ledger_state

PLANS: Final = pl.Schema(
    {
        "plan_key": pl.Int64,
        "loan_key": pl.Int64,
        "effective_date": pl.Date,
        "credit_amount": pl.Int64,  # minor units; 0 when nothing was due and unpaid on the effective day
    }
)
PLAN_INSTALMENTS: Final = pl.Schema(
    {
        "plan_key": pl.Int64,
        "seq": pl.Int32,
        "due_date": pl.Date,
        "principal": pl.Int64,
        "interest": pl.Int64,
        "fee": pl.Int64,
    }
)


def supersede(
    instalments: pl.DataFrame,
    payments: pl.DataFrame,
    plans: pl.DataFrame,
    plan_instalments: pl.DataFrame,
    as_of: date,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The loans' instalments and payments as of `as_of` with every plan effective on or before it applied.

    Each loan's schedule is cut into windows by its plans' effective days P1 < P2 < …: the contractual
    rows due on or before P1, then plan 1's rows due on or before P2, …, then all of the last plan's rows;
    rows are renumbered by due date. Each applied plan adds its credit as a payment valued on its
    effective day, keyed `-plan_key` (never a stored payment's key).
    """
    applied = plans.filter(pl.col("effective_date") <= as_of)
    if applied.is_empty():
        return instalments, payments
    windows = applied.sort("loan_key", "effective_date", "plan_key").with_columns(
        until=pl.col("effective_date").shift(-1).over("loan_key")
    )
    first = windows.group_by("loan_key").agg(until=pl.col("effective_date").min())
    contractual = (
        instalments.join(first, on="loan_key", how="left")
        .filter(pl.col("until").is_null() | (pl.col("due_date") <= pl.col("until")))
        .select(INSTALMENTS.names())
    )
    planned = (
        plan_instalments.join(windows.select("plan_key", "loan_key", "until"), on="plan_key")
        .filter(pl.col("until").is_null() | (pl.col("due_date") <= pl.col("until")))
        .select(INSTALMENTS.names())
    )
    schedule = (
        pl.concat([contractual, planned])
        .sort("loan_key", "due_date", "seq")
        .with_columns(seq=(pl.int_range(pl.len()).over("loan_key") + 1).cast(pl.Int32))
    )
    credits = applied.filter(pl.col("credit_amount") > 0).select(
        payment_key=-pl.col("plan_key"),
        loan_key="loan_key",
        value_date="effective_date",
        amount="credit_amount",
        reverses_payment_key=pl.lit(None, pl.Int64),
    )
    with_credits = pl.concat([payments, credits.cast(PAYMENTS)]).sort("loan_key", "value_date", "payment_key")
    return schedule.cast(INSTALMENTS), with_credits


PAYOFF: Final = pl.Schema(
    {
        "loan_key": pl.Int64,
        "due": pl.Int64,  # what a payment valued on the day needs to clear everything due by then
        "penalty": pl.Int64,  # the penalty part of `due`
        "outstanding": pl.Int64,  # `due` plus the instalments not yet due: the balance a plan restructures
    }
)


def payoff_on(
    loans: pl.DataFrame,
    instalments: pl.DataFrame,
    payments: pl.DataFrame,
    holds: pl.DataFrame,
    conventions: Mapping[str, ProductConventions],
    day: date,
) -> pl.DataFrame:
    """Per loan (PAYOFF): what settles everything due by `day` with a payment valued on `day`.

    That is the state as of `day` less the penalty of `day` itself, which a payment valued that day
    prevents (penalty accrues after the day's payments). Found without restating the penalty rules: pay
    the state's due total on `day` and see how much of it the due amounts did not need.
    """
    state = ledger_state(loans, instalments, payments, holds, conventions, day)
    due = pl.col("due_principal") + pl.col("due_interest") + pl.col("due_fee") + pl.col("due_penalty")
    owed = state.select("loan_key", "outstanding_total", "due_penalty", due=due)
    paying = owed.filter(pl.col("due") > 0)
    trial = paying.select(
        payment_key=-pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
        loan_key="loan_key",
        value_date=pl.lit(day),
        amount="due",
        reverses_payment_key=pl.lit(None, pl.Int64),
    ).cast(PAYMENTS)
    keys = paying.get_column("loan_key").implode()
    after = ledger_state(
        loans.filter(pl.col("loan_key").is_in(keys)),
        instalments.filter(pl.col("loan_key").is_in(keys)),
        pl.concat([payments.filter(pl.col("loan_key").is_in(keys)), trial]).sort(
            "loan_key", "value_date", "payment_key"
        ),
        holds,
        conventions,
        day,
    ).select("loan_key", after=pl.col("outstanding_total") - pl.col("credit_balance"))
    # The part of the trial payment the due amounts did not need went on to later instalments, or beyond
    # everything owed (a credit balance).
    spare = (pl.col("outstanding_total") - pl.col("due") - pl.col("after")).fill_null(0)
    return (
        owed.join(after, on="loan_key", how="left", maintain_order="left")
        .select(
            "loan_key",
            due=pl.col("due") - spare,
            penalty=pl.col("due_penalty") - spare,
            outstanding=pl.col("outstanding_total") - spare,
        )
        .cast(PAYOFF)
    )
