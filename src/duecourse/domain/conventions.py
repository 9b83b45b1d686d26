"""Per-product ledger conventions: lenders differ, so every convention is a setting with a documented default.

A product's conventions come from the book's `products.yaml` (see docs/book-format.md). Defaults are
chosen to match a typical mainland-China consumer instalment loan; each one is overridable.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from duecourse.domain.errors import ConventionError
from duecourse.domain.money import RoundingMode


class DayCount(str, Enum):
    """How interest on a schedule period and daily penalty interest are measured."""

    PER_PERIOD = "per_period"  # annual rate / 12 per monthly period; daily penalty on a 360-day year
    THIRTY_360 = "30/360"  # 30/360 US (NASD) days in a period / 360; daily penalty on a 360-day year
    ACTUAL_365 = "actual/365"  # actual days in a period / 365; daily penalty on a 365-day year

    @property
    def year_days(self) -> int:
        return 365 if self is DayCount.ACTUAL_365 else 360


class AllocationMode(str, Enum):
    """Order in which a payment meets what is owed."""

    INSTALMENT_FIRST = "instalment_first"  # oldest instalment first; within it, components in `allocation_order`
    COMPONENT_FIRST = "component_first"  # each component across all due instalments (oldest first), then future ones


COMPONENTS: tuple[str, ...] = ("penalty", "fee", "interest", "principal")


@dataclass(frozen=True)
class Bucket:
    """A named range of days past due, both ends inclusive; `max_dpd=None` is open-ended."""

    label: str
    min_dpd: int
    max_dpd: int | None


DEFAULT_BUCKETS: tuple[Bucket, ...] = (
    Bucket("current", 0, 0),
    Bucket("M1", 1, 30),
    Bucket("M2", 31, 60),
    Bucket("M3", 61, 90),
    Bucket("M4", 91, 120),
    Bucket("M5", 121, 150),
    Bucket("M6", 151, 180),
    Bucket("M6+", 181, None),
)


@dataclass(frozen=True)
class ProductConventions:
    """Ledger conventions of one product. See docs/ledger.md for what each one changes."""

    rounding_mode: RoundingMode = RoundingMode.HALF_UP
    rounding_unit: int = 1  # in minor units: 1 = fen/cent, 100 = whole yuan/dollars
    day_count: DayCount = DayCount.ACTUAL_365
    allocation_order: tuple[str, ...] = COMPONENTS
    allocation_mode: AllocationMode = AllocationMode.INSTALMENT_FIRST
    grace_days: int = 0  # days after a due date before delinquency (and penalty interest) starts
    holds_pause_penalty: bool = False  # whether clock-pausing holds also stop penalty accrual
    buckets: tuple[Bucket, ...] = field(default=DEFAULT_BUCKETS)

    def __post_init__(self) -> None:
        if self.rounding_unit < 1:
            raise ConventionError("rounding_unit", "must be a positive whole number of minor units")
        if sorted(self.allocation_order) != sorted(COMPONENTS):
            raise ConventionError("allocation_order", f"must order exactly {', '.join(COMPONENTS)}")
        if self.grace_days < 0:
            raise ConventionError("grace_days", "must not be negative")
        _check_buckets(self.buckets)

    def bucket_for(self, dpd: int) -> str:
        for b in self.buckets:
            if dpd >= b.min_dpd and (b.max_dpd is None or dpd <= b.max_dpd):
                return b.label
        raise AssertionError("buckets are validated to cover every dpd")  # pragma: no cover

    def to_dict(self) -> dict[str, Any]:
        return {
            "rounding_mode": self.rounding_mode.value,
            "rounding_unit": self.rounding_unit,
            "day_count": self.day_count.value,
            "allocation_order": list(self.allocation_order),
            "allocation_mode": self.allocation_mode.value,
            "grace_days": self.grace_days,
            "holds_pause_penalty": self.holds_pause_penalty,
            "buckets": [[b.label, b.min_dpd, b.max_dpd] for b in self.buckets],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ProductConventions:
        """Build from a mapping, refusing unknown keys and bad values with the key named."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConventionError(unknown[0], f"unknown convention; known: {', '.join(sorted(known))}")
        kwargs: dict[str, Any] = {}
        try:
            for key, value in raw.items():
                if key == "rounding_mode":
                    kwargs[key] = RoundingMode(value)
                elif key == "day_count":
                    kwargs[key] = DayCount(value)
                elif key == "allocation_mode":
                    kwargs[key] = AllocationMode(value)
                elif key == "allocation_order":
                    kwargs[key] = tuple(str(v) for v in value)
                elif key == "buckets":
                    kwargs[key] = tuple(
                        Bucket(str(lbl), int(lo), None if hi is None else int(hi)) for lbl, lo, hi in value
                    )
                elif key == "holds_pause_penalty":
                    if not isinstance(value, bool):
                        raise ConventionError(key, "must be true or false")
                    kwargs[key] = value
                else:
                    if isinstance(value, bool) or not isinstance(value, int):
                        raise ConventionError(key, "must be a whole number")
                    kwargs[key] = value
        except (ValueError, TypeError) as exc:
            raise ConventionError(key, str(exc)) from None
        return cls(**kwargs)


def _check_buckets(buckets: tuple[Bucket, ...]) -> None:
    if not buckets or buckets[0].min_dpd != 0:
        raise ConventionError("buckets", "the first bucket must start at 0 days past due")
    for prev, nxt in itertools.pairwise(buckets):
        if prev.max_dpd is None or nxt.min_dpd != prev.max_dpd + 1:
            raise ConventionError("buckets", f"bucket {nxt.label!r} must start the day after {prev.label!r} ends")
    if buckets[-1].max_dpd is not None:
        raise ConventionError("buckets", "the last bucket must be open-ended (max null)")
    labels = [b.label for b in buckets]
    if len(set(labels)) != len(labels):
        raise ConventionError("buckets", "bucket labels must be unique")
