"""PROVISIONAL: vectorised schedules until duecourse.ledger.schedule lands; replaced by its exact rule."""

from __future__ import annotations

import numpy as np
import polars as pl

from duecourse.demo.behaviour import add_months
from duecourse.domain.money import RATE_SCALE


def schedules(loans: pl.DataFrame) -> pl.DataFrame:
    n = loans.height
    term = loans["term"].to_numpy().astype(np.int64)
    principal = loans["principal"].to_numpy().astype(np.int64)
    rate = loans["annual_rate"].to_numpy().astype(np.float64) / RATE_SCALE / 12
    method = loans["method"].to_numpy()
    start = loans["start_date"].cast(pl.Int64).to_numpy()
    annuity = np.round(principal * rate / (1 - (1 + rate) ** (-term.astype(np.float64)))).astype(np.int64)
    bal = principal.copy()
    parts = []
    for k in range(1, int(term.max()) + 1):
        live = np.flatnonzero(term >= k)
        interest = np.round(bal[live] * rate[live]).astype(np.int64)
        last = term[live] == k
        m = method[live]
        pr = np.where(m == "equal_instalment", annuity[live] - interest,
                      np.where(m == "equal_principal", principal[live] // term[live], 0))
        pr = np.where(last, bal[live], pr)
        parts.append(pl.DataFrame({"i": live.astype(np.int64), "seq": np.full(len(live), k, dtype=np.int32),
                                   "due_date": add_months(start[live], k).astype(np.int32),
                                   "principal": pr, "interest": interest, "fee": np.zeros(len(live), np.int64)}))
        bal[live] -= pr
    _ = n
    return pl.concat(parts).with_columns(pl.col("due_date").cast(pl.Date)).sort("i", "seq")
