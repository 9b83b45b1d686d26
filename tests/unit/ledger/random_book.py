"""Random small books for cross-checking the engine against the reference ledger."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import polars as pl

from duecourse.domain import frames as f
from duecourse.domain.conventions import AllocationMode, DayCount, ProductConventions
from duecourse.domain.money import RoundingMode, rate_to_scaled
from duecourse.ledger.schedule import METHODS, generate_schedule

PRODUCTS: dict[str, ProductConventions] = {
    "DEFAULT": ProductConventions(),
    "GRACE": ProductConventions(grace_days=3, rounding_mode=RoundingMode.HALF_EVEN, day_count=DayCount.PER_PERIOD),
    "COMPFIRST": ProductConventions(
        allocation_mode=AllocationMode.COMPONENT_FIRST,
        allocation_order=("interest", "penalty", "principal", "fee"),
        rounding_mode=RoundingMode.DOWN,
        day_count=DayCount.THIRTY_360,
    ),
    "PAUSEPEN": ProductConventions(holds_pause_penalty=True, rounding_mode=RoundingMode.UP, rounding_unit=100),
}


@dataclass
class Book:
    loans: pl.DataFrame
    instalments: pl.DataFrame
    payments: pl.DataFrame
    holds: pl.DataFrame

    def rows(self, name: str) -> list[dict[str, Any]]:
        frame: pl.DataFrame = getattr(self, name)
        return frame.to_dicts()


def random_book(seed: int, n_loans: int = 40) -> Book:
    rnd = random.Random(seed)
    loans, insts, pays, holds = [], [], [], []
    pk = hk = 0
    for lk in range(1, n_loans + 1):
        product = rnd.choice(list(PRODUCTS))
        term = rnd.choice([1, 3, 6, 12])
        start = date(2025, 1, 1) + timedelta(days=rnd.randrange(0, 200))
        principal = rnd.randrange(50_000, 5_000_000)
        rate = Decimal(rnd.choice(["0", "0.12", "0.1825", "0.2399"]))
        penalty = Decimal(rnd.choice(["0", "0.1825", "0.36", "0.5"]))
        method = rnd.choice(METHODS)
        borrower = (lk + 1) // 2  # two loans per borrower, so borrower-level holds cover both
        loans.append(
            (
                lk,
                f"L{lk}",
                borrower,
                product,
                "CNY",
                principal,
                rate_to_scaled(rate),
                rate_to_scaled(penalty),
                term,
                start,
                method,
            )
        )
        schedule = generate_schedule(principal, rate, term, start, method, PRODUCTS[product])
        for s in schedule:
            fee = rnd.choice([0, 0, 1500])
            insts.append((lk, s.seq, s.due_date, s.principal, s.interest, fee))
        owed = sum(s.principal + s.interest for s in schedule)
        for _ in range(rnd.randrange(0, term + 3)):
            pk += 1
            when = start + timedelta(days=rnd.randrange(0, 30 * term + 60))
            amount = rnd.choice([owed // term, owed // term // 2, owed // (term * 3) + 1, owed // term + 777])
            pays.append((pk, lk, when, max(amount, 1), None))
            if rnd.random() < 0.1:
                pk += 1
                pays.append((pk, lk, when + timedelta(days=rnd.randrange(0, 20)), max(amount, 1), pk - 1))
        if rnd.random() < 0.3:
            hk += 1
            hs = start + timedelta(days=rnd.randrange(20, 30 * term + 30))
            he = None if rnd.random() < 0.3 else hs + timedelta(days=rnd.randrange(0, 40))
            holds.append(
                (hk, borrower, None if rnd.random() < 0.3 else lk, "dispute", hs, he, rnd.random() < 0.8, True)
            )
    return Book(
        pl.DataFrame(loans, schema=f.LOANS, orient="row"),
        pl.DataFrame(insts, schema=f.INSTALMENTS, orient="row"),
        pl.DataFrame(pays, schema=f.PAYMENTS, orient="row"),
        pl.DataFrame(holds, schema=f.HOLDS, orient="row"),
    )
