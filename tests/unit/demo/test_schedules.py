"""The vectorised schedules equal `ledger.schedule.generate_schedule` to the fen, loan by loan."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
import polars as pl
import pytest

from duecourse.demo.book import PRODUCTS, product_conventions
from duecourse.demo.schedules import schedules
from duecourse.domain.conventions import ProductConventions
from duecourse.domain.money import RATE_SCALE, RoundingMode, round_div
from duecourse.ledger.schedule import generate_schedule


def _reference(loans: pl.DataFrame, conventions: dict[str, ProductConventions]) -> pl.DataFrame:
    rows = []
    for i, product, principal, rate, term, start, method in loans.select(
        "i", "product", "principal", "annual_rate", "term", "start_date", "method"
    ).iter_rows():
        for inst in generate_schedule(principal, Decimal(rate) / RATE_SCALE, term, start, method, conventions[product]):
            rows.append((i, inst.seq, inst.due_date, inst.principal, inst.interest, inst.fee))
    return pl.DataFrame(
        rows,
        schema={
            "i": pl.Int64,
            "seq": pl.Int32,
            "due_date": pl.Date,
            "principal": pl.Int64,
            "interest": pl.Int64,
            "fee": pl.Int64,
        },
        orient="row",
    )


def _random_loans(n: int, seed: int, codes: list[str], methods: list[str]) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    # Month-end and leap-day starts, odd principals and rates whose twelfth does not terminate.
    starts = [date(2024, 1, 31), date(2024, 2, 29), date(2025, 8, 31), date(2026, 3, 30), date(2025, 12, 15)]
    return pl.DataFrame(
        {
            "i": np.arange(n, dtype=np.int64),
            "product": rng.choice(codes, n),
            "principal": rng.integers(1, 50_000_000, n),
            "annual_rate": rng.choice([0, 1, 9_600_000, 18_250_000, 23_999_999, 36_000_000, 7_300_000], n),
            "term": rng.integers(1, 37, n).astype(np.int32),
            "start_date": [starts[k] for k in rng.integers(0, len(starts), n)],
            "method": rng.choice(methods, n),
        }
    )


def test_demo_products_match_generate_schedule() -> None:
    conventions = product_conventions()
    loans = _random_loans(1500, 1, [p.code for p in PRODUCTS], [p.method for p in PRODUCTS])
    assert schedules(loans, conventions).equals(_reference(loans, conventions))


@pytest.mark.parametrize(
    "conv",
    [
        {"rounding_mode": "half_even", "day_count": "30/360"},
        {"rounding_mode": "down", "rounding_unit": 100, "day_count": "actual/365"},
        {"rounding_mode": "up", "day_count": "per_period"},
        {"rounding_mode": "half_up", "rounding_unit": 10, "day_count": "30/360"},
    ],
)
def test_every_method_day_count_and_rounding_matches(conv: dict[str, object]) -> None:
    conventions = {"X": ProductConventions.from_dict(conv)}
    loans = _random_loans(600, 2, ["X"], ["equal_instalment", "equal_principal", "interest_only"])
    assert schedules(loans, conventions).equals(_reference(loans, conventions))


def test_rounding_helper_agrees_with_round_div_on_halves() -> None:
    from duecourse.demo.schedules import round_div_np

    num = np.arange(0, 400, dtype=np.int64)
    for mode in RoundingMode:
        for den, unit in ((4, 1), (10, 1), (3, 10), (8, 5)):
            assert round_div_np(num, den, mode, unit).tolist() == [round_div(int(x), den, mode, unit) for x in num]
