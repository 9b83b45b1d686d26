"""The rule of `ledger.schedule.generate_schedule`, vectorised over many loans for the demo generator and the bench.

Same due dates (start plus k months, clamped to the month's end), same interest per period for each
day count, same rounding (`domain.money.round_div` by the product's mode and unit), the last
instalment taking the remainder. Interest is exact rational arithmetic on integers; the equal
instalment itself is computed once per distinct (principal, rate, term, rounding) in `Decimal`,
exactly as `generate_schedule` does. tests/unit/demo/test_schedules.py proves equality to the fen.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, localcontext

import numpy as np
import polars as pl

from duecourse.demo.behaviour import add_months
from duecourse.domain.conventions import DayCount, ProductConventions
from duecourse.domain.money import RATE_SCALE, RoundingMode, round_div


def round_div_np(numerator: np.ndarray, denominator: np.ndarray | int, mode: RoundingMode, unit: int) -> np.ndarray:
    """`round_div` for non-negative integer arrays."""
    den = np.asarray(denominator, dtype=np.int64) * unit
    q, r = np.divmod(numerator, den)
    if mode is RoundingMode.UP:
        q = q + (r > 0)
    elif mode is RoundingMode.HALF_UP:
        q = q + (2 * r >= den) * (r > 0)
    elif mode is RoundingMode.HALF_EVEN:
        q = q + ((2 * r > den) | ((2 * r == den) & (q % 2 == 1))) * (r > 0)
    out: np.ndarray = q * unit
    return out


def _days_30_360(prev: np.ndarray, due: np.ndarray) -> np.ndarray:
    """30/360 US (NASD) days between day numbers, as `ledger.schedule.days_30_360`."""

    def parts(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dd = d.astype("datetime64[D]")
        y = dd.astype("datetime64[Y]")
        m = dd.astype("datetime64[M]")
        return (
            y.astype(np.int64) + 1970,
            (m - y.astype("datetime64[M]")).astype(np.int64) + 1,
            (dd - m.astype("datetime64[D]")).astype(np.int64) + 1,
        )

    y1, m1, day1 = parts(prev)
    y2, m2, day2 = parts(due)
    d1 = np.minimum(day1, 30)
    d2 = np.where((day2 == 31) & (d1 < 30), day2, np.minimum(day2, 30))
    out: np.ndarray = 360 * (y2 - y1) + 30 * (m2 - m1) + (d2 - d1)
    return out


def _annuity(principal: int, rate_scaled: int, term: int, conv: ProductConventions) -> int:
    """The equal instalment, computed as `generate_schedule` computes it."""
    with localcontext() as ctx:
        ctx.prec = 50
        r = Decimal(rate_scaled) / RATE_SCALE / 12
        value = Decimal(principal) / term if r == 0 else principal * r / (1 - (1 + r) ** -term)
        num, den = value.as_integer_ratio()
        return round_div(num, den, conv.rounding_mode, conv.rounding_unit)


def schedules(loans: pl.DataFrame, conventions: Mapping[str, ProductConventions]) -> pl.DataFrame:
    """Instalments (`i`, seq, due_date, principal, interest, fee) of loans with `i`, product, principal (minor),
    annual_rate (scaled), term, start_date and method; sorted by `i` then seq."""
    term = loans["term"].to_numpy().astype(np.int64)
    principal = loans["principal"].to_numpy().astype(np.int64)
    rate = loans["annual_rate"].to_numpy().astype(np.int64)
    method = loans["method"].to_numpy()
    product = loans["product"].to_numpy()
    start = loans["start_date"].cast(pl.Int64).to_numpy()

    # Per loan: its product's rounding and day count (the same convention object for every loan of a product).
    codes = sorted(conventions)
    which = np.searchsorted(np.array(codes), product)
    payment = np.zeros(len(loans), dtype=np.int64)
    per_period_principal = np.zeros(len(loans), dtype=np.int64)
    for k, code in enumerate(codes):
        conv = conventions[code]
        sel = which == k
        per_period_principal[sel] = round_div_np(principal[sel], term[sel], conv.rounding_mode, conv.rounding_unit)
        annuity = sel & (method == "equal_instalment")
        keys = pl.DataFrame({"p": principal[annuity], "r": rate[annuity], "n": term[annuity]})
        # Decimal work once per distinct loan shape (a book has far fewer shapes than loans), joined back.
        distinct = keys.unique()
        distinct = distinct.with_columns(
            pmt=pl.Series([_annuity(p, r, n, conv) for p, r, n in distinct.iter_rows()], dtype=pl.Int64)
        )
        payment[annuity] = keys.join(distinct, on=["p", "r", "n"], how="left", maintain_order="left")["pmt"].to_numpy()

    # Built as loans x seq matrices and flattened row by row: the result comes out sorted by (i, seq) with no sort.
    width = int(term.max(initial=0))
    due_m = np.zeros((len(loans), width), dtype=np.int64)
    principal_m = np.zeros((len(loans), width), dtype=np.int64)
    interest_m = np.zeros((len(loans), width), dtype=np.int64)
    balance = principal.copy()
    previous_due = start.copy()
    for seq in range(1, width + 1):
        live = np.flatnonzero(term >= seq)
        prev = previous_due[live]
        due = add_months(start[live], seq)
        previous_due[live] = due
        bal = balance[live]
        interest = np.zeros(len(live), dtype=np.int64)
        for k, code in enumerate(codes):
            conv = conventions[code]
            sel = which[live] == k
            if conv.day_count is DayCount.PER_PERIOD:
                num, den = bal[sel] * rate[live][sel], 12 * RATE_SCALE
            elif conv.day_count is DayCount.THIRTY_360:
                num, den = bal[sel] * rate[live][sel] * _days_30_360(prev[sel], due[sel]), 360 * RATE_SCALE
            else:
                num, den = bal[sel] * rate[live][sel] * (due[sel] - prev[sel]), 365 * RATE_SCALE
            interest[sel] = round_div_np(num, den, conv.rounding_mode, conv.rounding_unit)
        m = method[live]
        part = np.where(
            m == "equal_instalment",
            np.minimum(bal, np.maximum(payment[live] - interest, 0)),
            np.where(m == "equal_principal", np.minimum(bal, per_period_principal[live]), 0),
        )
        part = np.where(term[live] == seq, bal, part)  # the last instalment takes the remainder
        balance[live] = bal - part
        due_m[live, seq - 1], principal_m[live, seq - 1], interest_m[live, seq - 1] = due, part, interest
    present = np.arange(width)[None, :] < term[:, None]
    return pl.DataFrame(
        {
            "i": np.repeat(loans["i"].to_numpy(), term),
            "seq": np.broadcast_to(np.arange(1, width + 1, dtype=np.int32), present.shape)[present],
            "due_date": due_m[present].astype(np.int32),
            "principal": principal_m[present],
            "interest": interest_m[present],
            "fee": np.zeros(int(present.sum()), dtype=np.int64),
        }
    ).with_columns(pl.col("due_date").cast(pl.Date))
