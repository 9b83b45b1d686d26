"""Replaying component-first loans instalment row by row (their waterfall touches every due instalment at once).

Used only for loans of component-first products that departed from the cumulative picture (carried penalty,
or had two instalments in arrears at a payment). Rows are flat arrays in loan order, each loan a contiguous
range; a running total within a loan is a running total over the rows less its value where the loan starts,
and a per-loan sum is `np.add.reduceat` over the loans' first rows. The k-th pass applies every such loan's
k-th payment day to the rows of the loans that have one.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from duecourse.domain.conventions import ProductConventions
from duecourse.ledger.book import DAYS, Array, SortedBook, ranges
from duecourse.ledger.penalty import daily_penalty, needs_int128, penalty_days
from duecourse.ledger.settle import AMOUNTS, NO_DAY, Summary, payment_days


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
    size = e - s
    row0 = np.cumsum(size) - size  # each loan's first row here
    idx = ranges(s, e)
    loan = np.repeat(np.arange(n), size)
    due = book.due[idx].astype(np.int64)
    ps = due + conv.grace_days + 1
    owed_through = book.pre_owed[idx + 1] - book.pre_owed[s][loan]
    owed = owed_through - (book.pre_owed[idx] - book.pre_owed[s][loan])

    def paid_through(day: Array) -> Array:
        return np.asarray(book.pre_paid[book.pays.count_le(keys[loan] * DAYS + day)] - book.pre_paid[p0][loan])

    late = (ps <= d) & (rate[loan] > 0) & (paid_through(ps) < owed_through)
    crowded = (due <= d) & (paid_through(due - 1) < owed_through - owed)
    start = np.minimum.reduceat(np.minimum(np.where(late, ps, d + 1), np.where(crowded, due, d + 1)), row0)
    first_replayed = book.pays.count_le(keys * DAYS + start - 1)
    days, amounts, count = payment_days(book, first_replayed, p1)
    first_day = np.cumsum(count) - count
    wide = needs_int128(book.largest_principal, rate)

    # Up to the day before `start`: the cumulative waterfall of what was paid before it, in waterfall order.
    reach = owed_through - owed - (book.pre_paid[first_replayed] - book.pre_paid[p0])[loan]
    rem = {"penalty": np.zeros(idx.size, dtype=np.int64)}
    for c in (x for x in conv.allocation_order if x != "penalty"):
        scheduled = book.scheduled(c, idx)
        reach = reach + scheduled
        rem[c] = np.minimum(np.maximum(reach, 0), scheduled)
    accrued = np.zeros(idx.size, dtype=np.int64)  # penalty accrued per row, for what the payments settled
    accrued_to = start.astype(np.int64) - 1  # per loan

    def accrue(who: Array, rows: Array, through: Array) -> None:
        """Penalty on `rows` (of loans `who`, `through` per loan) for the days after accrued_to up to through."""
        row_loan = loan[rows]
        first = np.maximum(accrued_to[row_loan] + 1, ps[rows])
        n_days = penalty_days(conv, pauses, keys[row_loan], first, np.repeat(through, size[who]))
        added = daily_penalty(rem["principal"][rows], rate[row_loan], conv, wide) * n_days
        rem["penalty"][rows] += added
        accrued[rows] += added
        accrued_to[who] = np.maximum(accrued_to[who], through)

    def pay(who: Array, rows: Array, day: Array, money: Array) -> None:
        """Each component across the instalments due by `day` (oldest first) in waterfall order; then instalments
        not yet due, oldest first, each in waterfall order."""
        sizes = size[who]
        heads = np.cumsum(sizes) - sizes  # each loan's first position within `rows`
        is_due = due[rows] <= np.repeat(day, sizes)
        left = money.copy()
        for c in conv.allocation_order:
            owed_c = np.where(is_due, rem[c][rows], 0)
            before = _cum_in_loan(owed_c, heads, sizes) - owed_c
            take = np.minimum(np.maximum(np.repeat(left, sizes) - before, 0), owed_c)
            rem[c][rows] -= take
            left = np.maximum(left - np.add.reduceat(owed_c, heads), 0)
        future = ~is_due
        owed_row = np.where(future, sum(rem[c][rows] for c in AMOUNTS), 0)
        reach = _cum_in_loan(owed_row, heads, sizes) - owed_row - np.repeat(left, sizes)
        for c in conv.allocation_order:
            current = rem[c][rows]
            reach = reach + current
            rem[c][rows] = np.where(future, np.minimum(np.maximum(reach, 0), current), current)

    for k in range(1, int(count.max(initial=0)) + 1):
        who = np.flatnonzero(count >= k)
        rows = ranges(row0[who], row0[who] + size[who])
        at = first_day[who] + (k - 1)
        accrue(who, rows, days[at] - 1)  # the days before the payment day, on their end-of-day principal
        pay(who, rows, days[at], amounts[at])
    accrue(np.arange(n), np.arange(idx.size), np.full(n, d))
    return _summarise(due, rem, owed + accrued, row0, d)


def _cum_in_loan(values: Array, heads: Array, sizes: Array) -> Array:
    """Running total of `values` within each loan (loans contiguous, starting at `heads`), this row included."""
    run = np.cumsum(values)
    return np.asarray(run - np.repeat(run[heads] - values[heads], sizes))


def _summarise(due: Array, rem: dict[str, Array], settled_max: Array, row0: Array, d: int) -> Summary:
    """SUMMARY_COLUMNS from the replayed rows: per-loan sums with `np.add.reduceat` over each loan's first row."""

    def per_loan(values: Array) -> Array:
        return np.asarray(np.add.reduceat(values, row0), dtype=np.int64)

    def first_due(mask: Array) -> Array:
        return np.asarray(np.minimum.reduceat(np.where(mask, due, NO_DAY), row0), dtype=np.int64)

    scheduled_left = rem["fee"] + rem["interest"] + rem["principal"]
    left = scheduled_left + rem["penalty"]
    next_due = first_due((due > d) & (left > 0))
    loan = np.repeat(np.arange(row0.size), np.diff(np.append(row0, due.size)))
    return {
        **{f"due_{c}": per_loan(np.where(due <= d, rem[c], 0)) for c in AMOUNTS},
        **{f"overdue_{c}": per_loan(np.where(due < d, rem[c], 0)) for c in AMOUNTS},
        "outstanding_principal": per_loan(rem["principal"]),
        "outstanding_total": per_loan(left),
        # what the payments settled: scheduled amounts and accrued penalty, less what is left
        "_settled": per_loan(settled_max - left),
        "oldest_unpaid_due_date": first_due((due < d) & (scheduled_left > 0)),
        "next_due_date": next_due,
        "next_due_amount": per_loan(np.where(due == next_due[loan], left, 0)),
    }
