"""Writes rules/calendars/US.csv and UK.csv: the federal and England-and-Wales holidays, from their statutory rules.

The CSVs are the project's data (reviewed and committed); this script is how they were made and how to extend
them. US: the legal public holidays of 5 U.S.C. 6103(a) and the observed weekday of 6103(b) (Saturday ->
Friday before, Sunday -> Monday after). UK: the bank holidays of the Banking and Financial Dealings Act 1971,
schedule 1 (England and Wales), the common-law holidays Good Friday and Christmas Day, the substitute days, and
the one-off days appointed by royal proclamation as published on gov.uk/bank-holidays. Both also list a fixed-date
holiday's own date when it falls on a weekend, so "no contact on a statutory holiday" covers the day itself.

    .venv/bin/python scripts/make_holiday_calendars.py   # rewrites both files
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

YEARS = range(2020, 2031)
OUT = Path(__file__).resolve().parents[1] / "rules" / "calendars"
Row = tuple[date, str, int]  # day, English name, year of the holiday (notice_year column)


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th given weekday (Mon=0) of a month; n = -1 for the last."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return date(year, month, day + 1)


def us_year(year: int) -> list[Row]:
    fixed = [(1, 1, "New Year's Day"), (7, 4, "Independence Day"), (11, 11, "Veterans Day"), (12, 25, "Christmas Day")]
    if year >= 2021:  # Juneteenth National Independence Day Act, Pub. L. 117-17, signed 2021-06-17
        fixed.append((6, 19, "Juneteenth National Independence Day"))
    rows: list[Row] = []
    for month, day, name in fixed:
        d = date(year, month, day)
        rows.append((d, name, year))
        if d.weekday() == 5:
            rows.append((d - timedelta(days=1), f"{name} (observed)", year))
        elif d.weekday() == 6:
            rows.append((d + timedelta(days=1), f"{name} (observed)", year))
    rows += [
        (nth_weekday(year, 1, 0, 3), "Birthday of Martin Luther King, Jr.", year),
        (nth_weekday(year, 2, 0, 3), "Washington's Birthday", year),
        (nth_weekday(year, 5, 0, -1), "Memorial Day", year),
        (nth_weekday(year, 9, 0, 1), "Labor Day", year),
        (nth_weekday(year, 10, 0, 2), "Columbus Day", year),
        (nth_weekday(year, 11, 3, 4), "Thanksgiving Day", year),
    ]
    return rows


def _next_weekday(d: date, taken: set[date]) -> date:
    while d.weekday() >= 5 or d in taken:
        d += timedelta(days=1)
    return d


def uk_year(year: int) -> list[Row]:
    sunday = easter(year)
    early_may = nth_weekday(year, 5, 0, 1)
    spring = nth_weekday(year, 5, 0, -1)
    rows: list[Row] = [
        (sunday - timedelta(days=2), "Good Friday", year),
        (sunday + timedelta(days=1), "Easter Monday", year),
        (nth_weekday(year, 8, 0, -1), "Summer bank holiday", year),
    ]
    # One-off changes by royal proclamation (gov.uk/bank-holidays).
    if year == 2020:
        early_may = date(2020, 5, 8)  # moved to Friday for the 75th anniversary of VE Day
    if year == 2022:
        spring = date(2022, 6, 2)  # moved to Thursday for the Platinum Jubilee
        rows += [
            (date(2022, 6, 3), "Platinum Jubilee bank holiday", year),
            (date(2022, 9, 19), "Bank holiday for the State Funeral of Queen Elizabeth II", year),
        ]
    if year == 2023:
        rows.append((date(2023, 5, 8), "Bank holiday for the coronation of King Charles III", year))
    rows += [(early_may, "Early May bank holiday", year), (spring, "Spring bank holiday", year)]
    # New Year's Day, Christmas Day and Boxing Day: the day itself, and a substitute weekday when it is a weekend.
    taken: set[date] = set()
    for month, day, name in ((1, 1, "New Year's Day"), (12, 25, "Christmas Day"), (12, 26, "Boxing Day")):
        d = date(year, month, day)
        rows.append((d, name, year))
        if d.weekday() >= 5 or d in taken:
            sub = _next_weekday(d, taken | {date(year, 12, 25), date(year, 12, 26)} - {d})
            rows.append((sub, f"{name} (substitute day)", year))
            taken.add(sub)
        else:
            taken.add(d)
    return rows


def write(path: Path, rows: list[Row]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["date", "off_day", "name_zh", "name_en", "notice_year"])
        for day, name, year in sorted(rows):
            out.writerow([day.isoformat(), 1, "", name, year])


def main() -> None:
    write(OUT / "US.csv", [r for y in YEARS for r in us_year(y)])
    write(OUT / "UK.csv", [r for y in YEARS for r in uk_year(y)])


if __name__ == "__main__":
    main()
