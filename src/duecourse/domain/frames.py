"""Column contracts of the frames that flow through the set-based core.

Every stage (ledger, strategy, compliance, cycle) takes and returns Polars frames with exactly these
columns. Money is Int64 minor units, rates Int64 scaled by `money.RATE_SCALE`, dates `pl.Date`.
Keys are the store's integer surrogate keys (`*_key`); external ids ride along for people.
"""

from __future__ import annotations

from typing import Final

import polars as pl

LOANS: Final = pl.Schema(
    {
        "loan_key": pl.Int64,
        "loan_id": pl.String,
        "borrower_key": pl.Int64,
        "product": pl.String,
        "currency": pl.String,
        "principal": pl.Int64,
        "annual_rate": pl.Int64,  # scaled by RATE_SCALE
        "penalty_rate": pl.Int64,  # annual, scaled by RATE_SCALE
        "term": pl.Int32,  # number of monthly instalments
        "start_date": pl.Date,
        "method": pl.String,  # equal_instalment | equal_principal | interest_only
    }
)

INSTALMENTS: Final = pl.Schema(
    {
        "loan_key": pl.Int64,
        "seq": pl.Int32,  # 1-based
        "due_date": pl.Date,
        "principal": pl.Int64,
        "interest": pl.Int64,
        "fee": pl.Int64,
    }
)

PAYMENTS: Final = pl.Schema(
    {
        "payment_key": pl.Int64,
        "loan_key": pl.Int64,
        "value_date": pl.Date,  # the day the money counts from (may be earlier than when it was booked)
        "amount": pl.Int64,  # > 0; a reversal row carries the reversed amount
        "reverses_payment_key": pl.Int64,  # null for a payment; for a reversal, the payment it voids
    }
)

HOLDS: Final = pl.Schema(
    {
        "hold_key": pl.Int64,
        "borrower_key": pl.Int64,
        "loan_key": pl.Int64,  # null: the hold covers every loan of the borrower
        "kind": pl.String,  # dispute | hardship | legal | deceased
        "start_date": pl.Date,
        "end_date": pl.Date,  # inclusive last day; null while open
        "pauses_clock": pl.Boolean,
        "pauses_outreach": pl.Boolean,
    }
)

BORROWERS: Final = pl.Schema(
    {
        "borrower_key": pl.Int64(),
        "borrower_id": pl.String(),
        "language": pl.String(),
        "birth_date": pl.Date(),
        "flags": pl.List(pl.String),  # elderly, disabled, deceased, ...
    }
)

PRODUCTS: Final = pl.Schema(
    {
        "product": pl.String,
        "currency": pl.String,
    }
)

LEDGER_STATE: Final = pl.Schema(
    {
        "loan_key": pl.Int64,
        "as_of": pl.Date,
        # outstanding on instalments whose due date is on or before as_of
        "due_principal": pl.Int64,
        "due_interest": pl.Int64,
        "due_fee": pl.Int64,
        "due_penalty": pl.Int64,
        # the part of the above whose due date is strictly before as_of
        "overdue_principal": pl.Int64,
        "overdue_interest": pl.Int64,
        "overdue_fee": pl.Int64,
        "overdue_penalty": pl.Int64,
        "overdue_total": pl.Int64,
        "outstanding_principal": pl.Int64,  # all instalments, due or not
        "outstanding_total": pl.Int64,  # every component of every instalment, penalty included
        "paid_total": pl.Int64,  # effective payments as of as_of, reversals removed
        "credit_balance": pl.Int64,  # paid beyond everything owed
        "oldest_unpaid_due_date": pl.Date,  # null when nothing due is unpaid
        "paused_days": pl.Int32,  # clock-pausing hold days since oldest_unpaid_due_date
        "days_past_due": pl.Int32,
        "bucket": pl.String,
        "next_due_date": pl.Date,  # first instalment due after as_of with something unpaid; null if none
        "next_due_amount": pl.Int64,
    }
)

TRANSITIONS: Final = ("new", "cure", "roll_forward", "roll_back", "steady")
"""Bucket movement since the day before: new (current -> delinquent), cure (delinquent -> current),
roll_forward (to a later bucket), roll_back (to an earlier, still delinquent bucket), steady."""


def empty(schema: pl.Schema) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Select and cast to `schema`, failing loudly if a column is missing."""
    missing = [c for c in schema.names() if c not in frame.columns]
    if missing:
        raise KeyError(f"frame lacks columns {missing}")
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()])


def flag_sorted(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """`frame` with `column` flagged ascending if it is (one cheap pass), else unchanged.

    Polars joins two flagged key columns by merging them, ~10x faster than by hashing at 1,000,000 rows;
    it does not look for order by itself. Frames read by key from the store usually come in key order.
    """
    if frame.get_column(column).is_sorted():
        return frame.with_columns(pl.col(column).set_sorted())
    return frame
