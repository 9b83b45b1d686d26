"""A repayment plan on the ledger: from its effective day the loan follows the plan, before it nothing
changes, and a late-arriving earlier payment is never charged twice (ledger/plans.py)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import polars as pl

from duecourse.domain import frames as f
from duecourse.domain.conventions import ProductConventions
from duecourse.ledger.plans import PLAN_INSTALMENTS, PLANS, payoff_on, supersede
from tests.unit.ledger.ledger_helpers import instalments, loans, payments, state

P = date(2026, 3, 25)  # Feb 15 and Mar 15 instalments unpaid, Apr 15 not yet due


def _plan(plan_key: int, effective: date, credit: int, rows: list[tuple[date, int, int]]) -> tuple[Any, Any]:
    plans = pl.DataFrame([(plan_key, 1, effective, credit)], schema=PLANS, orient="row")
    plan_rows = pl.DataFrame(
        [(plan_key, n, due, p, i, 0) for n, (due, p, i) in enumerate(rows, start=1)],
        schema=PLAN_INSTALMENTS,
        orient="row",
    )
    return plans, plan_rows


def _with_plan(as_of: date, plans: Any, plan_rows: Any, pays: pl.DataFrame | None = None) -> dict[str, Any]:
    inst, pay = supersede(instalments(), payments() if pays is None else pays, plans, plan_rows, as_of)
    return state(as_of, pays=pay, inst_rows=inst)


def _payoff(day: date, inst: pl.DataFrame | None = None, pays: pl.DataFrame | None = None) -> dict[str, Any]:
    frame = payoff_on(
        loans(),
        instalments() if inst is None else inst,
        payments() if pays is None else pays,
        pl.DataFrame(schema=f.HOLDS),
        {"HC": ProductConventions()},
        day,
    )
    return frame.row(0, named=True)


def _four_month_plan() -> tuple[Any, Any, int]:
    """Penalty waived; the rest over four monthly instalments from 25 April, the last taking the remainder."""
    payoff = _payoff(P)
    due, restructured = payoff["due"], payoff["outstanding"] - payoff["penalty"]
    part = restructured // 4
    dues = [date(2026, 4, 25), date(2026, 5, 25), date(2026, 6, 25), date(2026, 7, 25)]
    rows = [(d, part, 0) for d in dues[:3]] + [(dues[3], restructured - 3 * part, 0)]
    plans, plan_rows = _plan(7, P, due, rows)
    return plans, plan_rows, restructured


def test_paying_off_on_a_day_saves_the_penalty_of_that_day() -> None:
    before, payoff = state(P), _payoff(P)
    assert before["days_past_due"] == 38
    # 2,000.00 of principal overdue accrues 1.00 a day; a payment valued on P stops it before P's accrual.
    assert payoff["penalty"] == before["due_penalty"] - 100
    assert payoff["due"] == 103_000 + 102_000 + payoff["penalty"]
    assert payoff["outstanding"] == payoff["due"] + 101_000
    paid = state(P, pays=payments((P, payoff["due"])))
    assert paid["days_past_due"] == 0 and paid["outstanding_total"] == 101_000 and paid["credit_balance"] == 0


def test_when_everything_is_due_the_saved_penalty_is_not_left_as_a_credit() -> None:
    day = date(2026, 5, 1)
    before, payoff = state(day), _payoff(day)
    assert payoff["penalty"] == before["due_penalty"] - 150  # 3,000.00 overdue: 1.50 a day
    assert payoff["outstanding"] == payoff["due"]
    paid = state(day, pays=payments((day, payoff["due"])))
    assert paid["outstanding_total"] == 0 and paid["credit_balance"] == 0


def test_from_its_effective_day_the_loan_follows_the_plan() -> None:
    plans, plan_rows, restructured = _four_month_plan()
    on = _with_plan(P, plans, plan_rows)
    assert on["days_past_due"] == 0 and on["bucket"] == "current" and on["overdue_total"] == 0
    assert on["outstanding_total"] == restructured  # the penalty was waived, nothing else
    assert on["next_due_date"] == date(2026, 4, 25)
    missed = _with_plan(date(2026, 5, 10), plans, plan_rows)
    assert missed["oldest_unpaid_due_date"] == date(2026, 4, 25) and missed["days_past_due"] == 15


def test_before_its_effective_day_a_plan_changes_nothing() -> None:
    plans, plan_rows, _ = _four_month_plan()
    day_before = P - timedelta(days=1)
    assert _with_plan(day_before, plans, plan_rows) == state(day_before)
    inst, pay = supersede(instalments(), payments(), plans, plan_rows, day_before)
    assert inst.equals(instalments()) and pay.equals(payments())


def test_a_late_arriving_earlier_payment_reduces_what_the_plan_leaves_owing() -> None:
    plans, plan_rows, restructured = _four_month_plan()
    late = payments((date(2026, 3, 1), 50_000))  # valued before the plan, recorded after it was agreed
    with_late = _with_plan(P, plans, plan_rows, late)
    # The credit was fixed without this payment; what it finds already paid flows on to the plan, and the
    # penalty the payment would have saved (paid or not: penalty incurred = owed + paid - scheduled) is not
    # charged either.
    scheduled = 306_000
    incurred = _payoff(P)["outstanding"] - scheduled
    incurred_with_late = _payoff(P, pays=late)["outstanding"] + 50_000 - scheduled
    assert 0 < incurred_with_late < incurred
    assert with_late["outstanding_total"] == restructured - 50_000 - (incurred - incurred_with_late)
    assert with_late["days_past_due"] == 0


def test_a_second_plan_supersedes_the_first_from_its_own_day() -> None:
    plans1, rows1, _ = _four_month_plan()
    p2 = date(2026, 6, 1)
    broken = _with_plan(p2, plans1, rows1)
    assert broken["oldest_unpaid_due_date"] == date(2026, 4, 25)  # two plan instalments missed
    inst1, pays1 = supersede(instalments(), payments(), plans1, rows1, p2)
    payoff = _payoff(p2, inst1, pays1)
    due, rest = payoff["due"], payoff["outstanding"] - payoff["penalty"]
    plans2, rows2 = _plan(8, p2, due, [(date(2026, 7, 1), rest // 2, 0), (date(2026, 8, 1), rest - rest // 2, 0)])
    both, both_rows = pl.concat([plans1, plans2]), pl.concat([rows1, rows2])
    inst, _ = supersede(instalments(), payments(), both, both_rows, p2)
    assert inst.get_column("due_date").to_list() == [
        date(2026, 2, 15), date(2026, 3, 15), date(2026, 4, 25), date(2026, 5, 25), date(2026, 7, 1), date(2026, 8, 1)
    ]  # fmt: skip
    assert inst.get_column("seq").to_list() == [1, 2, 3, 4, 5, 6]
    now = _with_plan(p2, both, both_rows)
    assert now["days_past_due"] == 0 and now["outstanding_total"] == rest
    assert _with_plan(p2 - timedelta(days=1), both, both_rows) == _with_plan(p2 - timedelta(days=1), plans1, rows1)
