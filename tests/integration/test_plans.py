"""Plans end to end through the services on both backends: finances encrypted and assessed, options priced from
the ledger, offers within and beyond an agent's limits, supervisor decisions, acceptance — all audited.

The book (`plans_book`): borrower PB1 has loan P1, 6,000.00 in six monthly instalments of 1,000.00 principal,
10.00 interest and 5.00 fee, due on the 15th from January to June 2026, never paid, penalty at 18.25 % a year
(actual/365: 0.50 a day on each 1,000.00 overdue), and loan P2, not yet due. As of 20 April 2026 four
instalments are overdue, 95 days past due. A plan taking effect that day restructures the payoff on the day
(a payment that day stops the day's own penalty): penalty 16 Jan-19 Apr = 94 days x 0.50 = 47.00, then 63, 35
and 4 days = 31.50, 17.50, 2.00, so 98.00 in all; interest 6 x 10.00 = 60.00 (40.00 due, 20.00 not yet); fees
6 x 5.00 = 30.00; principal 6,000.00; total 6,188.00. Due and unpaid: 4,000.00 + 40.00 + 20.00 + 98.00 =
4,158.00 (the credit a plan accepted that day settles).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from duecourse.adapters.crypto import FieldCipher
from duecourse.adapters.db import tables as t
from duecourse.audit.log import entries, verify
from duecourse.domain.errors import NotFoundError, PlanError
from duecourse.plans.policy import load_plan_policy
from duecourse.services import plans
from duecourse.services.importer import import_book
from duecourse.services.plans import FinancesInput
from duecourse.services.reports import loan_state

ROOT = Path(__file__).resolve().parents[2]
POLICY = load_plan_policy(ROOT / "policy" / "plans.yaml")
AS_OF = date(2026, 4, 20)
NOW = datetime(2026, 4, 20, 3, tzinfo=UTC)

BOOK = {
    "products.yaml": "products:\n  PL:\n    currency: CNY\n    conventions: {}\n",
    "borrowers.csv": "borrower_id,name,national_id,birth_date,language,flags,region\n"
    "PB1,李娜,110101198001010011,1980-01-01,zh-CN,,CN-11\n",
    "contact_points.csv": "contact_id,borrower_id,kind,owner,value,latitude,longitude,time_zone,valid,consent\n"
    "PC1,PB1,phone,borrower,+8613800138999,,,Asia/Shanghai,true,true\n",
    "loans.csv": "loan_id,borrower_id,product,currency,principal,annual_rate,penalty_rate,term,start_date,method\n"
    "P1,PB1,PL,CNY,6000.00,0.02,0.1825,6,2025-12-15,equal_principal\n"
    "P2,PB1,PL,CNY,1000.00,0.12,0.1825,1,2026-04-01,equal_principal\n",
    "instalments.csv": "loan_id,seq,due_date,principal,interest,fee\n"
    + "".join(f"P1,{m},2026-{m:02d}-15,1000.00,10.00,5.00\n" for m in range(1, 7))
    + "P2,1,2026-05-01,1000.00,10.00,0.00\n",
}

FINANCES = FinancesInput(
    monthly_income=(Decimal("15000.00"), "stated"),
    essential_expenses=(Decimal("4000.00"), "evidenced"),
    other_debt_payments=(Decimal("1000.00"), "stated"),
    savings=(Decimal("2000.00"), "stated"),
    household_size=2,
    dependants=1,
    region="CN-11",
)


@pytest.fixture
def cipher(tmp_path: Path) -> FieldCipher:
    return FieldCipher.from_key_file(tmp_path / "data.key")


@pytest.fixture
def book(engine: Engine, cipher: FieldCipher, tmp_path: Path) -> Engine:
    load_plans_book(engine, cipher, tmp_path)
    return engine


def load_plans_book(engine: Engine, cipher: FieldCipher, tmp_path: Path) -> None:
    """Import BOOK into `engine` (the other test_plans_* modules use it too)."""
    folder = tmp_path / "book"
    folder.mkdir()
    for name, text in BOOK.items():
        (folder / name).write_text(text, encoding="utf-8")
    report = import_book(engine, folder, tmp_path / "rejects", cipher, "test", datetime(2026, 4, 1, tzinfo=UTC))
    assert report.rejected == 0, report.errors


def test_the_balance_offered_on_is_read_from_the_ledger_by_component(book: Engine, cipher: FieldCipher) -> None:
    plans.record_finances(book, cipher, POLICY, "PB1", FINANCES, "agent-7", NOW)
    debt = plans.price(book, cipher, POLICY, "P1", AS_OF).debt
    assert (debt.principal, debt.interest, debt.penalty, debt.fee) == (600_000, 6_000, 9_800, 3_000)
    assert (debt.total, debt.days_past_due, debt.remaining_months) == (618_800, 95, 2)


def test_finances_are_stored_encrypted_assessed_and_audited_without_amounts(book: Engine, cipher: FieldCipher) -> None:
    recorded = plans.record_finances(book, cipher, POLICY, "PB1", FINANCES, "agent-7", NOW)
    a = recorded["assessment"]
    # 15,000.00 - 4,000.00 (evidenced, so counted as stated) - 1,000.00 = 10,000.00; 80 % of it may be asked.
    assert (a["disposable"], a["max_monthly_payment"], a["essentials"]) == ("10000.00", "8000.00", "4000.00")
    assert a["essentials_basis"] == "evidenced essential expenses"
    shown = plans.show_finances(book, cipher, POLICY, "PB1", proposed=Decimal("2500.00"))
    assert shown["finances"]["monthly_income"] == {"amount": "15000.00", "source": "stated"}
    assert shown["proposed"] == {"monthly_payment": "2500.00", "share_of_disposable": "0.2500", "affordable": True}
    assert plans.show_finances(book, cipher, POLICY, "PB1", Decimal("8000.01"))["proposed"]["affordable"] is False
    with book.connect() as conn:
        stored = conn.execute(select(t.debtor_finances.c.finances_enc)).scalar_one()
        audit = [e for e in entries(conn) if e["action"] == "finances.recorded"]
    assert b"1500000" not in stored and b"stated" not in stored
    assert len(audit) == 1 and "1500000" not in audit[0]["payload"] and "李娜" not in audit[0]["payload"]
    assert audit[0]["entity_id"] == "PB1" and audit[0]["actor"] == "agent-7"


def test_a_stated_essential_figure_below_the_house_standard_is_replaced_by_it(
    book: Engine, cipher: FieldCipher
) -> None:
    low = FinancesInput(
        monthly_income=(Decimal("9000"), "stated"),
        essential_expenses=(Decimal("1000.00"), "stated"),
        other_debt_payments=(Decimal("0"), "estimated"),
        savings=(Decimal("0"), "stated"),
        household_size=3,
        dependants=2,
        region="CN-11",
    )
    a = plans.record_finances(book, cipher, POLICY, "PB1", low, "agent-7", NOW)["assessment"]
    # Beijing's standard for three: 3,800.00 + 2 x 1,700.00 = 7,200.00; 9,000.00 - 7,200.00 = 1,800.00.
    assert (a["essentials"], a["disposable"], a["max_monthly_payment"]) == ("7200.00", "1800.00", "1440.00")
    assert "below the house standard" in a["essentials_basis"]


def test_finances_typed_finer_than_a_fen_or_with_an_unknown_source_are_refused(
    book: Engine, cipher: FieldCipher
) -> None:
    with pytest.raises(PlanError, match="monthly_income"):
        bad = FinancesInput(**{**FINANCES.__dict__, "monthly_income": (Decimal("100.001"), "stated")})
        plans.record_finances(book, cipher, POLICY, "PB1", bad, "agent-7", NOW)
    with pytest.raises(PlanError, match="source 'guessed'"):
        bad = FinancesInput(**{**FINANCES.__dict__, "savings": (Decimal("1"), "guessed")})
        plans.record_finances(book, cipher, POLICY, "PB1", bad, "agent-7", NOW)
    with pytest.raises(NotFoundError):
        plans.record_finances(book, cipher, POLICY, "NOBODY", FINANCES, "agent-7", NOW)


def test_options_need_finances_first(book: Engine, cipher: FieldCipher) -> None:
    with pytest.raises(PlanError, match="no finances"):
        plans.loan_options(book, cipher, POLICY, "P1", AS_OF)


def test_options_are_ranked_with_reasons_and_every_schedule_is_exact_to_the_fen(
    book: Engine, cipher: FieldCipher
) -> None:
    plans.record_finances(book, cipher, POLICY, "PB1", FINANCES, "agent-7", NOW)
    view = plans.loan_options(book, cipher, POLICY, "P1", AS_OF)
    assert view["outstanding"]["total"] == "6188.00" and view["outstanding"]["days_past_due"] == 95
    kinds = {(o["kind"], o["months"]) for o in view["options"]}
    assert ("restructure", 36) in kinds and ("restructure", 48) not in kinds  # product limit: 36 months
    assert {("holiday", 7), ("holiday", 8), ("holiday", 9), ("settlement", 1)} <= kinds
    assert view["options"][0]["reason"].startswith("best: affordable")
    for o in view["options"]:
        rows = o["instalments"]
        assert sum(Decimal(r["amount"]) for r in rows) == Decimal(o["total_paid"])
        assert Decimal(o["restructured"]) + Decimal(o["waived_total"]) == Decimal("6188.00")
        assert Decimal(o["total_paid"]) == Decimal(o["restructured"]) + Decimal(o["plan_interest"])
    settlement = next(o for o in view["options"] if o["kind"] == "settlement")
    # 95 days past due: up to 20 % off; 6,188.00 x 0.8 = 4,950.40, waived from fees, penalty, interest, principal.
    assert (settlement["total_paid"], settlement["discount"]) == ("4950.40", "0.20")
    assert settlement["waived"] == {"fee": "30.00", "penalty": "98.00", "interest": "60.00", "principal": "1049.60"}
    assert settlement["agreed_by"] == "team_lead"
    restructure = next(o for o in view["options"] if (o["kind"], o["months"]) == ("restructure", 12))
    assert restructure["waived"] == {"penalty": "98.00", "fee": "30.00"} and restructure["agreed_by"] == "agent"
    assert [v["loan_id"] for v in plans.borrower_options(book, cipher, POLICY, "PB1", AS_OF)] == ["P1"]


def test_an_offer_within_the_agents_limits_can_be_accepted_at_once(book: Engine, cipher: FieldCipher) -> None:
    plans.record_finances(book, cipher, POLICY, "PB1", FINANCES, "agent-7", NOW)
    offered = plans.offer(book, cipher, POLICY, "P1", "restructure", 12, "agent-7", "agent", AS_OF, NOW)
    assert offered["state"] == "offered" and offered["authority"]["within"] is True
    accepted = plans.accept(book, POLICY, offered["plan_id"], AS_OF, "agent-7", NOW)
    assert accepted["state"] == "active" and accepted["effective_date"] == "2026-04-20"
    assert accepted["watch_until"] == "2026-07-19"  # 90 days on
    assert accepted["credit_amount"] == "4158.00"
    # The stored schedule is the offered one, to the fen, and repays the restructured balance plus interest.
    assert [(r["due_date"], r["principal"], r["interest"]) for r in accepted["schedule"]] == [
        (r["due_date"], r["principal"], r["interest"]) for r in offered["instalments"]
    ]
    assert sum(Decimal(r["principal"]) for r in accepted["schedule"]) == Decimal("6060.00")
    # On the ledger the next day: the arrears are settled by the credit, the loan follows the plan.
    state = loan_state(book, "P1", date(2026, 4, 21))
    assert (state["days_past_due"], state["bucket"], state["overdue_total"]) == (0, "current", "0.00")
    first = accepted["schedule"][0]
    assert (state["next_due_date"], state["next_due_amount"]) == (
        first["due_date"],
        str(Decimal(first["principal"]) + Decimal(first["interest"])),
    )
    assert state["outstanding_total"] == accepted["total_paid"]
    with pytest.raises(PlanError, match="active and cannot be accepted"):
        plans.accept(book, POLICY, offered["plan_id"], AS_OF, "agent-7", NOW)
    second = plans.offer(book, cipher, POLICY, "P1", "suspension", 12, "agent-7", "agent", AS_OF, NOW)
    with pytest.raises(PlanError, match="already has plan"):
        plans.accept(book, POLICY, second["plan_id"], AS_OF, "agent-7", NOW)


def test_an_offer_beyond_the_agents_limits_takes_effect_only_once_a_supervisor_approves(
    book: Engine, cipher: FieldCipher
) -> None:
    plans.record_finances(book, cipher, POLICY, "PB1", FINANCES, "agent-7", NOW)
    pending = plans.offer(book, cipher, POLICY, "P1", "restructure", 36, "agent-7", "agent", AS_OF, NOW)
    assert pending["state"] == "pending_approval"
    assert pending["authority"]["beyond"] == ["term 36 months is over the agent limit of 24"]
    with pytest.raises(PlanError, match="waits for a supervisor"):
        plans.accept(book, POLICY, pending["plan_id"], AS_OF, "PB1", NOW)
    with pytest.raises(PlanError, match="only a supervisor"):
        plans.approve(book, POLICY, pending["plan_id"], "lead-2", "team_lead", "fine", NOW)
    with pytest.raises(PlanError, match="cannot decide it too"):
        plans.approve(book, POLICY, pending["plan_id"], "agent-7", "supervisor", "fine", NOW)
    with pytest.raises(PlanError, match="needs its reason"):
        plans.approve(book, POLICY, pending["plan_id"], "sup-1", "supervisor", " ", NOW)
    assert plans.show_plan(book, pending["plan_id"])["state"] == "pending_approval"
    with book.connect() as conn:
        assert conn.execute(select(t.plan_instalment)).first() is None
    approved = plans.approve(book, POLICY, pending["plan_id"], "sup-1", "supervisor", "income evidenced", NOW)
    assert (approved["state"], approved["decided_by"], approved["decision_reason"]) == (
        "approved",
        "sup-1",
        "income evidenced",
    )
    with pytest.raises(PlanError, match="only an offer pending approval"):
        plans.decline(book, POLICY, pending["plan_id"], "sup-1", "supervisor", "changed my mind", NOW)
    accepted = plans.accept(book, POLICY, pending["plan_id"], AS_OF, "PB1", NOW)
    assert accepted["state"] == "active" and len(accepted["schedule"]) == 36
    with book.connect() as conn:
        trail = [(e["action"], e["actor"]) for e in entries(conn) if e["entity_id"] == pending["plan_id"]]
        assert verify(conn)[1] is None
    assert trail == [("plan.offered", "agent-7"), ("plan.approved", "sup-1"), ("plan.accepted", "PB1")]


def test_a_declined_offer_can_never_be_accepted(book: Engine, cipher: FieldCipher) -> None:
    plans.record_finances(book, cipher, POLICY, "PB1", FINANCES, "agent-7", NOW)
    pending = plans.offer(book, cipher, POLICY, "P1", "settlement", 1, "agent-7", "agent", AS_OF, NOW)
    assert pending["state"] == "pending_approval"
    assert pending["authority"]["beyond"] == [
        "waiver 20.00% of the balance is over the agent limit of 10%",
        "settlement discount 20% is over the agent limit of 0%",
    ]
    declined = plans.decline(book, POLICY, pending["plan_id"], "sup-1", "supervisor", "savings not evidenced", NOW)
    assert declined["state"] == "declined"
    with pytest.raises(PlanError, match="declined and cannot be accepted"):
        plans.accept(book, POLICY, pending["plan_id"], AS_OF, "PB1", NOW)
    with pytest.raises(PlanError, match="only an offer pending approval"):
        plans.approve(book, POLICY, pending["plan_id"], "sup-2", "supervisor", "overrule", NOW)
    # The same settlement offered by a team lead is within that role's limits.
    by_lead = plans.offer(book, cipher, POLICY, "P1", "settlement", 1, "lead-2", "team_lead", AS_OF, NOW)
    assert by_lead["state"] == "offered"
    listed = plans.list_plans(book, borrower_id="PB1")
    assert [(p["plan_id"], p["state"]) for p in listed] == [
        (by_lead["plan_id"], "offered"),
        (pending["plan_id"], "declined"),
    ]
    assert plans.list_plans(book, state="declined")[0]["plan_id"] == pending["plan_id"]
    with book.connect() as conn:
        assert verify(conn)[1] is None


def test_an_option_the_loan_does_not_have_or_an_unknown_role_is_refused(book: Engine, cipher: FieldCipher) -> None:
    plans.record_finances(book, cipher, POLICY, "PB1", FINANCES, "agent-7", NOW)
    with pytest.raises(PlanError, match="no restructure option over 48 months"):
        plans.offer(book, cipher, POLICY, "P1", "restructure", 48, "agent-7", "agent", AS_OF, NOW)
    with pytest.raises(PlanError, match="unknown role"):
        plans.offer(book, cipher, POLICY, "P1", "restructure", 12, "agent-7", "boss", AS_OF, NOW)
    with pytest.raises(NotFoundError):
        plans.show_plan(book, "PLAN-NONE")
