"""Promises kept, partly kept or broken on the right day; plans broken or completed; what pauses the ladder."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from duecourse.plans.follow_up import CASH, LIVE_PLANS, PROMISES, follow_up_plans, follow_up_promises, pausing_loans

TAKEN, DUE = date(2026, 11, 10), date(2026, 11, 15)


def _promise(amount: int = 50_000) -> pl.DataFrame:
    return pl.DataFrame([(1, 7, amount, DUE, TAKEN)], schema=PROMISES, orient="row")


def _cash(*rows: tuple[date, int]) -> pl.DataFrame:
    return pl.DataFrame([(7, d, a) for d, a in rows], schema=CASH, orient="row")


@pytest.mark.parametrize(
    ("as_of", "cash", "grace", "state"),
    [
        (date(2026, 11, 12), [(date(2026, 11, 12), 50_000)], 0, "kept"),  # met early
        (date(2026, 11, 15), [(date(2026, 11, 11), 20_000)], 0, "open"),  # its day has not passed
        (date(2026, 11, 16), [(date(2026, 11, 11), 20_000)], 0, "partly_kept"),
        (date(2026, 11, 16), [], 0, "broken"),
        (date(2026, 11, 16), [], 2, "open"),  # within grace
        (date(2026, 11, 18), [], 2, "broken"),
        (date(2026, 11, 16), [(date(2026, 11, 9), 50_000)], 0, "broken"),  # paid before it was taken
        (date(2026, 11, 16), [(date(2026, 11, 17), 50_000)], 0, "broken"),  # not yet valued on the day judged
        (date(2026, 11, 16), [(date(2026, 11, 10), 30_000), (date(2026, 11, 14), 20_000)], 0, "kept"),
    ],
)
def test_a_promise_is_judged_on_the_cash_since_it_was_taken(
    as_of: date, cash: list[tuple[date, int]], grace: int, state: str
) -> None:
    judged = follow_up_promises(_promise(), _cash(*cash), as_of, grace)
    assert judged.get_column("state").to_list() == [state]


def test_plans_break_at_the_configured_days_past_due_and_complete_when_nothing_is_owed() -> None:
    plans = pl.DataFrame([(1, 10), (2, 11), (3, 12), (4, 13)], schema=LIVE_PLANS, orient="row")
    state = pl.DataFrame(
        {"loan_key": [10, 11, 12, 13], "days_past_due": [29, 30, 0, 3], "outstanding_total": [5, 5, 0, 100]}
    )
    judged = follow_up_plans(plans, state, break_after_days=30)
    assert judged.get_column("state").to_list() == ["active", "broken", "completed", "active"]


def test_only_open_promises_and_active_plans_pause_the_ladder() -> None:
    promises = pl.DataFrame({"promise_key": [1, 2], "loan_key": [7, 8], "paid": [0, 0], "state": ["open", "broken"]})
    plans = pl.DataFrame({"plan_key": [1, 2], "loan_key": [8, 9], "state": ["active", "broken"]})
    pausing = pausing_loans(promises, plans).sort("loan_key")
    assert pausing.rows() == [(7, True, False), (8, False, True)]
