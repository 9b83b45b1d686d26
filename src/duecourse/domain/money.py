"""Exact money: integer minor units inside frames, `Decimal` with an explicit rounding mode at the edges.

Floats never touch money. A `RoundingMode` names the rule used wherever an exact quotient has to
become a whole number of minor units; `round_div` is the single integer implementation of those
rules, shared by the scalar (reference) code and mirrored by `ledger.rounding` for frames.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal
from enum import Enum
from typing import Final


class RoundingMode(str, Enum):
    """How an exact amount becomes a whole number of rounding units."""

    HALF_UP = "half_up"  # 0.5 goes away from zero: the common commercial rule in CN and US retail lending
    HALF_EVEN = "half_even"  # banker's rounding: no drift over many postings
    DOWN = "down"  # truncate: never charge the debtor more than the exact amount
    UP = "up"  # away from zero

    @property
    def decimal_rounding(self) -> str:
        return _DECIMAL_ROUNDING[self]


_DECIMAL_ROUNDING: Final = {
    RoundingMode.HALF_UP: ROUND_HALF_UP,
    RoundingMode.HALF_EVEN: ROUND_HALF_EVEN,
    RoundingMode.DOWN: ROUND_DOWN,
    RoundingMode.UP: ROUND_UP,
}

# ISO 4217 minor-unit exponents for the currencies DueCourse books. An unknown currency is an error,
# never a guess.
MINOR_UNIT_EXPONENT: Final[dict[str, int]] = {"CNY": 2, "USD": 2, "GBP": 2, "EUR": 2, "HKD": 2, "TWD": 2, "JPY": 0}


def minor_exponent(currency: str) -> int:
    try:
        return MINOR_UNIT_EXPONENT[currency]
    except KeyError:
        raise ValueError(f"unknown currency {currency!r}; known: {', '.join(sorted(MINOR_UNIT_EXPONENT))}") from None


def round_div(numerator: int, denominator: int, mode: RoundingMode, unit: int = 1) -> int:
    """`numerator / denominator` rounded to a whole multiple of `unit` by `mode` (integers only, any sign)."""
    if denominator <= 0 or unit <= 0:
        raise ValueError("denominator and unit must be positive")
    den = denominator * unit
    sign = -1 if numerator < 0 else 1
    q, r = divmod(abs(numerator), den)
    if r:
        twice = 2 * r
        if mode is RoundingMode.UP:
            q += 1
        elif mode is RoundingMode.HALF_UP:
            q += twice >= den
        elif mode is RoundingMode.HALF_EVEN:
            q += twice > den or (twice == den and q % 2 == 1)
    return sign * q * unit


def to_minor(amount: Decimal | str | int, currency: str) -> int:
    """Parse a major-unit amount ("1234.56") into minor units, refusing anything finer than the minor unit."""
    value = Decimal(amount) if not isinstance(amount, Decimal) else amount
    if not value.is_finite():
        raise ValueError(f"amount {amount!r} is not a finite number")
    scaled = value.scaleb(minor_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"amount {amount!r} has more decimals than {currency} allows")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    """Minor units back to an exact `Decimal` in major units, with the currency's number of decimals."""
    exp = minor_exponent(currency)
    return Decimal(minor).scaleb(-exp).quantize(Decimal(1).scaleb(-exp))


def format_money(minor: int, currency: str) -> str:
    return f"{from_minor(minor, currency):,} {currency}"


RATE_SCALE: Final = 10**8
"""Annual rates travel in frames as integers scaled by 1e8 (0.24 -> 24_000_000), so a rate has at
most eight decimals and rate arithmetic stays integral."""


def rate_to_scaled(rate: Decimal | str) -> int:
    value = Decimal(rate)
    scaled = value * RATE_SCALE
    if scaled != scaled.to_integral_value():
        raise ValueError(f"rate {rate!r} has more than 8 decimals")
    return int(scaled)
