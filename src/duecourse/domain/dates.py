"""How dates are written for people: one list of English month names for messages and letters."""

from __future__ import annotations

from typing import Final

MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
