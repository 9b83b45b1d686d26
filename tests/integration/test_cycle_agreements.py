"""The daily cycle follows up promises and plans, on both backends: an open promise or an active plan
pauses the ladder; a promise is marked kept, partly kept or broken; a broken promise or plan lets the
ladder treat the loan again the next day; every judgement is audited."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, insert, select

from duecourse.adapters.crypto import FieldCipher
from duecourse.adapters.db import tables as t
from duecourse.audit import log as audit_log
from duecourse.compliance.port import NoComplianceEngine
from duecourse.demo.book import generate_book, write_book
from duecourse.domain.conventions import ProductConventions
from duecourse.plans.affordability import Finances, Sourced, assess
from duecourse.plans.options import plan_options
from duecourse.plans.policy import load_plan_policy
from duecourse.services.cycle import run_cycle
from duecourse.services.importer import import_book
from duecourse.services.plan_ledger import balance_to_restructure, plan_effect
from duecourse.strategy import load_strategy

ROOT = Path(__file__).resolve().parents[2]
STRATEGY = load_strategy(ROOT / "strategies" / "default.yaml")
POLICY = load_plan_policy(ROOT / "policy" / "plans.yaml")
D = date(2026, 11, 20)


@dataclass
class _Recorder(NoComplianceEngine):
    """Keeps which loans the ladder proposed a step for (compliance is not what these tests are about)."""

    proposed: list[set[int]] = field(default_factory=list)

    def review(self, proposals: pl.DataFrame, as_of: date, at: datetime | None = None) -> pl.DataFrame:
        self.proposed.append(set(proposals.get_column("loan_key").to_list()))
        return super().review(proposals, as_of, at)


def _proposed(engine: Engine, day: date, *, dry_run: bool) -> tuple[set[int], object]:
    gate = _Recorder()
    summary = run_cycle(engine, STRATEGY, gate, day, now=datetime.combine(day, time(20), UTC), dry_run=dry_run)
    return gate.proposed[0], summary


@pytest.fixture
def book(engine: Engine, tmp_path: Path) -> Engine:
    generated = generate_book(200, date(2026, 11, 1), seed=5, days_ahead=90)
    folder = write_book(generated, tmp_path / "book", "csv")
    cipher = FieldCipher.from_key_file(tmp_path / "key")
    assert (
        import_book(engine, folder, tmp_path / "rejects", cipher, "t", datetime(2026, 11, 1, tzinfo=UTC)).rejected == 0
    )
    return engine


def _borrower(engine: Engine, loan_key: int) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(t.loan.c.borrower_key).where(t.loan.c.loan_key == loan_key)).scalar_one())


def _promise(engine: Engine, loan_key: int, amount: int, due: date, key: str) -> None:
    borrower_key = _borrower(engine, loan_key)
    with engine.begin() as conn:
        conn.execute(
            insert(t.promise_to_pay),
            {
                "promise_id": key, "borrower_key": borrower_key, "loan_key": loan_key,
                "amount": amount, "currency": "CNY", "due_date": due, "channel": "call", "taken_by": "agent-7",
                "taken_at": datetime.combine(D - timedelta(days=1), time(9), UTC), "state": "open",
                "event_id": f"test:{key}",
            },
        )  # fmt: skip


def _states(engine: Engine, table: t.Table, key: str) -> dict[str, str]:  # type: ignore[name-defined]
    with engine.connect() as conn:
        return {str(k): str(s) for k, s in conn.execute(select(table.c[key], table.c.state)).all()}


def test_a_promise_pauses_the_ladder_until_it_is_broken_and_a_kept_one_is_marked(book: Engine) -> None:
    on_d, _ = _proposed(book, D, dry_run=True)
    next_day, _ = _proposed(book, D + timedelta(days=1), dry_run=True)
    candidates = sorted(on_d & next_day)
    assert len(candidates) >= 2, "the demo book has loans treated on both days"
    broken_loan, kept_loan = candidates[0], candidates[1]
    _promise(book, broken_loan, 100_000, D, "PR-broken")
    _promise(book, kept_loan, 30_000, D + timedelta(days=3), "PR-kept")
    with book.begin() as conn:  # the debtor pays what they promised, early
        conn.execute(
            insert(t.payment),
            {"payment_id": "PAY-kept", "loan_key": kept_loan, "value_date": D, "amount": 30_000,
             "booked_at": datetime.combine(D, time(12), UTC)},
        )  # fmt: skip

    proposed, summary = _proposed(book, D, dry_run=False)
    assert broken_loan not in proposed, "an open promise pauses the ladder"
    assert summary.promises == {"kept": 1}  # type: ignore[attr-defined]
    assert _states(book, t.promise_to_pay, "promise_id") == {"PR-broken": "open", "PR-kept": "kept"}

    proposed, summary = _proposed(book, D + timedelta(days=1), dry_run=False)
    assert summary.promises == {"broken": 1}  # type: ignore[attr-defined]
    assert broken_loan in proposed, "the day after the break the ladder treats the loan again"
    assert _states(book, t.promise_to_pay, "promise_id")["PR-broken"] == "broken"
    with book.connect() as conn:
        actions = [e["action"] for e in audit_log.entries(conn)]
        assert actions.count("promise.kept") == 1 and actions.count("promise.broken") == 1
        assert audit_log.verify(conn)[1] is None
    # Running the day again judges nothing twice.
    _, again = _proposed(book, D + timedelta(days=1), dry_run=False)
    assert again.promises == {}  # type: ignore[attr-defined]


def test_an_active_plan_pauses_the_ladder_and_a_broken_one_resumes_it(book: Engine) -> None:
    on_d, _ = _proposed(book, D, dry_run=True)
    loan_key = min(on_d)
    debt = balance_to_restructure(book, loan_key, D)
    finances = Finances(
        "CNY", Sourced(3_000_000, "evidenced"), Sourced(300_000, "evidenced"), Sourced(0, "stated"),
        Sourced(0, "stated"), household_size=1, dependants=0,
    )  # fmt: skip
    option = next(
        o
        for o in plan_options(debt, assess(finances, POLICY), POLICY, ProductConventions(), D)
        if o.kind == "suspension"
    )
    effect = plan_effect(book, loan_key, D, option.instalments, option.waived_total)
    borrower_key = _borrower(book, loan_key)
    with book.begin() as conn:
        plan_key = conn.execute(
            insert(t.repayment_plan).returning(t.repayment_plan.c.plan_key),
            {
                "plan_id": "PLAN-1",
                "loan_key": loan_key,
                "borrower_key": borrower_key,
                "kind": option.kind,
                "state": "active",
                "offered_at": datetime.combine(D, time(9), UTC),
                "offered_by": "agent-7",
                "offered_role": "supervisor",
                "effective_date": D,
                "credit_amount": effect.credit_amount,
                "restructured": option.restructured,
                "plan_interest": option.plan_interest,
                "waived": dict(option.waived),
                "option": {},
            },
        ).scalar_one()
        conn.execute(
            insert(t.plan_instalment),
            [{"plan_key": plan_key, "seq": i.seq, "due_date": i.due_date, "principal": i.principal,
              "interest": i.interest, "fee": 0} for i in effect.instalments],
        )  # fmt: skip

    proposed, summary = _proposed(book, D, dry_run=False)
    assert loan_key not in proposed and summary.plans == {}  # type: ignore[attr-defined]
    # Nothing is paid on the plan: its first instalment falls due a month later, and 30 days after that
    # the plan breaks; the ladder treats the loan again that day.
    first_due = option.instalments[0].due_date
    quiet, summary = _proposed(book, first_due + timedelta(days=29), dry_run=False)
    assert loan_key not in quiet and summary.plans == {}  # type: ignore[attr-defined]
    proposed, summary = _proposed(book, first_due + timedelta(days=30), dry_run=False)
    assert summary.plans == {"broken": 1} and loan_key in proposed  # type: ignore[attr-defined]
    assert _states(book, t.repayment_plan, "plan_id") == {"PLAN-1": "broken"}
