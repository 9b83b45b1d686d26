"""The buckets of the day before, derived from today's state, equal a full ledger run as of the day before."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from duecourse.ledger.engine import buckets_the_day_before, ledger_state
from tests.unit.ledger.random_book import PRODUCTS, random_book
from tests.unit.ledger.test_engine_properties import FAST, Book, books


def derived_and_full(loans, instalments, payments, holds, conventions, as_of):  # type: ignore[no-untyped-def]
    today = ledger_state(loans, instalments, payments, holds, conventions, as_of)
    derived = buckets_the_day_before(today, loans, instalments, payments, holds, conventions, as_of)
    full = ledger_state(loans, instalments, payments, holds, conventions, as_of - timedelta(days=1))
    return derived, full.select("loan_key", "bucket")


@FAST
@given(books(), st.data())
def test_derived_buckets_equal_the_ledger_as_of_the_day_before(book: Book, data: st.DataObject) -> None:
    # Half the time the day is one on which a payment or reversal is valued (the recomputed path).
    days = book.payments.get_column("value_date").to_list()
    as_of = data.draw(st.sampled_from(days)) if days and data.draw(st.booleans()) else book.as_of
    conv = {"P": book.conv}
    derived, full = derived_and_full(book.loans, book.instalments, book.payments, book.holds, conv, as_of)
    assert derived.equals(full)


@pytest.mark.parametrize("seed", [0, 1])
def test_derived_buckets_on_random_books_every_few_days(seed: int) -> None:
    """Days spread over the book's life, plus days with payments, reversals and holds starting or ending."""
    book = random_book(seed)
    events = pl.concat(
        [
            book.payments.get_column("value_date"),
            book.holds.get_column("start_date"),
            book.holds.get_column("end_date").drop_nulls() + timedelta(days=1),
        ]
    ).unique()
    days = sorted(
        set(date(2025, 1, 1) + timedelta(days=k) for k in range(0, 640, 21)) | set(events.sample(15, seed=seed))
    )
    delinquent_yesterday = recomputed = 0
    for as_of in days:
        derived, full = derived_and_full(book.loans, book.instalments, book.payments, book.holds, PRODUCTS, as_of)
        assert derived.equals(full), f"seed {seed} as of {as_of}"
        delinquent_yesterday += full.filter(pl.col("bucket") != "current").height
        recomputed += book.payments.filter(pl.col("value_date") == as_of).height
    assert delinquent_yesterday > 300 and recomputed > 10, "both the recounted and the recomputed paths must be used"
