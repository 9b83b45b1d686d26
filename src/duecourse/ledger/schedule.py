"""Repayment schedules in exact decimal money: equal instalment, equal principal and interest-only (bullet).

The last instalment always takes the rounding remainder, so principal sums exactly to the loan.
Due dates are the start date plus k months, clamped to the month's end, always counted from the
start day (31 Jan -> 28/29 Feb -> 31 Mar), never chained from the previous due date.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext

from duecourse.domain.conventions import DayCount, ProductConventions
from duecourse.domain.money import round_div

METHODS = ("equal_instalment", "equal_principal", "interest_only")


@dataclass(frozen=True)
class ScheduledInstalment:
    seq: int
    due_date: date
    principal: int  # minor units
    interest: int
    fee: int = 0


def add_months(start: date, months: int) -> date:
    y, m = divmod(start.month - 1 + months, 12)
    year, month = start.year + y, m + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def days_30_360(a: date, b: date) -> int:
    """30/360 US (NASD) day count between two dates."""
    d1 = min(a.day, 30)
    d2 = b.day if (b.day == 31 and d1 < 30) else min(b.day, 30)
    return 360 * (b.year - a.year) + 30 * (b.month - a.month) + (d2 - d1)


def _round(value: Decimal, conv: ProductConventions) -> int:
    """A non-negative Decimal amount of minor units rounded to the product's unit by its mode."""
    num, exp = value.as_integer_ratio()
    return round_div(num, exp, conv.rounding_mode, conv.rounding_unit)


def _period_interest(balance: int, annual_rate: Decimal, prev: date, due: date, conv: ProductConventions) -> int:
    if conv.day_count is DayCount.PER_PERIOD:
        factor = annual_rate / 12
    elif conv.day_count is DayCount.THIRTY_360:
        factor = annual_rate * days_30_360(prev, due) / 360
    else:
        factor = annual_rate * (due - prev).days / 365
    return _round(balance * factor, conv)


def generate_schedule(
    principal: int, annual_rate: Decimal, term: int, start_date: date, method: str, conventions: ProductConventions
) -> list[ScheduledInstalment]:
    """The contractual schedule of a loan of `principal` minor units over `term` monthly instalments."""
    if principal <= 0 or term <= 0:
        raise ValueError("principal and term must be positive")
    if annual_rate < 0:
        raise ValueError("annual_rate must not be negative")
    if method not in METHODS:
        raise ValueError(f"unknown repayment method {method!r}; known: {', '.join(METHODS)}")
    dues = [add_months(start_date, k) for k in range(1, term + 1)]
    prevs = [start_date, *dues[:-1]]
    with localcontext() as ctx:
        ctx.prec = 50  # far beyond any rounding boundary for amounts below 10^18 minor units
        payment = 0
        if method == "equal_instalment":
            r = annual_rate / 12
            payment = (
                _round(Decimal(principal) / term, conventions)
                if r == 0
                else _round(principal * r / (1 - (1 + r) ** -term), conventions)
            )
        per_period_principal = _round(Decimal(principal) / term, conventions)
        out: list[ScheduledInstalment] = []
        balance = principal
        for seq, (prev, due) in enumerate(zip(prevs, dues), start=1):
            interest = _period_interest(balance, annual_rate, prev, due, conventions)
            if seq == term:
                part = balance  # the last instalment takes the remainder
            elif method == "equal_instalment":
                part = min(balance, max(payment - interest, 0))
            elif method == "equal_principal":
                part = min(balance, per_period_principal)
            else:
                part = 0
            out.append(ScheduledInstalment(seq, due, part, interest))
            balance -= part
    return out
