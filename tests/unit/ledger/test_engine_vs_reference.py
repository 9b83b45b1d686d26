"""The set-based engine agrees with the day-by-day reference ledger on random books, every loan, several dates."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import pytest

from duecourse.domain import frames as f
from duecourse.ledger.engine import ledger_state
from tests.reference_ledger import reference_state
from tests.unit.ledger.random_book import PRODUCTS, random_book

DATES = [date(2025, 3, 1), date(2025, 7, 17), date(2025, 12, 31), date(2026, 6, 30)]


@pytest.mark.parametrize(("seed", "odd_schedules"), [(0, True), (1, True), (2, True), (3, False)])
def test_engine_equals_reference_for_every_loan(seed: int, odd_schedules: bool) -> None:
    """odd_schedules: some loans have two instalments due the same day, or no schedule at all."""
    book = random_book(seed, odd_schedules=odd_schedules)
    by_loan: dict[int, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: {"instalments": [], "payments": []})
    for name in ("instalments", "payments"):
        for row in book.rows(name):
            by_loan[row["loan_key"]][name].append(row)
    holds = book.rows("holds")
    replayed = 0
    for as_of in DATES:
        state = ledger_state(book.loans, book.instalments, book.payments, book.holds, PRODUCTS, as_of)
        assert state.schema == f.LEDGER_STATE
        engine = {r["loan_key"]: r for r in state.to_dicts()}
        for loan in book.rows("loans"):
            key = loan["loan_key"]
            events = by_loan[key]
            expected = reference_state(
                loan, events["instalments"], events["payments"], holds, PRODUCTS[loan["product"]], as_of
            )
            if expected is None:
                assert key not in engine, f"loan {key} starts after {as_of} and must be left out"
                continue
            replayed += expected.pop("penalty_accrued") > 0
            got = engine[key]
            diff = {k: (got[k], v) for k, v in expected.items() if got[k] != v}
            assert not diff, f"seed {seed} loan {key} ({loan['product']}) as of {as_of}: engine vs reference {diff}"
    assert replayed > 50, "the random book must exercise penalty (the replayed path), not only clean loans"
