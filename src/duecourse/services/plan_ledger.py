"""What an accepted repayment plan does to the ledger (ledger/plans.py), and the balance it restructures.

Both come from the loan's payoff on the effective day with every earlier plan applied: the credit settles
what was due and unpaid by then; the plan's instalments repay the rest. Whatever had already been paid
towards the instalments the plan replaces is carried to the plan's first instalment, so the debtor owes
exactly the restructured balance plus the plan's interest. A plan priced on another day's balance is
refused: penalty accrues daily, so an option must be priced again as of the day it takes effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import polars as pl
from sqlalchemy import Engine

from duecourse.domain.errors import NotFoundError, PlanError
from duecourse.ledger.engine import ledger_state
from duecourse.ledger.plans import payoff_on
from duecourse.plans.options import Outstanding, PlanInstalment
from duecourse.services.book_frames import BookFrames, load_book


@dataclass(frozen=True)
class PlanEffect:
    credit_amount: int  # non-cash, valued on the effective day
    instalments: tuple[PlanInstalment, ...]  # as stored: the first carries what was prepaid
    outstanding_total: int  # what the loan owed on the effective day (payoff basis), before the plan


def balance_to_restructure(engine: Engine, loan_key: int, day: date) -> Outstanding:
    """The loan's balance on `day` by component, as a plan taking effect that day would restructure it."""
    book, state, payoff = _on(engine, loan_key, day)
    later = book.instalments.filter(pl.col("due_date") > day)
    principal = int(state["outstanding_principal"])
    penalty = int(payoff["penalty"])
    rest = int(payoff["outstanding"]) - principal - penalty
    fee = min(rest, int(state["due_fee"]) + int(later.get_column("fee").sum()))
    loan = book.loans.row(0, named=True)
    return Outstanding(
        loan_id=loan["loan_id"],
        product=loan["product"],
        currency=loan["currency"],
        days_past_due=int(state["days_past_due"]),
        principal=principal,
        interest=rest - fee,
        penalty=penalty,
        fee=fee,
        remaining_months=later.height,
    )


def plan_effect(
    engine: Engine, loan_key: int, effective_date: date, instalments: Sequence[PlanInstalment], waived_total: int
) -> PlanEffect:
    if not instalments:
        raise PlanError("a plan needs at least one instalment")
    if any(i.due_date <= effective_date for i in instalments):
        raise PlanError(f"every plan instalment must fall due after the effective day {effective_date}")
    book, _, payoff = _on(engine, loan_key, effective_date)
    restructured = sum(i.principal for i in instalments)
    if restructured + waived_total != payoff["outstanding"]:
        raise PlanError(
            f"the plan repays {restructured} and waives {waived_total}, but the loan owes {payoff['outstanding']}"
            f" on {effective_date}: price the plan again as of that day"
        )
    later = book.instalments.filter(pl.col("due_date") > effective_date)
    scheduled_later = int(later.select(pl.sum("principal") + pl.sum("interest") + pl.sum("fee")).item() or 0)
    prepaid = scheduled_later - (payoff["outstanding"] - payoff["due"])
    first = replace(instalments[0], principal=instalments[0].principal + prepaid)
    return PlanEffect(int(payoff["due"]), (first, *instalments[1:]), int(payoff["outstanding"]))


def _on(engine: Engine, loan_key: int, day: date) -> tuple[BookFrames, dict[str, Any], dict[str, Any]]:
    book = load_book(engine, day, [loan_key])
    args = (book.loans, book.instalments, book.payments, book.holds, book.conventions, day)
    state = ledger_state(*args)
    if state.is_empty():
        raise NotFoundError(f"loan {loan_key} does not exist or has not started by {day}")
    return book, state.row(0, named=True), payoff_on(*args).row(0, named=True)
