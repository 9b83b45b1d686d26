"""Project-owned holiday calendars: which days are statutory days off, and which weekend days are worked.

Data lives in `rules/calendars/<COUNTRY>.csv` (date, off_day 1/0, names, notice year) with the
sources in `rules/calendars/README.md`. A listed day overrides the weekly pattern (Mon–Fri worked,
Sat–Sun off): China's make-up working days (调休上班, off_day 0) are working days even on a weekend.
A day outside the span a calendar covers is *unknown* (None), so a rule that needs it blocks.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path

import polars as pl

from duecourse.domain.errors import RulebookError

DAYS = pl.Schema({"country": pl.String, "date": pl.Date, "off_day": pl.Boolean, "name": pl.String})


def _name(en: str, zh: str) -> str:
    """The day's name as shown in findings: English, with the Chinese in brackets where the source gives it."""
    return f"{en} ({zh})" if en and zh else en or zh


@dataclass(frozen=True)
class HolidayCalendar:
    listed: dict[tuple[str, date], tuple[bool, str]]  # (country, day) -> (off day?, name)
    coverage: dict[str, tuple[date, date]]  # country -> (first day, last day) the data covers

    @classmethod
    def load(cls, directory: Path) -> HolidayCalendar:
        listed: dict[tuple[str, date], tuple[bool, str]] = {}
        coverage: dict[str, tuple[date, date]] = {}
        for path in sorted(directory.glob("*.csv")):
            country = path.stem.upper()
            years: set[int] = set()
            reach_back: list[date] = []  # days a notice sets in the year before its own
            with path.open(encoding="utf-8", newline="") as f:
                for row_no, row in enumerate(csv.DictReader(f), start=2):
                    try:
                        day = date.fromisoformat(row["date"])
                        off = {"1": True, "0": False}[row["off_day"]]
                        year = int(row["notice_year"])
                    except (KeyError, ValueError) as exc:
                        raise RulebookError(str(path), f"row {row_no}", f"bad calendar row: {exc}") from exc
                    listed[(country, day)] = (off, _name(row.get("name_en") or "", row.get("name_zh") or ""))
                    years.add(year)
                    if day.year < year:
                        reach_back.append(day)
            if years:
                first, last = min(years), max(years)
                # China's notice for year Y can move days in late December of Y-1 (2018-12-30 is in the 2019
                # notice), so the last year is known only up to the earliest such day seen in the data.
                earliest = min(((d.month, d.day) for d in reach_back), default=None)
                end = date(last, 12, 31) if earliest is None else date(last, *earliest) - timedelta(days=1)
                coverage[country] = (date(first, 1, 1), end)
        return cls(listed, coverage)

    def covers(self, country: str, day: date) -> bool:
        span = self.coverage.get(country)
        return span is not None and span[0] <= day <= span[1]

    def is_off_day(self, country: str, day: date) -> bool | None:
        """True on a statutory day off or an ordinary weekend day; None when the calendar does not cover it."""
        if not self.covers(country, day):
            return None
        hit = self.listed.get((country, day))
        return hit[0] if hit is not None else day.weekday() >= 5

    def is_holiday(self, country: str, day: date) -> bool | None:
        """True only on a listed statutory day off (not an ordinary weekend); None when not covered."""
        if not self.covers(country, day):
            return None
        hit = self.listed.get((country, day))
        return hit is not None and hit[0]

    def holiday_name(self, country: str, day: date) -> str | None:
        hit = self.listed.get((country, day))
        return hit[1] if hit is not None and hit[0] else None

    def days_frame(self) -> pl.DataFrame:
        """Every listed day, for joins in the vectorised path."""
        return self._days

    @cached_property
    def _days(self) -> pl.DataFrame:  # built once: every batch call joins against it
        rows = [(c, d, off, name) for (c, d), (off, name) in self.listed.items()]
        return pl.DataFrame(rows, schema=DAYS, orient="row")

    def coverage_frame(self) -> pl.DataFrame:
        rows = [(c, first.year, last.year, first, last) for c, (first, last) in self.coverage.items()]
        schema = {
            "country": pl.String,
            "first_year": pl.Int32,
            "last_year": pl.Int32,
            "first_day": pl.Date,
            "last_day": pl.Date,
        }
        return pl.DataFrame(rows, schema=schema, orient="row")
