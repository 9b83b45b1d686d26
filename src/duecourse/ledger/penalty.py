"""Penalty interest and the clock-pausing holds: the daily amount, rounded once, and the days that count.

A day's penalty on an instalment is round(unpaid principal x annual penalty rate / year days) by the product's
rounding mode and unit; a stretch of days is that amount times the number of days, so the result does not
depend on how events split a period. Holds that pause the clock are merged per loan into disjoint day
intervals, so overlapping holds count a day once.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from duecourse.domain.conventions import ProductConventions
from duecourse.domain.money import RATE_SCALE, RoundingMode

Array = np.ndarray


def round_div_expr(
    numerator: pl.Expr, denominator: int, mode: RoundingMode, unit: int, kind: type[pl.DataType]
) -> pl.Expr:
    """`domain.money.round_div` for non-negative integer numerators (of dtype `kind`) and a constant denominator."""
    den = denominator * unit
    q = numerator // den
    r = numerator - q * den
    if mode is RoundingMode.UP:
        q = q + (r > 0).cast(kind)
    elif mode is RoundingMode.HALF_UP:
        q = q + (2 * r >= den).cast(kind)
    elif mode is RoundingMode.HALF_EVEN:
        q = q + ((2 * r > den) | ((2 * r == den) & (q % 2 == 1))).cast(kind)
    return q * unit


def needs_int128(largest_principal: int, rate: Array) -> bool:
    """Whether principal x rate might overflow Int64 (then the product is computed in Int128)."""
    return largest_principal * int(rate.max(initial=0)) >= 1 << 62


def daily_penalty_expr(principal: pl.Expr, rate: pl.Expr, conv: ProductConventions, wide: bool) -> pl.Expr:
    """One day's penalty on `principal` at annual `rate` (scaled by RATE_SCALE), rounded once (Int64)."""
    kind = pl.Int128 if wide else pl.Int64
    exact = principal.cast(kind) * rate.cast(kind)
    per_day = RATE_SCALE * conv.day_count.year_days
    return round_div_expr(exact, per_day, conv.rounding_mode, conv.rounding_unit, kind).cast(pl.Int64)


def daily_penalty(principal: Array, rate: Array, conv: ProductConventions, wide: bool) -> Array:
    """`daily_penalty_expr` over arrays (in numpy while the product fits Int64)."""
    if not wide:
        den = RATE_SCALE * conv.day_count.year_days * conv.rounding_unit
        q, r = np.divmod(principal * rate, den)
        if conv.rounding_mode is RoundingMode.UP:
            q += r > 0
        elif conv.rounding_mode is RoundingMode.HALF_UP:
            q += 2 * r >= den
        elif conv.rounding_mode is RoundingMode.HALF_EVEN:
            q += (2 * r > den) | ((2 * r == den) & (q % 2 == 1))
        return np.asarray(q * conv.rounding_unit, dtype=np.int64)
    frame = pl.DataFrame({"p": principal, "r": rate}, schema={"p": pl.Int64, "r": pl.Int64})
    return np.asarray(frame.select(daily_penalty_expr(pl.col("p"), pl.col("r"), conv, wide)).to_series().to_numpy())


def pause_intervals(holds: pl.DataFrame, live: pl.DataFrame, d: int) -> pl.DataFrame:
    """Clock-pausing hold days of each live loan up to day `d`, as disjoint (loan_key, start, end) day intervals.

    A hold without a loan covers every loan of its borrower; an open hold (no end) runs to `d`.
    """
    h = holds.filter(pl.col("pauses_clock") & (pl.col("start_date").cast(pl.Int32) <= d)).select(
        "loan_key",
        "borrower_key",
        start=pl.col("start_date").cast(pl.Int32),
        end=pl.min_horizontal(pl.col("end_date").cast(pl.Int32).fill_null(d), pl.lit(d, pl.Int32)),
    )
    if h.is_empty():
        return pl.DataFrame(schema={"loan_key": pl.Int64, "start": pl.Int32, "end": pl.Int32})
    per_loan = h.filter(pl.col("loan_key").is_not_null()).select("loan_key", "start", "end")
    per_borrower = (
        h.filter(pl.col("loan_key").is_null())
        .drop("loan_key")
        .join(live.select("loan_key", "borrower_key"), on="borrower_key")
        .select("loan_key", "start", "end")
    )
    spans = pl.concat([per_loan, per_borrower]).filter(pl.col("end") >= pl.col("start")).sort("loan_key", "start")
    # Overlapping or touching holds merge, so a day covered twice counts once.
    reach = pl.col("end").cum_max().shift(1).over("loan_key")
    return (
        spans.with_columns(_block=(reach.is_null() | (pl.col("start") > reach + 1)).cum_sum())
        .group_by("loan_key", "_block")
        .agg(pl.col("start").min(), pl.col("end").max())
        .select("loan_key", "start", "end")
        .sort("loan_key", "start")
    )


def paused_days(loan_key: Array, first: Array, last: Array, pauses: pl.DataFrame) -> Array:
    """For each (loan, first, last): the loan's paused days within [first, last] (0 when last < first)."""
    counted = np.zeros(len(loan_key), dtype=np.int64)
    if pauses.is_empty() or len(loan_key) == 0:
        return counted
    # Few loans have holds: only their rows go through the join (the replay asks for every loan, every pass).
    paused_keys = np.unique(pauses.get_column("loan_key").to_numpy())
    at = np.minimum(np.searchsorted(paused_keys, loan_key), paused_keys.size - 1)
    rows = np.flatnonzero(paused_keys[at] == loan_key)
    if rows.size == 0:
        return counted
    probe = pl.DataFrame({"loan_key": loan_key[rows], "_a": first[rows], "_b": last[rows]}).with_row_index("_row")
    overlap = (
        pl.min_horizontal(pl.col("_b"), pl.col("end")) - pl.max_horizontal(pl.col("_a"), pl.col("start")) + 1
    ).clip(lower_bound=0)
    hits = probe.join(pauses, on="loan_key").group_by("_row").agg(_paused=overlap.cast(pl.Int64).sum())
    found = probe.join(hits, on="_row", how="left", maintain_order="left").get_column("_paused").fill_null(0)
    counted[rows] = found.to_numpy()
    return counted


def penalty_days(conv: ProductConventions, pauses: pl.DataFrame, loan_key: Array, first: Array, last: Array) -> Array:
    """Days first..last (inclusive) on which penalty accrues: all, less clock-paused days if the product says so."""
    days = np.maximum(last - first + 1, 0)
    if conv.holds_pause_penalty and not pauses.is_empty():
        days = days - paused_days(loan_key, first, last, pauses)
    return np.asarray(days)
