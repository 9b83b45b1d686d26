"""Repayment schedules in exact decimal money: equal instalment, equal principal and interest-only (bullet).

The last instalment always takes the rounding remainder, so principal sums exactly to the loan.
Due dates are the start date plus k months, clamped to the month's end, always counted from the
start day (31 Jan -> 28/29 Feb -> 31 Mar), never chained from the previous due date.
Interest of a period is computed as an exact fraction and rounded once (`domain.money.round_div`),
so a value that is exactly half a unit rounds as the product's mode says, never by accident of precision.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext
from fractions import Fraction

from duecourse.domain.conventions import DayCount, ProductConventions
from duecourse.domain.money import round_div

METHODS: tuple[str, ...] = ("equal_instalment", "equal_principal", "interest_only")


@dataclass(frozen=True)
class ScheduledInstalment:
    """One contractual instalment; amounts in minor units."""

    seq: int
    due_date: date
    principal: int
    interest: int
    fee: int = 0


def add_months(start: date, months: int) -> date:
    """`start` plus `months` calendar months, clamped to the end of the target month."""
    y, m = divmod(start.month - 1 + months, 12)
    year, month = start.year + y, m + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def days_30_360(a: date, b: date) -> int:
    """30/360 US (NASD) day count from `a` to `b`: a 31st counts as the 30th (the end day only if the start is 30+)."""
    d1 = min(a.day, 30)
    d2 = b.day if (b.day == 31 and d1 < 30) else min(b.day, 30)
    return 360 * (b.year - a.year) + 30 * (b.month - a.month) + (d2 - d1)


def _round(value: Fraction | Decimal, conv: ProductConventions) -> int:
    """A non-negative exact amount of minor units rounded to the product's unit by its mode."""
    num, den = value.as_integer_ratio()
    return round_div(num, den, conv.rounding_mode, conv.rounding_unit)


def period_interest(balance: int, annual_rate: Decimal, prev: date, due: date, conv: ProductConventions) -> int:
    """Interest on `balance` for the period (prev, due] under the product's day count, rounded once."""
    rate = Fraction(annual_rate)
    if conv.day_count is DayCount.PER_PERIOD:
        factor = rate / 12
    elif conv.day_count is DayCount.THIRTY_360:
        factor = rate * days_30_360(prev, due) / 360
    else:
        factor = rate * (due - prev).days / 365
    return _round(balance * factor, conv)


def equal_payment(principal: int, annual_rate: Decimal, term: int, conv: ProductConventions) -> int:
    """The annuity P*r/(1-(1+r)^-n) at the nominal monthly rate r = annual/12, rounded (P/n when r = 0).

    Computed in Decimal at 50 digits (the power is irrational in general), far beyond any rounding
    boundary for amounts below 10^18 minor units; `demo.schedules` mirrors this expression exactly.
    """
    with localcontext() as ctx:
        ctx.prec = 50
        r = annual_rate / 12
        value = Decimal(principal) / term if r == 0 else principal * r / (1 - (1 + r) ** -term)
        return _round(value, conv)


def generate_schedule(
    principal: int, annual_rate: Decimal, term: int, start_date: date, method: str, conventions: ProductConventions
) -> list[ScheduledInstalment]:
    """The contractual schedule of a loan of `principal` minor units over `term` monthly instalments.

    - equal_instalment: constant payment (`equal_payment`); interest on the remaining balance, principal
      = payment - interest; the last instalment repays whatever principal is left.
    - equal_principal: principal P/n rounded; interest on the remaining balance; the last takes the remainder.
    - interest_only: interest each period, all principal in the last instalment (bullet).
    """
    if principal <= 0 or term <= 0:
        raise ValueError("principal and term must be positive")
    if annual_rate < 0:
        raise ValueError("annual_rate must not be negative")
    if method not in METHODS:
        raise ValueError(f"unknown repayment method {method!r}; known: {', '.join(METHODS)}")
    payment = equal_payment(principal, annual_rate, term, conventions) if method == "equal_instalment" else 0
    per_period_principal = _round(Fraction(principal, term), conventions)
    out: list[ScheduledInstalment] = []
    balance = principal
    prev = start_date
    for seq in range(1, term + 1):
        due = add_months(start_date, seq)
        interest = period_interest(balance, annual_rate, prev, due, conventions)
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
        prev = due
    return out
