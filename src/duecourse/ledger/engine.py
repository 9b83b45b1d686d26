"""The set-based ledger: every loan's state as of a date, computed from its dated events in a few vectorised passes.

The rules are specified in docs/ledger.md; `tests/reference_ledger.py` restates them one loan and one day at
a time, and the tests prove both agree. In short: effective payments (value date <= D, not voided by a
reversal dated <= D) meet what is owed through the product's waterfall in value-date order; penalty interest
accrues daily on each instalment's unpaid principal from the day after due date + grace days, on the
principal left at the END of the day, the daily amount rounded once.

How it stays fast without a per-loan loop (see ledger/README.md):
1. `book.sorted_book`: instalments and payments as flat arrays in (loan, day) order with running totals;
   each loan is a range of rows.
2. `settle.dirty_loans` finds the loans that carried penalty; `settle.settle_clean` settles the others as
   if their total paid met the schedule as one cumulative sum (exact for them; per loan, not per row).
3. The dirty loans are replayed from the first day they depart from that picture, one payment day per
   pass over all of them (`settle.replay_oldest_first`, or `replay_rows.replay_rows` for component-first
   products), on both cores while the clean ones settle.
4. `_finish`: credit, days past due (less clock-paused days), bucket.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import numpy as np
import polars as pl

from duecourse.domain import frames as f
from duecourse.domain.conventions import AllocationMode, ProductConventions
from duecourse.domain.errors import ConventionError
from duecourse.ledger.book import convention_groups, day_number, sorted_book
from duecourse.ledger.penalty import pause_intervals, paused_days
from duecourse.ledger.replay_rows import replay_rows
from duecourse.ledger.settle import (
    AMOUNTS,
    NO_DAY,
    SUMMARY_COLUMNS,
    Summary,
    dirty_loans,
    replay_oldest_first,
    settle_clean,
)

REPLAY_PIECES = 2  # pieces per conventions group of the late payers' replay


def ledger_state(
    loans: pl.DataFrame,
    instalments: pl.DataFrame,
    payments: pl.DataFrame,
    holds: pl.DataFrame,
    conventions: Mapping[str, ProductConventions],
    as_of: date,
) -> pl.DataFrame:
    """One LEDGER_STATE row per loan that started on or before `as_of`, sorted by loan_key (docs/ledger.md).

    Inputs have the LOANS, INSTALMENTS, PAYMENTS and HOLDS columns, in any row order (already sorted by
    loan_key and date is fastest). Loans starting after `as_of` are left out; instalments and payments of
    loans not in `loans` are ignored. Raises ConventionError when a loan's product has no conventions.
    """
    d = day_number(as_of)
    groups, product_group = convention_groups(loans, conventions)
    book = sorted_book(loans, instalments, payments, groups, product_group, as_of)
    pauses = pause_intervals(holds, book.loans, d)
    dirty = dirty_loans(book, groups, d)
    dirty_group = book.loans.get_column("group").to_numpy()[dirty]
    # The late payers replay on the pool while this thread settles the others as clean (numpy and Polars
    # release the GIL, so both cores stay busy); loans replay independently, so a group is cut in pieces
    # that balance the two workers.
    with ThreadPoolExecutor(max_workers=2) as pool:
        replays = []
        for g, conv in enumerate(groups):
            replay = replay_rows if conv.allocation_mode is AllocationMode.COMPONENT_FIRST else replay_oldest_first
            for mine in np.array_split(dirty[dirty_group == g], REPLAY_PIECES):
                if mine.size:
                    replays.append((mine, pool.submit(replay, book, book.loans[mine], conv, d, pauses)))
        if dirty.size:
            clean = np.flatnonzero(~np.isin(np.arange(book.loans.height), dirty, assume_unique=True))
            settled = settle_clean(book, book.loans[clean], groups, d)
            state = {column: np.zeros(book.loans.height, dtype=values.dtype) for column, values in settled.items()}
            for column, values in settled.items():
                state[column][clean] = values
        else:
            state = settle_clean(book, book.loans, groups, d)
        for mine, summary in replays:
            for column, values in summary.result().items():
                state[column][mine] = values
    return _finish(book.loans, state, groups, pauses, d, as_of)


def buckets_the_day_before(
    today: pl.DataFrame,
    loans: pl.DataFrame,
    instalments: pl.DataFrame,
    payments: pl.DataFrame,
    holds: pl.DataFrame,
    conventions: Mapping[str, ProductConventions],
    as_of: date,
) -> pl.DataFrame:
    """(loan_key, bucket) as of the day before `as_of`: what `ledger_state` as of that day gives, from `today`.

    `today` is `ledger_state(...)` as of `as_of` over the same events. A loan with no payment or reversal
    valued on `as_of` had the same effective payments the day before, and they met the schedule the same way
    (`as_of`'s penalty accrues after them), so the same instalments still had scheduled amounts left: its
    oldest unpaid instalment the day before is today's, if that one fell due before the day before. Only the
    days past due are recounted from it. Loans with such an event are recomputed in full as of the day before.
    Loans that started on `as_of` did not exist the day before and are left out.
    """
    before = as_of - timedelta(days=1)
    d = day_number(before)
    groups, product_group = convention_groups(loans, conventions)
    live = f.flag_sorted(loans, "loan_key").filter(pl.col("start_date") <= before)
    moved = payments.filter(pl.col("value_date") == as_of).get_column("loan_key").unique().implode()
    quiet = (
        today.select("loan_key", "oldest_unpaid_due_date")
        .filter(~pl.col("loan_key").is_in(moved))
        .join(live.select("loan_key", "borrower_key", "product"), on="loan_key", maintain_order="left")
    )
    oldest_day = quiet.get_column("oldest_unpaid_due_date").cast(pl.Int64).fill_null(NO_DAY).to_numpy()
    oldest = np.where(oldest_day < d, oldest_day, NO_DAY)  # due before the day before, else nothing was past due
    group = quiet.get_column("product").replace_strict(product_group, return_dtype=pl.Int32).to_numpy()
    dpd, _ = _days_past_due(quiet.get_column("loan_key").to_numpy(), oldest, pause_intervals(holds, live, d), d)
    recounted = pl.DataFrame({"loan_key": quiet.get_column("loan_key"), "bucket": _buckets(group, dpd, groups)})
    changed = live.filter(pl.col("loan_key").is_in(moved))
    if changed.is_empty():
        return recounted
    keys = changed.get_column("loan_key").implode()
    recomputed = ledger_state(
        changed,
        instalments.filter(pl.col("loan_key").is_in(keys)),
        payments.filter(pl.col("loan_key").is_in(keys)),
        holds,
        conventions,
        before,
    ).select("loan_key", "bucket")
    return pl.concat([recounted, recomputed]).sort("loan_key")


def effective_payments(payments: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Payments that count as of `as_of`: valued on or before it and not voided by a reversal valued on or before it."""
    known = payments.filter(pl.col("value_date") <= as_of)
    is_reversal = pl.col("reverses_payment_key").is_not_null()
    voided = known.filter(is_reversal).get_column("reverses_payment_key")
    kept = known.filter(~is_reversal)
    if voided.len():
        kept = kept.filter(~pl.col("payment_key").is_in(voided.implode()))
    return kept.select("payment_key", "loan_key", "value_date", "amount")


def transitions(
    today: pl.DataFrame, yesterday: pl.DataFrame, conventions: Mapping[str, ProductConventions] | None = None
) -> pl.DataFrame:
    """(loan_key, transition) for each loan in `today`: its bucket move since `yesterday` (frames.TRANSITIONS).

    Buckets are ordered as in the products' conventions (the default buckets without conventions); a
    product's first bucket is "not delinquent". A loan absent yesterday counts as not delinquent yesterday.
    """
    order = _bucket_positions(conventions)
    unknown = sorted(set(today.get_column("bucket").drop_nulls().unique()) - set(order))
    if unknown:
        raise ConventionError("buckets", f"bucket labels {unknown} are not in any product's buckets")
    position = pl.col("bucket").replace_strict(order, default=None, return_dtype=pl.Int32)
    before = f.flag_sorted(yesterday.select("loan_key", prev=position), "loan_key")
    moved = (
        f.flag_sorted(today.select("loan_key", pos=position), "loan_key")
        .join(before, on="loan_key", how="left", maintain_order="left")
        .with_columns(pl.col("prev").fill_null(0))
    )
    now, prev = pl.col("pos"), pl.col("prev")
    return moved.select(
        "loan_key",
        transition=pl.when((prev == 0) & (now > 0))
        .then(pl.lit("new"))
        .when((prev > 0) & (now == 0))
        .then(pl.lit("cure"))
        .when(now > prev)
        .then(pl.lit("roll_forward"))
        .when(now < prev)
        .then(pl.lit("roll_back"))
        .otherwise(pl.lit("steady")),
    )


def _finish(
    loans: pl.DataFrame, state: Summary, groups: list[ProductConventions], pauses: pl.DataFrame, d: int, as_of: date
) -> pl.DataFrame:
    """Add credit, paused days, days past due and bucket to the per-loan amounts; conform to LEDGER_STATE."""
    oldest = state["oldest_unpaid_due_date"]
    dpd, paused = _days_past_due(loans.get_column("loan_key").to_numpy(), oldest, pauses, d)
    paid = loans.get_column("paid_total").to_numpy()
    columns = {
        "loan_key": loans.get_column("loan_key"),
        **{c: state[c] for c in SUMMARY_COLUMNS if c in f.LEDGER_STATE},
        "overdue_total": sum(state[f"overdue_{c}"] for c in AMOUNTS),
        "paid_total": paid,
        "credit_balance": paid - state["_settled"],
        "oldest_unpaid_due_date": _dates(oldest),
        "paused_days": paused,
        "days_past_due": dpd,
        "bucket": _buckets(loans.get_column("group").to_numpy(), dpd, groups),
        "next_due_date": _dates(state["next_due_date"]),
    }
    frame = (
        pl.DataFrame(columns)
        .with_columns(as_of=pl.lit(as_of))
        .select([pl.col(c).cast(t) for c, t in f.LEDGER_STATE.items()])
    )
    return f.flag_sorted(frame, "loan_key")


def _days_past_due(
    loan_key: np.ndarray, oldest: np.ndarray, pauses: pl.DataFrame, d: int
) -> tuple[np.ndarray, np.ndarray]:
    """Days past due on day `d` from the oldest unpaid due day (NO_DAY: none), less clock-paused days; and those."""
    owing = oldest < NO_DAY
    paused = np.zeros(loan_key.size, dtype=np.int64)
    if owing.any() and not pauses.is_empty():  # clock-paused days in (oldest unpaid due date, d]
        paused[owing] = paused_days(loan_key[owing], oldest[owing] + 1, np.full(int(owing.sum()), d), pauses)
    return np.where(owing, np.maximum(d - oldest - paused, 0), 0), paused


def _buckets(group: np.ndarray, dpd: np.ndarray, groups: list[ProductConventions]) -> pl.Series:
    """Each loan's bucket: its product's range holding the days past due; within the grace days the first one."""
    labels: list[str] = []
    code = np.zeros(dpd.size, dtype=np.int64)
    for g, conv in enumerate(groups):
        mine = group == g
        lows = np.array([b.min_dpd for b in conv.buckets])
        which = np.searchsorted(lows, dpd[mine], side="right") - 1
        code[mine] = len(labels) + np.where(dpd[mine] <= conv.grace_days, 0, which)
        labels.extend(b.label for b in conv.buckets)
    return pl.Series(labels, dtype=pl.String).gather(pl.Series(code))


def _dates(days: np.ndarray) -> pl.Series:
    """Day numbers as dates; NO_DAY as null."""
    valid = pl.Series(days < NO_DAY)
    return (
        pl.select(pl.when(valid).then(pl.Series(np.where(days < NO_DAY, days, 0), dtype=pl.Int32)))
        .to_series()
        .cast(pl.Date)
    )


def _bucket_positions(conventions: Mapping[str, ProductConventions] | None) -> dict[str, int]:
    """Each bucket label's position in its product's buckets (0 = not delinquent); the earliest wins on a clash."""
    products = list(conventions.values()) if conventions else [ProductConventions()]
    pos: dict[str, int] = {}
    for conv in products:
        for i, b in enumerate(conv.buckets):
            pos[b.label] = min(pos.get(b.label, i), i)
    return pos
