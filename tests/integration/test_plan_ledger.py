"""An accepted plan on the stored book, on both backends: priced on the payoff of its effective day, it
makes the loan current and leaves owing exactly the plan's schedule; the day before is untouched."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, insert, select

from duecourse.adapters.crypto import FieldCipher
from duecourse.adapters.db import tables as t
from duecourse.demo.book import generate_book, write_book
from duecourse.domain.conventions import ProductConventions
from duecourse.domain.errors import PlanError
from duecourse.ledger.engine import ledger_state
from duecourse.plans.affordability import Finances, Sourced, assess
from duecourse.plans.options import plan_options
from duecourse.plans.policy import load_plan_policy
from duecourse.services.book_frames import load_book
from duecourse.services.plan_ledger import balance_to_restructure, plan_effect

ROOT = Path(__file__).resolve().parents[2]
POLICY = load_plan_policy(ROOT / "policy" / "plans.yaml")
DAY = date(2026, 11, 20)


@pytest.fixture
def book(engine: Engine, tmp_path: Path) -> Engine:
    generated = generate_book(200, date(2026, 11, 1), seed=5, days_ahead=30)
    folder = write_book(generated, tmp_path / "book", "csv")
    from duecourse.services.importer import import_book

    cipher = FieldCipher.from_key_file(tmp_path / "key")
    assert (
        import_book(engine, folder, tmp_path / "rejects", cipher, "test", datetime(2026, 11, 1, tzinfo=UTC)).rejected
        == 0
    )
    return engine


def _state(engine: Engine, day: date) -> pl.DataFrame:
    b = load_book(engine, day)
    return ledger_state(b.loans, b.instalments, b.payments, b.holds, b.conventions, day)


def _store(engine: Engine, loan_key: int, day: date, effect_rows: tuple, credit: int, option: object) -> None:  # type: ignore[type-arg]
    with engine.begin() as conn:
        borrower = conn.execute(select(t.loan.c.borrower_key).where(t.loan.c.loan_key == loan_key)).scalar_one()
        plan_key = conn.execute(
            insert(t.repayment_plan).returning(t.repayment_plan.c.plan_key),
            {
                "plan_id": f"P-{loan_key}",
                "loan_key": loan_key,
                "borrower_key": borrower,
                "kind": "restructure",
                "state": "active",
                "offered_at": datetime(2026, 11, 20, tzinfo=UTC),
                "offered_by": "test",
                "offered_role": "supervisor",
                "effective_date": day,
                "credit_amount": credit,
                "restructured": 0,
                "plan_interest": 0,
                "waived": {},
                "option": {},
            },
        ).scalar_one()
        conn.execute(
            insert(t.plan_instalment),
            [
                {"plan_key": plan_key, "seq": r.seq, "due_date": r.due_date, "principal": r.principal,
                 "interest": r.interest, "fee": 0}
                for r in effect_rows
            ],
        )  # fmt: skip


def test_an_accepted_plan_makes_the_loan_follow_the_plan_from_its_day(book: Engine) -> None:
    before = _state(book, DAY)
    day_before = DAY - timedelta(days=1)
    before_day_before = _state(book, day_before)
    late = before.filter(pl.col("days_past_due") > 30).sort("loan_key")
    assert late.height > 0, "the demo book has loans well past due by the 20th"
    loan_key = int(late.get_column("loan_key")[0])
    debt = balance_to_restructure(book, loan_key, DAY)
    assert debt.days_past_due > 30 and debt.penalty >= 0
    finances = Finances(
        "CNY", Sourced(2_000_000, "evidenced"), Sourced(300_000, "evidenced"), Sourced(0, "stated"),
        Sourced(0, "stated"), household_size=1, dependants=0,
    )  # fmt: skip
    options = plan_options(debt, assess(finances, POLICY), POLICY, ProductConventions(), DAY)
    option = next(o for o in options if o.kind == "restructure" and o.months == 12)
    effect = plan_effect(book, loan_key, DAY, option.instalments, option.waived_total)
    assert effect.outstanding_total == debt.total and effect.credit_amount > 0
    _store(book, loan_key, DAY, effect.instalments, effect.credit_amount, option)

    after = _state(book, DAY).filter(pl.col("loan_key") == loan_key).row(0, named=True)
    assert after["days_past_due"] == 0 and after["bucket"] == "current"
    assert after["outstanding_total"] == option.restructured + option.plan_interest  # to the fen
    assert after["next_due_date"] == option.instalments[0].due_date
    # Every other loan, and this one the day before, are exactly as they were.
    assert (
        _state(book, DAY).filter(pl.col("loan_key") != loan_key).equals(before.filter(pl.col("loan_key") != loan_key))
    )
    assert _state(book, day_before).equals(before_day_before)


def test_a_plan_priced_on_another_days_balance_is_refused(book: Engine) -> None:
    late = _state(book, DAY).filter(pl.col("days_past_due") > 30).sort("loan_key")
    loan_key = int(late.get_column("loan_key")[0])
    earlier = balance_to_restructure(book, loan_key, DAY - timedelta(days=5))
    finances = Finances(
        "CNY", Sourced(2_000_000, "evidenced"), Sourced(300_000, "evidenced"), Sourced(0, "stated"),
        Sourced(0, "stated"), household_size=1, dependants=0,
    )  # fmt: skip
    stale = plan_options(earlier, assess(finances, POLICY), POLICY, ProductConventions(), DAY - timedelta(days=5))
    option = next(o for o in stale if o.kind == "suspension")
    shifted = tuple(replace(i, due_date=i.due_date + timedelta(days=5)) for i in option.instalments)
    with pytest.raises(PlanError, match="price the plan again"):
        plan_effect(book, loan_key, DAY, shifted, option.waived_total)
