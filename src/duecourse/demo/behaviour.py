"""Repayment behaviour of the demo book: a monthly Markov chain over delinquency states, turned into payment events.

A loan's state in a month is how many monthly due dates its oldest unpaid instalment is behind
(0 = current ... 6 = M6+). Each month, from its due date, the next state is drawn from the roll-rate
matrix row of the current state and the borrower pays exactly what that move needs: the due
instalment (current -> current), nothing (a roll forward), or the missed instalments too (a cure or
roll-back), with a margin in whole yuan for the penalty interest of late days. Vectorised over loans:
the only Python loop is over months.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

EARLIEST_PAYMENT = -5  # days before its due date an instalment may be paid
LATEST_PAYMENT = 7  # days after the month's due date a delinquent borrower may pay
STATES = 7  # current, M1..M5, M6+


def day_number(d: date) -> int:
    return int((np.datetime64(d, "D") - np.datetime64("1970-01-01", "D")).astype(np.int64))


# Month table from 1900-01 to 2299-12: first day (days since 1970-01-01) and length of each month, so moving
# dates by months is integer indexing rather than calendar conversions of whole arrays.
_MONTHS = np.arange(np.datetime64("1900-01", "M"), np.datetime64("2300-01", "M"))
_FIRST_DAY = (_MONTHS.astype("datetime64[D]") - np.datetime64("1970-01-01", "D")).astype(np.int64)
_MONTH_LEN = np.diff(
    np.append(_FIRST_DAY, (np.datetime64("2300-01-01", "D") - np.datetime64("1970-01-01", "D")).astype(np.int64))
)
_MONTH_OFFSET = int((np.datetime64("1970-01", "M") - np.datetime64("1900-01", "M")).astype(np.int64))


def add_months(days: np.ndarray, months: np.ndarray | int) -> np.ndarray:
    """Day numbers moved by whole months, keeping the day of month and clamping to the month's last day."""
    days = np.asarray(days, dtype=np.int64)
    month = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) + _MONTH_OFFSET
    day_index = days - _FIRST_DAY[month]
    target = month + np.asarray(months, dtype=np.int64)
    out: np.ndarray = _FIRST_DAY[target] + np.minimum(day_index, _MONTH_LEN[target] - 1)
    return out


def padded_schedules(loans: pl.DataFrame, inst: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(due day numbers, instalment totals in minor units) as loans x max-term matrices, padded past each term."""
    n = loans.height
    width = int(loans["term"].to_numpy().max(initial=0))
    due = np.zeros((n, width), dtype=np.int64)
    total = np.zeros((n, width), dtype=np.int64)
    flat = inst.select(
        "i",
        pl.col("seq") - 1,
        pl.col("due_date").cast(pl.Int64).alias("due"),
        (pl.col("principal") + pl.col("interest") + pl.col("fee")).alias("total"),
    )
    rows = flat["i"].to_numpy()
    cols = flat["seq"].to_numpy()
    due[rows, cols] = flat["due"].to_numpy()
    total[rows, cols] = flat["total"].to_numpy()
    return due, total


def simulate(
    rng: np.random.Generator,
    loans: pl.DataFrame,
    inst: pl.DataFrame,
    rates: np.ndarray,
    horizon: date,
) -> pl.DataFrame:
    """Payment events up to `horizon`: loan index `i`, `value_date`, `amount` (minor units), `month`, `paid_to`.

    `paid_to` is the number of instalments fully paid after the event (the chain's bookkeeping, for holds).
    """
    n = loans.height
    term = loans["term"].to_numpy().astype(np.int64)
    penalty = loans["penalty_rate"].to_numpy().astype(np.int64)
    if np.any(penalty % 1000):
        raise ValueError("demo penalty rates must have at most five decimals")
    due, total = padded_schedules(loans, inst)
    cum = np.zeros((n, due.shape[1] + 1), dtype=np.int64)
    np.cumsum(total, axis=1, out=cum[:, 1:])
    last_due = due[np.arange(n), term - 1]
    thresholds = np.cumsum(rates, axis=1)[:, :-1]  # u above the j-th threshold means state > j
    end = day_number(horizon)

    paid = np.zeros(n, dtype=np.int64)
    events: list[pl.DataFrame] = []
    month = 1
    while True:
        owing = np.flatnonzero(paid < term)
        due_k = due[owing, np.minimum(month, term[owing]) - 1]
        matured = np.flatnonzero(month > term[owing])  # past maturity: a month on from the last due date
        due_k[matured] = add_months(last_due[owing[matured]], month - term[owing[matured]])
        live = due_k + EARLIEST_PAYMENT <= end
        if not live.any():
            break
        idx, due_k = owing[live], due_k[live]
        p = paid[idx]
        state = np.minimum(month - 1 - p, STATES - 1)
        nxt = (rng.random(len(idx))[:, None] > thresholds[state]).sum(axis=1)
        # M6+ -> M6+ pays nothing; every other move leaves exactly `nxt` months unpaid (or the loan paid off).
        new_paid = np.where(nxt == STATES - 1, p, np.maximum(p, np.minimum(month - nxt, term[idx])))
        regular = (state == 0) & (nxt == 0)
        offset = np.where(regular, _on_time_offsets(rng, len(idx)), _catch_up_offsets(rng, len(idx)))
        pays = new_paid > p
        idx, p, new_paid, day = idx[pays], p[pays], new_paid[pays], (due_k + offset)[pays]
        amount = cum[idx, new_paid] - cum[idx, p]
        late = np.flatnonzero(day > due[idx, p])  # the oldest instalment paid is paid late
        li = idx[late]
        amount[late] += _penalty_margin(due[li], total[li], p[late], new_paid[late], day[late], penalty[li])
        events.append(
            pl.DataFrame(
                {
                    "i": idx,
                    "value_date": day,
                    "amount": amount,
                    "month": np.full(len(idx), month, dtype=np.int64),
                    "paid_to": new_paid,
                }
            )
        )
        paid[idx] = new_paid
        month += 1
    schema = {"i": pl.Int64, "value_date": pl.Int64, "amount": pl.Int64, "month": pl.Int64, "paid_to": pl.Int64}
    frame = pl.concat(events) if events else pl.DataFrame(schema=schema)
    return frame.with_columns(pl.col("value_date").cast(pl.Int32).cast(pl.Date))


def _catch_up_offsets(rng: np.random.Generator, m: int) -> np.ndarray:
    """Days from the month's due date for a delinquent borrower who pays: 60% in the five days before, the rest
    within a week after. Paying around the due date (not weeks later) keeps a borrower who stays one month
    behind in M1 on every day of the month, as the monthly roll rates assume."""
    u = rng.random(m)
    return np.where(u < 0.6, rng.integers(EARLIEST_PAYMENT, 1, m), rng.integers(1, LATEST_PAYMENT + 1, m))


def _on_time_offsets(rng: np.random.Generator, m: int) -> np.ndarray:
    """Days from due date for a borrower who keeps up: 65% a few days early, 20% on the day, 15% 1-4 days late."""
    u = rng.random(m)
    early = rng.integers(EARLIEST_PAYMENT, 0, m)
    late = rng.integers(1, 5, m)
    return np.where(u < 0.65, early, np.where(u < 0.85, 0, late))


def _penalty_margin(
    due: np.ndarray,
    total: np.ndarray,
    paid_from: np.ndarray,
    paid_to: np.ndarray,
    day: np.ndarray,
    penalty_rate: np.ndarray,
) -> np.ndarray:
    """Whole yuan covering the penalty interest of the instalments paid late (rounded up, plus one yuan).

    Overestimated on purpose (penalty on the whole instalment over a 360-day year) so that a payment
    meant to clear instalments does clear them; the few yuan over become the loan's credit.
    """
    cols = np.arange(due.shape[1])[None, :]
    covered = (cols >= paid_from[:, None]) & (cols < paid_to[:, None])
    late_days = np.maximum(day[:, None] - due, 0) * covered
    exposure = (total * late_days).sum(axis=1)  # minor-unit days
    per_mille = penalty_rate // 1000  # rate scaled by 1e5
    yuan = -(-(exposure * per_mille) // (100_000 * 360 * 100))
    return np.where(exposure > 0, (yuan + 1) * 100, 0)
