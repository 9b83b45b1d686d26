"""The set-based engine agrees with the day-by-day reference ledger on random books, for every loan and date."""

from __future__ import annotations

from datetime import date

import pytest

from duecourse.ledger.engine import ledger_state
from tests.reference_ledger import reference_state
from tests.unit.ledger.random_book import PRODUCTS, random_book

DATES = [date(2025, 2, 1), date(2025, 4, 17), date(2025, 8, 31), date(2026, 3, 1), date(2027, 2, 1)]


@pytest.mark.parametrize("seed", range(8))
def test_engine_equals_reference(seed: int) -> None:
    book = random_book(seed)
    for as_of in DATES:
        engine = {
            r["loan_key"]: r
            for r in ledger_state(book.loans, book.instalments, book.payments, book.holds, PRODUCTS, as_of).to_dicts()
        }
        for loan in book.rows("loans"):
            lk = loan["loan_key"]
            borrower = loan["borrower_key"]
            expected = reference_state(
                loan,
                [i for i in book.rows("instalments") if i["loan_key"] == lk],
                [p for p in book.rows("payments") if p["loan_key"] == lk],
                [h for h in book.rows("holds") if h["borrower_key"] == borrower],
                PRODUCTS[loan["product"]],
                as_of,
            )
            if expected is None:
                assert lk not in engine
                continue
            got = engine[lk]
            diff = {k: (got[k], v) for k, v in expected.items() if got[k] != v}
            assert not diff, f"seed {seed} loan {lk} ({loan['product']}) as of {as_of}: engine vs reference {diff}"
