"""The migrated book: silent accounts deep in arrears that stopped paying, and the previous system's calls."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from duecourse.demo.book import GeneratedBook, generate_book
from duecourse.demo.history import Migrated, migrate, silent

AS_OF = date(2026, 10, 31)
REGIONS = frozenset({"CN-BJ", "CN-SH", "CN-GD", "CN-SC"})


@pytest.fixture(scope="module")
def books() -> tuple[GeneratedBook, Migrated]:
    book = generate_book(3_000, AS_OF, seed=7, days_ahead=30)
    return book, migrate(book, REGIONS, seed=7)


def test_deep_accounts_are_silent_plain_and_stopped_paying_70_to_95_days_ago(
    books: tuple[GeneratedBook, Migrated],
) -> None:
    book, moved = books
    deep = moved.deep
    assert deep.height >= 3
    assert deep.get_column("borrower_id").is_in(sorted(moved.silent)).all()
    assert deep.get_column("stopped").is_between(AS_OF - timedelta(days=95), AS_OF - timedelta(days=70)).all()
    assert (deep.get_column("overdue") >= 600_000).all()
    people = book.borrowers.join(deep, on="borrower_id", how="semi")
    assert (people.get_column("flags") == "").all() and people.get_column("region").is_in(sorted(REGIONS)).all()
    assert book.holds.join(deep, on="borrower_id", how="semi").is_empty()
    # nothing paid from five days before the first missed instalment on, in the past or in the month ahead
    later = pl.concat([moved.book.payments, *moved.book.daily_payments.values()]).join(
        deep.select("loan_id", "stopped"), on="loan_id"
    )
    assert later.filter(pl.col("value_date") >= pl.col("stopped") - pl.duration(days=5)).is_empty()
    # every other loan's payments are as generated
    others = book.payments.join(deep, on="loan_id", how="anti")
    assert moved.book.payments.join(deep, on="loan_id", how="anti").equals(others)
    assert book.payments.join(deep, on="loan_id", how="semi").height > later.height


def test_the_history_shows_remote_contact_failed_for_the_silent_and_not_for_the_others(
    books: tuple[GeneratedBook, Migrated],
) -> None:
    _, moved = books
    calls = moved.history
    local = calls.get_column("at").dt.convert_time_zone("Asia/Shanghai")
    assert local.dt.date().is_between(AS_OF - timedelta(days=30), AS_OF - timedelta(days=1)).all()
    assert local.dt.hour().is_between(10, 17).all()
    assert calls.get_column("event_id").is_unique().all()
    quiet = calls.filter(pl.col("borrower_id").is_in(sorted(moved.silent)))
    assert quiet.height and (quiet.get_column("outcome") != "conversation").all()
    talkers = calls.filter(~pl.col("borrower_id").is_in(sorted(moved.silent)))
    assert (talkers.get_column("outcome") == "conversation").any()
    per_deep = quiet.join(moved.deep, on="loan_id").group_by("loan_id").len()
    assert per_deep.height == moved.deep.height and (per_deep.get_column("len") >= 3).all()


def test_about_one_debtor_in_six_is_silent() -> None:
    ids = pl.Series([f"B{i:08d}" for i in range(1, 60_001)])
    share = pl.select(silent(pl.lit(ids)).mean()).item()
    assert 0.15 < share < 0.18
