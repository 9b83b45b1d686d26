"""`load_book` of a few loans reads exactly what the whole-book read holds for them, on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, insert, select

from duecourse.adapters.crypto import FieldCipher
from duecourse.adapters.db import tables as t
from duecourse.demo.book import generate_book, write_book
from duecourse.ledger.engine import ledger_state
from duecourse.services.book_frames import BookFrames, load_book
from duecourse.services.importer import import_book

DAY = date(2026, 11, 20)


@pytest.fixture
def book(engine: Engine, tmp_path: Path) -> Engine:
    folder = write_book(generate_book(120, date(2026, 11, 1), seed=11, days_ahead=30), tmp_path / "book", "csv")
    cipher = FieldCipher.from_key_file(tmp_path / "key")
    report = import_book(engine, folder, tmp_path / "rejects", cipher, "test", datetime(2026, 11, 1, tzinfo=UTC))
    assert report.rejected == 0
    return engine


def _only(frames: BookFrames, keys: list[int]) -> dict[str, pl.DataFrame]:
    """The whole-book frames cut down to `keys` by hand: their loans, rows, borrowers and the holds on them."""
    loans = frames.loans.filter(pl.col("loan_key").is_in(keys))
    borrowers = loans.get_column("borrower_key").implode()
    mine = pl.col("loan_key").is_in(keys)
    return {
        "loans": loans,
        "instalments": frames.instalments.filter(mine),
        "payments": frames.payments.filter(mine),
        "holds": frames.holds.filter(mine | (pl.col("loan_key").is_null() & pl.col("borrower_key").is_in(borrowers))),
        "borrowers": frames.borrowers.filter(pl.col("borrower_key").is_in(borrowers)),
    }


def test_a_few_loans_read_as_the_whole_book_holds_them(book: Engine) -> None:
    with book.begin() as conn:
        # a borrower-wide hold (no loan named), to prove holds come by borrower as well as by loan
        first = conn.execute(select(t.loan.c.loan_key, t.loan.c.borrower_key).order_by(t.loan.c.loan_key)).first()
        assert first is not None
        conn.execute(
            insert(t.hold),
            {"hold_id": "H-BORROWER", "borrower_key": first.borrower_key, "loan_key": None, "kind": "hardship",
             "start_date": date(2026, 11, 5), "end_date": None, "pauses_clock": True, "pauses_outreach": True},
        )  # fmt: skip
    whole = load_book(book, DAY)
    keys = whole.loans.get_column("loan_key").sort().to_list()[::7]
    assert first.loan_key in keys
    few = load_book(book, DAY, keys)
    for name, expected in _only(whole, keys).items():
        got = getattr(few, name)
        assert not expected.is_empty(), name
        assert got.sort(got.columns).equals(expected.sort(expected.columns)), name
    assert few.holds.filter(pl.col("loan_key").is_null()).height >= 1
    state = ledger_state(few.loans, few.instalments, few.payments, few.holds, few.conventions, DAY)
    whole_state = ledger_state(whole.loans, whole.instalments, whole.payments, whole.holds, whole.conventions, DAY)
    assert state.equals(whole_state.filter(pl.col("loan_key").is_in(keys)))


def test_no_loans_read_nothing(book: Engine) -> None:
    few = load_book(book, DAY, [])
    assert (few.loans.height, few.instalments.height, few.payments.height, few.borrowers.height) == (0, 0, 0, 0)


def test_a_connection_reads_the_same_book_inside_its_own_transaction(book: Engine) -> None:
    keys = load_book(book, DAY).loans.get_column("loan_key").sort().to_list()[::5]
    through_engine = load_book(book, DAY, keys)
    with book.begin() as conn:
        # a write in flight, as when the dispatcher's transaction asks the letters for their amounts
        conn.execute(
            insert(t.hold),
            {"hold_id": "H-IN-FLIGHT", "borrower_key": int(through_engine.loans["borrower_key"][0]), "loan_key": None,
             "kind": "dispute", "start_date": date(2026, 11, 10), "end_date": None, "pauses_clock": True,
             "pauses_outreach": True},
        )  # fmt: skip
        inside = load_book(conn, DAY, keys)
    for name in ("loans", "instalments", "payments", "borrowers"):
        assert getattr(inside, name).equals(getattr(through_engine, name)), name
    assert inside.conventions == through_engine.conventions
    # the caller's own write, not yet committed when it was read, is in the book it got
    assert inside.holds.height == through_engine.holds.height + 1
    added = inside.holds.join(through_engine.holds, on="hold_key", how="anti")
    assert added.select("kind", "start_date", "pauses_clock").rows() == [("dispute", date(2026, 11, 10), True)]
