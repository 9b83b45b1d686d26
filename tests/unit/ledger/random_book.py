"""Random small books for cross-checking the engine against the reference ledger (seeded, reproducible).

Mixed products cover every convention the engine specialises on: both waterfalls and custom component
orders, grace days, the three day counts, all rounding modes and units, holds that pause penalty. Borrowers
behave differently: on time, early, late, partly, not at all and then catching up, prepaying, overpaying,
several payments a day; some payments bounce (reversals); some loans have holds on the loan or the borrower.
A few schedules are edited to have two instalments due the same day or instalments of zero.
"""

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
    "PRINFIRST": ProductConventions(
        allocation_order=("principal", "interest", "fee", "penalty"), grace_days=5, rounding_unit=10
    ),
    "CFGRACE": ProductConventions(
        allocation_mode=AllocationMode.COMPONENT_FIRST,
        grace_days=2,
        holds_pause_penalty=True,
        rounding_mode=RoundingMode.HALF_EVEN,
    ),
}
BEHAVIOURS = ("on_time", "early", "late", "partial", "silent_then_catch_up", "prepay", "overpay", "many_a_day", "none")


@dataclass
class Book:
    loans: pl.DataFrame
    instalments: pl.DataFrame
    payments: pl.DataFrame
    holds: pl.DataFrame

    def rows(self, name: str) -> list[dict[str, Any]]:
        frame: pl.DataFrame = getattr(self, name)
        return frame.to_dicts()


def random_book(seed: int, n_loans: int = 200, odd_schedules: bool = True) -> Book:
    rnd = random.Random(seed)
    loans: list[tuple[Any, ...]] = []
    insts: list[tuple[Any, ...]] = []
    pays: list[tuple[Any, ...]] = []
    holds: list[tuple[Any, ...]] = []
    pk = 0
    for n in range(n_loans):
        lk = 7 * n + 3  # keys need not be dense
        borrower = n // 2 + 1  # two loans per borrower, so borrower-level holds cover both
        product = rnd.choice(list(PRODUCTS))
        term = rnd.choice([1, 3, 6, 12])
        start = date(2025, 1, 1) + timedelta(days=rnd.randrange(0, 300))
        principal = rnd.randrange(10_000, 3_000_000)
        rate = Decimal(rnd.choice(["0", "0.12", "0.1825", "0.2399"]))
        penalty = Decimal(rnd.choice(["0", "0.1825", "0.36", "0.5", "1.2"]))
        method = rnd.choice(METHODS)
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
        schedule = [
            [s.seq, s.due_date, s.principal, s.interest, rnd.choice([0, 0, 0, 1500])]
            for s in generate_schedule(principal, rate, term, start, method, PRODUCTS[product])
        ]
        if odd_schedules and term > 2 and rnd.random() < 0.05:
            schedule[1][1] = schedule[0][1]  # two instalments due the same day
        if odd_schedules and n == 0:
            schedule = []  # a loan whose schedule is missing owes nothing; its payments are credit
        insts.extend((lk, *row) for row in schedule)
        owed = [row[2] + row[3] + row[4] for row in schedule]
        for day, amount in _payments(rnd, rnd.choice(BEHAVIOURS), [row[1] for row in schedule], owed, start):
            pk += 1
            pays.append((pk, lk, day, amount, None))
            if rnd.random() < 0.08:  # bounced later
                pk += 1
                pays.append((pk, lk, day + timedelta(days=rnd.randrange(0, 25)), amount, pk - 1))
        if rnd.random() < 0.25:
            first = start + timedelta(days=rnd.randrange(10, 30 * term + 40))
            last = None if rnd.random() < 0.3 else first + timedelta(days=rnd.randrange(0, 45))
            on_loan = lk if rnd.random() < 0.6 else None
            holds.append((len(holds) + 1, borrower, on_loan, "dispute", first, last, rnd.random() < 0.8, True))
    pays.append((pk + 1, 999_999, date(2025, 6, 1), 5_000, None))  # a payment of an unknown loan is ignored
    return Book(
        pl.DataFrame(loans, schema=f.LOANS, orient="row"),
        pl.DataFrame(insts, schema=f.INSTALMENTS, orient="row"),
        pl.DataFrame(pays, schema=f.PAYMENTS, orient="row").sample(fraction=1.0, shuffle=True, seed=seed),
        pl.DataFrame(holds, schema=f.HOLDS, orient="row"),
    )


def _payments(
    rnd: random.Random, behaviour: str, dues: list[date], owed: list[int], start: date
) -> list[tuple[date, int]]:
    out: list[tuple[date, int]] = []
    for k, (due, amount) in enumerate(zip(dues, owed, strict=True)):
        if behaviour == "on_time":
            out.append((due, amount))
        elif behaviour == "early":
            out.append((due - timedelta(days=rnd.randrange(1, 10)), amount))
        elif behaviour == "late":
            out.append((due + timedelta(days=rnd.randrange(1, 25)), amount + rnd.choice([0, 0, 300])))
        elif behaviour == "partial" and rnd.random() < 0.8:
            out.append((due + timedelta(days=rnd.randrange(-3, 40)), max(1, amount * rnd.randrange(10, 90) // 100)))
        elif behaviour == "many_a_day":
            half = amount // 2
            out += [(due + timedelta(days=2), half), (due + timedelta(days=2), amount - half + 7)]
        elif behaviour == "silent_then_catch_up" and k == len(dues) // 2:
            out.append((due + timedelta(days=rnd.randrange(0, 60)), sum(owed[: k + 1]) + rnd.randrange(0, 20_000)))
        elif behaviour == "prepay" and k == 0:
            out.append((start + timedelta(days=5), sum(owed[:2])))
    if behaviour == "overpay" and dues:
        out.append((dues[0] - timedelta(days=2), sum(owed) + 12_345))
    return out
