"""Monthly roll-rate matrices: how accounts move between delinquency buckets from one month to the next.

Used two ways: estimated from real repayment-status histories (the UCI credit-card data) to drive the
demo book's behaviour, and computed from DueCourse's own daily snapshots for the roll-rate report.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

MONTHLY_STATES: tuple[str, ...] = ("current", "M1", "M2", "M3", "M4", "M5", "M6+")

# UCI repayment status columns in calendar order: April (PAY_6) to September 2005 (PAY_0).
UCI_STATUS_COLUMNS: tuple[str, ...] = ("PAY_6", "PAY_5", "PAY_4", "PAY_3", "PAY_2", "PAY_0")


def uci_state(code: pl.Expr) -> pl.Expr:
    """Map a UCI status code to a monthly bucket index (0 = current ... 6 = M6+).

    Codes -2, -1 and 0 (no use, paid duly, revolving minimum paid) are current. In PAY_2..PAY_6 the
    code 1 is almost absent and accounts enter delinquency at code 2, so codes 1 and 2 both mean one
    missed payment (M1); code k >= 3 is M(k-1), capped at M6+. With this reading no account moves
    more than one bucket forward in a month, as a monthly ladder requires.
    """
    return pl.when(code <= 0).then(0).when(code <= 2).then(1).otherwise(pl.min_horizontal(code - 1, pl.lit(6)))


@dataclass(frozen=True)
class RollRateMatrix:
    states: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]  # counts[i][j]: accounts in state i one month moving to state j the next

    def rates(self) -> list[list[float]]:
        """Row-normalised transition probabilities (statistics, not money: floats are right here)."""
        out = []
        for row in self.counts:
            total = sum(row)
            out.append([c / total if total else 0.0 for c in row])
        return out

    def to_json(self) -> dict[str, Any]:
        return {"states": list(self.states), "counts": [list(r) for r in self.counts], "rates": self.rates()}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RollRateMatrix:
        return cls(tuple(raw["states"]), tuple(tuple(int(c) for c in r) for r in raw["counts"]))


def count_matrix(pairs: pl.DataFrame, states: Sequence[str]) -> RollRateMatrix:
    """`pairs` has integer columns `from_state`, `to_state` (indexes into `states`)."""
    n = len(states)
    counts = [[0] * n for _ in range(n)]
    for f, t, c in pairs.group_by("from_state", "to_state").len().iter_rows():
        counts[f][t] = int(c)
    return RollRateMatrix(tuple(states), tuple(tuple(r) for r in counts))


def estimate_from_uci(uci: pl.DataFrame) -> RollRateMatrix:
    states = uci.select([uci_state(pl.col(c)).alias(c) for c in UCI_STATUS_COLUMNS])
    pairs = pl.concat(
        states.select(pl.col(a).alias("from_state"), pl.col(b).alias("to_state"))
        for a, b in itertools.pairwise(UCI_STATUS_COLUMNS)
    )
    return count_matrix(pairs, MONTHLY_STATES)
