"""The holiday calendars: known dates from the official lists, coverage, the loader, and lookups == frame joins."""

from __future__ import annotations

import csv
import importlib.util
from datetime import date
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duecourse.compliance.calendar import HolidayCalendar
from duecourse.domain.errors import RulebookError

ROOT = Path(__file__).resolve().parents[3]
CAL = HolidayCalendar.load(ROOT / "rules" / "calendars")


@pytest.mark.parametrize(
    ("country", "day", "holiday", "off"),
    [
        ("CN", date(2026, 2, 17), True, True),  # Spring Festival
        ("CN", date(2026, 2, 14), False, False),  # make-up Saturday: a working day
        ("CN", date(2026, 2, 28), False, False),  # make-up Saturday after the festival
        ("CN", date(2026, 3, 7), False, True),  # ordinary Saturday: off, not a holiday
        ("CN", date(2026, 3, 3), False, False),
        ("CN", date(2018, 12, 30), True, True),  # a 2019-notice day in December 2018
        ("US", date(2021, 12, 31), True, True),  # New Year's Day 2022 observed on the Friday before
        ("US", date(2022, 6, 20), True, True),  # Juneteenth 2022 (a Sunday) observed on Monday
        ("US", date(2020, 6, 19), False, False),  # Juneteenth became a federal holiday in 2021
        ("US", date(2026, 7, 3), True, True),  # Independence Day 2026 (a Saturday) observed Friday
        ("US", date(2026, 11, 27), False, False),  # the day after Thanksgiving is not federal
        ("US", date(2030, 1, 21), True, True),  # Martin Luther King, Jr. Day 2030
        ("UK", date(2020, 5, 4), False, False),  # early May 2020 moved to Friday 8 May (VE Day 75)
        ("UK", date(2020, 5, 8), True, True),
        ("UK", date(2022, 5, 30), False, False),  # spring bank holiday 2022 moved to 2 June
        ("UK", date(2022, 6, 2), True, True),
        ("UK", date(2022, 6, 3), True, True),  # Platinum Jubilee
        ("UK", date(2022, 9, 19), True, True),  # State Funeral of Queen Elizabeth II
        ("UK", date(2023, 5, 8), True, True),  # Coronation of King Charles III
        ("UK", date(2026, 12, 28), True, True),  # Boxing Day 2026 (a Saturday) substitute
        ("UK", date(2027, 3, 26), True, True),  # Good Friday 2027
        ("UK", date(2027, 12, 27), True, True),  # Christmas Day 2027 (a Saturday) substitute
    ],
)
def test_known_days(country: str, day: date, holiday: bool, off: bool) -> None:
    assert CAL.is_holiday(country, day) is holiday
    assert CAL.is_off_day(country, day) is off


def test_names_carry_both_languages_where_the_source_has_them() -> None:
    assert CAL.holiday_name("CN", date(2026, 10, 1)) == "National Day (国庆节)"
    assert CAL.holiday_name("US", date(2021, 12, 31)) == "New Year's Day (observed)"
    assert CAL.holiday_name("CN", date(2026, 2, 14)) is None  # a working day has no holiday name


def test_every_us_year_has_each_legal_public_holiday_once() -> None:
    days = CAL.days_frame().filter(pl.col("country") == "US", ~pl.col("name").str.ends_with("(observed)"))
    per_year = days.group_by(pl.col("date").dt.year().alias("year")).agg(n=pl.len(), names=pl.col("name").n_unique())
    expected = {year: 10 if year == 2020 else 11 for year in range(2020, 2031)}  # Juneteenth from 2021
    assert dict(per_year.select("year", "n").iter_rows()) == expected
    assert dict(per_year.select("year", "names").iter_rows()) == expected


@pytest.mark.parametrize(
    ("country", "inside", "outside"),
    [
        ("CN", date(2026, 12, 28), date(2026, 12, 29)),  # a 2027 notice could still move 29–31 December
        ("CN", date(2007, 1, 1), date(2006, 12, 31)),
        ("US", date(2030, 12, 30), date(2030, 12, 31)),  # 2031's New Year's Day could be observed on the 31st
        ("UK", date(2030, 12, 31), date(2031, 1, 1)),
        ("UK", date(2020, 1, 1), date(2019, 12, 31)),
    ],
)
def test_coverage_ends_where_the_data_stops_being_certain(country: str, inside: date, outside: date) -> None:
    assert CAL.covers(country, inside) and CAL.is_holiday(country, inside) is not None
    assert not CAL.covers(country, outside)
    assert CAL.is_holiday(country, outside) is None and CAL.is_off_day(country, outside) is None


def test_a_country_without_a_calendar_is_unknown() -> None:
    assert CAL.is_holiday("FR", date(2026, 7, 14)) is None


def test_a_bad_row_is_refused_with_the_file_and_row(tmp_path: Path) -> None:
    (tmp_path / "XX.csv").write_text(
        "date,off_day,name_zh,name_en,notice_year\n2026-01-01,1,,New Year,2026\n2026-13-01,1,,Bad,2026\n",
        encoding="utf-8",
    )
    with pytest.raises(RulebookError, match=r"XX\.csv.*row 3"):
        HolidayCalendar.load(tmp_path)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_holiday_calendars", ROOT / "scripts" / "make_holiday_calendars.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("country", ["US", "UK"])
def test_the_committed_csv_is_what_the_generator_writes(tmp_path: Path, country: str) -> None:
    gen = _generator()
    rows = [r for y in gen.YEARS for r in (gen.us_year(y) if country == "US" else gen.uk_year(y))]
    gen.write(tmp_path / "out.csv", rows)
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == (
        ROOT / "rules" / "calendars" / f"{country}.csv"
    ).read_text(encoding="utf-8")
    with (ROOT / "rules" / "calendars" / f"{country}.csv").open(encoding="utf-8") as f:
        listed = [row["date"] for row in csv.DictReader(f)]
    assert len(listed) == len(set(listed))  # one row per day


@settings(max_examples=150, deadline=None)
@given(
    lookups=st.lists(
        st.tuples(st.sampled_from(["CN", "US", "UK", "FR"]), st.dates(date(2005, 1, 1), date(2032, 12, 31))),
        min_size=1,
        max_size=30,
    )
)
def test_lookups_agree_with_the_frames(lookups: list[tuple[str, date]]) -> None:
    """The single path (is_holiday / is_off_day) and the vectorised path (frame joins) give the same answers."""
    asked = pl.DataFrame(lookups, schema={"country": pl.String, "date": pl.Date}, orient="row")
    joined = (
        asked.join(CAL.days_frame(), on=["country", "date"], how="left")
        .join(CAL.coverage_frame(), on="country", how="left")
        .select(
            covered=pl.col("date").is_between(pl.col("first_day"), pl.col("last_day")).fill_null(False),
            holiday=pl.col("off_day").fill_null(False),
            off=pl.coalesce("off_day", pl.col("date").dt.weekday() >= 6),
        )
    )
    for (country, day), row in zip(lookups, joined.iter_rows(named=True), strict=True):
        assert CAL.covers(country, day) is row["covered"]
        assert CAL.is_holiday(country, day) == (row["holiday"] if row["covered"] else None)
        assert CAL.is_off_day(country, day) == (row["off"] if row["covered"] else None)
