"""Replaying component-first loans instalment row by row (their waterfall touches every due instalment at once).

Used only for loans of component-first products that departed from the cumulative picture (carried penalty,
or had two instalments in arrears at a payment). Rows are Polars frames in loan order; a running total within
a loan is the global running total minus its value where the loan starts (`_cum_in_loan`), so nothing is
grouped. The k-th pass applies every such loan's k-th payment day; a loan leaves after its last one.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from duecourse.domain.conventions import ProductConventions
from duecourse.ledger.book import DAYS, Array, SortedBook, ranges
from duecourse.ledger.penalty import daily_penalty_expr, needs_int128, paused_days
from duecourse.ledger.settle import AMOUNTS, NO_DAY, Summary, payment_days

_REM = {"penalty": "rem_penalty", "fee": "rem_fee", "interest": "rem_interest", "principal": "rem_principal"}


def replay_rows(
    book: SortedBook, loans: pl.DataFrame, conv: ProductConventions, d: int, pauses: pl.DataFrame
) -> Summary:
    """SUMMARY_COLUMNS of component-first `loans` (one conventions group), by replaying their payments row by row.

    Each loan is replayed from the first day it departs from the cumulative picture (`start`): its first
    penalty day left unpaid, or the first due day with an older instalment still unpaid. Until then the
    cumulative waterfall of what was paid before is exact and nothing has accrued.
    """
    n = loans.height
    s, e, p0, p1 = (loans.get_column(c).to_numpy() for c in ("s", "e", "p0", "p1"))
    keys, rate = loans.get_column("loan_key").to_numpy(), loans.get_column("penalty_rate").to_numpy()
    idx = ranges(s, e)
    row_loan = np.repeat(np.arange(n), e - s)
    due = book.due[idx]
    ps = due + conv.grace_days + 1
    owed_through = book.pre_owed[idx + 1] - book.pre_owed[s][row_loan]
    owed = owed_through - (book.pre_owed[idx] - book.pre_owed[s][row_loan])

    def paid_through(day: Array) -> Array:
        return np.asarray(book.pre_paid[book.pays.count_le(keys[row_loan] * DAYS + day)] - book.pre_paid[p0][row_loan])

    late = (ps <= d) & (rate[row_loan] > 0) & (paid_through(ps) < owed_through)
    crowded = (due <= d) & (paid_through(due - 1) < owed_through - owed)
    departs = np.minimum(np.where(late, ps, d + 1), np.where(crowded, due, d + 1))
    start = np.minimum.reduceat(departs, np.cumsum(e - s) - (e - s))  # replayed loans all have instalments
    first_replayed = book.pays.count_le(keys * DAYS + start - 1)
    days, amounts, count = payment_days(book, first_replayed, p1)
    first_day = np.cumsum(count) - count
    paid_before = book.pre_paid[first_replayed] - book.pre_paid[p0]
    wide = needs_int128(book.principal, rate)

    rows = _loan_edges(
        pl.DataFrame(
            {
                "_loan": row_loan,
                "loan_key": keys[row_loan],
                "due": due,
                "_ps": ps,
                "penalty_rate": rate[row_loan],
                "fee": book.fee[idx],
                "interest": book.interest[idx],
                "principal": book.principal[idx],
                "_owed": owed,
                "_owed_through": owed_through,
                "_paid": paid_before[row_loan],
            }
        )
    )
    rows = (
        _allocate_cumulative(rows, conv)
        .with_columns(
            rem_penalty=pl.lit(0, pl.Int64),
            _penalty_accrued=pl.lit(0, pl.Int64),
            _accrued_to=pl.Series(start[row_loan] - 1),
            _events=pl.Series(count[row_loan]),
        )
        .select(
            "_loan",
            "loan_key",
            "due",
            "_ps",
            "penalty_rate",
            "_owed",
            "_first",
            "_last",
            "_events",
            "_accrued_to",
            *_REM.values(),
            "_penalty_accrued",
        )
    )
    done = []
    for k in range(1, int(count.max(initial=0)) + 1):
        done.append(rows.filter(pl.col("_events") < k))
        rows = rows.filter(pl.col("_events") >= k)
        at = first_day[rows.get_column("_loan").to_numpy()] + (k - 1)
        rows = rows.with_columns(_t=pl.Series(days[at]), _amount=pl.Series(amounts[at]))
        rows = _accrue(rows, pl.col("_t") - 1, conv, pauses, wide)  # the days before the payment day
        rows = _pay(rows, conv).drop("_t", "_amount")
    done.append(rows)
    return _summarise(_accrue(pl.concat(done), pl.lit(d, pl.Int64), conv, pauses, wide), loans, d)


def _loan_edges(frame: pl.DataFrame) -> pl.DataFrame:
    """Mark each loan's first and last row (frames in loan order; every later filter keeps whole loans)."""
    key = pl.col("loan_key")
    return frame.with_columns(
        _first=(key != key.shift(1)).fill_null(True), _last=(key != key.shift(-1)).fill_null(True)
    )


def _cum_in_loan(x: pl.Expr) -> pl.Expr:
    """Running total of `x` within each loan, this row included: the global running total less that before the loan."""
    run = x.cum_sum()
    return run - pl.when(pl.col("_first")).then(run - x).forward_fill()


def _loan_total(x: pl.Expr) -> pl.Expr:
    """`x` summed over the row's loan, on every row of the loan."""
    return pl.when(pl.col("_last")).then(_cum_in_loan(x)).backward_fill()


def _allocate_cumulative(rows: pl.DataFrame, conv: ProductConventions) -> pl.DataFrame:
    """rem_fee/interest/principal when `_paid` (per loan) meets the schedule oldest instalment first, in order."""
    reach = pl.col("_owed_through") - pl.col("_owed") - pl.col("_paid")
    out = []
    for comp in (c for c in conv.allocation_order if c != "penalty"):
        reach = reach + pl.col(comp)
        out.append(pl.min_horizontal(reach.clip(lower_bound=0), pl.col(comp)).alias(_REM[comp]))
    return rows.with_columns(out)


def _accrue(
    rows: pl.DataFrame, through: pl.Expr, conv: ProductConventions, pauses: pl.DataFrame, wide: bool
) -> pl.DataFrame:
    """Add the penalty of the days after `_accrued_to` up to `through`: each row's daily amount x days."""
    first = pl.max_horizontal(pl.col("_accrued_to") + 1, pl.col("_ps"))
    rows = rows.with_columns(_through=through.cast(pl.Int64)).with_columns(
        _from=first, _days=(pl.col("_through") - first + 1).clip(lower_bound=0)
    )
    if conv.holds_pause_penalty and not pauses.is_empty():
        loan_key, from_day, through_day = (rows.get_column(c).to_numpy() for c in ("loan_key", "_from", "_through"))
        paused = paused_days(loan_key, from_day, through_day, pauses)
        rows = rows.with_columns(pl.col("_days") - pl.Series(paused))
    added = daily_penalty_expr(pl.col("rem_principal"), pl.col("penalty_rate"), conv, wide) * pl.col("_days")
    return rows.with_columns(
        rem_penalty=pl.col("rem_penalty") + added,
        _penalty_accrued=pl.col("_penalty_accrued") + added,
        _accrued_to=pl.max_horizontal(pl.col("_accrued_to"), pl.col("_through")),
    ).drop("_through", "_from", "_days")


def _pay(rows: pl.DataFrame, conv: ProductConventions) -> pl.DataFrame:
    """Apply each loan's `_amount` on day `_t`: each component across the due instalments (oldest first), in waterfall
    order; what is left goes to instalments not yet due, oldest first, each in waterfall order."""
    due = pl.col("due") <= pl.col("_t")
    rows = rows.with_columns(_left=pl.col("_amount"))
    for comp in conv.allocation_order:
        owed = pl.when(due).then(pl.col(_REM[comp])).otherwise(0)
        taken = (pl.col("_left") - (_cum_in_loan(owed) - owed)).clip(0).clip(upper_bound=owed)
        rows = rows.with_columns(
            (pl.col(_REM[comp]) - taken).alias(_REM[comp]),
            _left=(pl.col("_left") - _loan_total(owed)).clip(lower_bound=0),
        )
    future = ~due
    owed_row = pl.when(future).then(pl.sum_horizontal(*(pl.col(c) for c in _REM.values()))).otherwise(0)
    rows = rows.with_columns(_reach=_cum_in_loan(owed_row) - owed_row - pl.col("_left"))
    reach = pl.col("_reach")
    out = []
    for comp in conv.allocation_order:
        reach = reach + pl.col(_REM[comp])
        kept = pl.min_horizontal(reach.clip(lower_bound=0), pl.col(_REM[comp]))
        out.append(pl.when(future).then(kept).otherwise(pl.col(_REM[comp])).alias(_REM[comp]))
    return rows.with_columns(out).drop("_reach", "_left")


def _summarise(rows: pl.DataFrame, loans: pl.DataFrame, d: int) -> Summary:
    """SUMMARY_COLUMNS from replayed rows. Each loan's rows are contiguous (loans in any order), so a per-loan sum
    is a difference of running totals between its first and last row; results land at the loan's position."""
    first, last = (
        np.flatnonzero(rows.get_column("_first").to_numpy()),
        np.flatnonzero(rows.get_column("_last").to_numpy()),
    )
    row_loan = rows.get_column("_loan").to_numpy()
    where = row_loan[first]
    size = loans.height

    def per_loan(values: Array) -> Array:
        run = np.concatenate(([0], np.cumsum(values)))
        out = np.zeros(size, dtype=np.int64)
        out[where] = run[last + 1] - run[first]
        return out

    def first_due(mask: Array) -> Array:
        out = np.full(size, NO_DAY, dtype=np.int64)
        out[where] = np.minimum.reduceat(np.where(mask, due, NO_DAY), first)
        return out

    due = rows.get_column("due").to_numpy()
    rem = {c: rows.get_column(_REM[c]).to_numpy() for c in AMOUNTS}
    scheduled_left = rem["fee"] + rem["interest"] + rem["principal"]
    left = scheduled_left + rem["penalty"]
    oldest, next_due = first_due((due < d) & (scheduled_left > 0)), first_due((due > d) & (left > 0))
    return {
        **{f"due_{c}": per_loan(np.where(due <= d, rem[c], 0)) for c in AMOUNTS},
        **{f"overdue_{c}": per_loan(np.where(due < d, rem[c], 0)) for c in AMOUNTS},
        "outstanding_principal": per_loan(rem["principal"]),
        "outstanding_total": per_loan(left),
        # what the payments settled: scheduled amounts and accrued penalty, less what is left
        "_settled": per_loan(
            rows.get_column("_owed").to_numpy() + rows.get_column("_penalty_accrued").to_numpy() - left
        ),
        "oldest_unpaid_due_date": oldest,
        "next_due_date": next_due,
        "next_due_amount": per_loan(np.where(due == next_due[row_loan], left, 0)),
    }
