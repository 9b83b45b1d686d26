"""Repayment plans in use: a debtor's finances recorded, options priced from the ledger, offers, approvals, acceptance.

The pure core (duecourse.plans) prices and ranks; this module gathers its facts from the store (the loan's
balance by component from the ledger as of the day, the debtor's latest finances) and stores what is agreed,
each change with its audit entry in the same transaction. Money is integer minor units inside; results are
JSON-ready with amounts as exact major-unit strings, as `duecourse loan show` prints them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Protocol

from sqlalchemy import Connection, Engine, insert, select, update

from duecourse.adapters.db import tables as t
from duecourse.audit.chain import AuditRecord
from duecourse.audit.log import append
from duecourse.domain.errors import NotFoundError, PlanError
from duecourse.domain.money import from_minor, to_minor
from duecourse.plans.affordability import Affordability, Finances, Sourced, assess
from duecourse.plans.authority import check_authority
from duecourse.plans.options import Outstanding, PlanInstalment, PlanOption, plan_options
from duecourse.plans.policy import ROLES, PlanPolicy
from duecourse.services.book_frames import load_conventions
from duecourse.services.plan_ledger import balance_to_restructure, plan_effect

FINANCES_FIELD: Final = "debtor_finances.finances_enc"
SOURCES: Final = ("stated", "evidenced", "estimated")
FIGURES: Final = ("monthly_income", "essential_expenses", "other_debt_payments", "savings")
# A plan the debtor may still accept; one waiting for a supervisor, or declined, may not be.
ACCEPTABLE: Final = ("offered", "approved")


class Cipher(Protocol):
    """The field cipher (adapters/crypto.py), seen through the two methods finances need."""

    def encrypt(self, plaintext: str, field: str) -> bytes: ...

    def decrypt(self, token: bytes, field: str) -> str: ...


# --- finances and affordability ---------------------------------------------------------------------


@dataclass(frozen=True)
class FinancesInput:
    """Finances as a person types them: amounts in major units (exact Decimal), each with its source."""

    monthly_income: tuple[Decimal, str]
    essential_expenses: tuple[Decimal, str]
    other_debt_payments: tuple[Decimal, str]
    savings: tuple[Decimal, str]
    household_size: int
    dependants: int
    region: str | None = None

    def to_finances(self, currency: str) -> Finances:
        figures = {}
        for name in FIGURES:
            amount, source = getattr(self, name)
            if source not in SOURCES:
                raise PlanError(f"{name}: source {source!r} is not one of {', '.join(SOURCES)}")
            try:
                figures[name] = Sourced(to_minor(amount, currency), source)
            except ValueError as exc:
                raise PlanError(f"{name}: {exc}") from None
        try:
            return Finances(
                currency=currency,
                household_size=self.household_size,
                dependants=self.dependants,
                region=self.region,
                **figures,
            )
        except ValueError as exc:
            raise PlanError(str(exc)) from None


def record_finances(
    engine: Engine,
    cipher: Cipher,
    policy: PlanPolicy,
    borrower_id: str,
    given: FinancesInput,
    recorded_by: str,
    now: datetime,
    origin: str = "cli",
) -> dict[str, Any]:
    """Store a debtor's finances (encrypted) and return the assessment they give; audited without amounts."""
    finances = given.to_finances(policy.currency)
    assessment = assess(finances, policy)
    with engine.begin() as conn:
        borrower_key = _borrower_key(conn, borrower_id)
        key = conn.execute(
            insert(t.debtor_finances)
            .values(
                borrower_key=borrower_key,
                recorded_at=_utc(now),
                recorded_by=recorded_by,
                finances_enc=cipher.encrypt(json.dumps(_finances_json(finances), sort_keys=True), FINANCES_FIELD),
            )
            .returning(t.debtor_finances.c.finances_key)
        ).scalar_one()
        # Income and debts are personal data, kept encrypted: the audit entry says what was recorded and on
        # what basis, not the amounts.
        payload = {
            "borrower_id": borrower_id,
            "finances_key": key,
            "sources": {name: getattr(finances, name).source for name in FIGURES},
            "household_size": finances.household_size,
            "dependants": finances.dependants,
            "region": finances.region,
        }
        append(
            conn,
            [
                AuditRecord(
                    recorded_by, origin, "finances.recorded", "borrower", borrower_id, "finances recorded", payload
                )
            ],
            now,
        )
    return {"borrower_id": borrower_id, "finances_key": key, **_assessment_json(finances, assessment)}


def show_finances(
    engine: Engine, cipher: Cipher, policy: PlanPolicy, borrower_id: str, proposed: Decimal | None = None
) -> dict[str, Any]:
    """The debtor's latest finances, the assessment, and the share of disposable income `proposed` would take."""
    with engine.connect() as conn:
        key, finances, recorded = _latest_finances(conn, cipher, _borrower_key(conn, borrower_id))
    assessment = assess(finances, policy)
    out = {"borrower_id": borrower_id, "finances_key": key, **recorded, **_assessment_json(finances, assessment)}
    if proposed is not None:
        try:
            payment = to_minor(proposed, finances.currency)
        except ValueError as exc:
            raise PlanError(str(exc)) from None
        share = assessment.share(payment)
        out["proposed"] = {
            "monthly_payment": _money(payment, finances.currency),
            "share_of_disposable": None if share is None else str(share),
            "affordable": assessment.affords(payment),
        }
    return out


def _finances_json(f: Finances) -> dict[str, Any]:
    return {
        "currency": f.currency,
        **{name: {"amount": getattr(f, name).amount, "source": getattr(f, name).source} for name in FIGURES},
        "household_size": f.household_size,
        "dependants": f.dependants,
        "region": f.region,
    }


def _finances_from_json(doc: Mapping[str, Any]) -> Finances:
    return Finances(
        currency=doc["currency"],
        household_size=doc["household_size"],
        dependants=doc["dependants"],
        region=doc["region"],
        **{name: Sourced(doc[name]["amount"], doc[name]["source"]) for name in FIGURES},
    )


def _latest_finances(conn: Connection, cipher: Cipher, borrower_key: int) -> tuple[int, Finances, dict[str, Any]]:
    f = t.debtor_finances
    row = conn.execute(
        select(f.c.finances_key, f.c.finances_enc, f.c.recorded_at, f.c.recorded_by)
        .where(f.c.borrower_key == borrower_key)
        .order_by(f.c.recorded_at.desc(), f.c.finances_key.desc())
        .limit(1)
    ).first()
    if row is None:
        raise PlanError("no finances are recorded for this debtor: record them first (plans finances record)")
    finances = _finances_from_json(json.loads(cipher.decrypt(row.finances_enc, FINANCES_FIELD)))
    recorded = {"recorded_at": _utc(row.recorded_at).isoformat(), "recorded_by": row.recorded_by}
    return int(row.finances_key), finances, recorded


def _assessment_json(f: Finances, a: Affordability) -> dict[str, Any]:
    cur = f.currency
    return {
        "currency": cur,
        "finances": {
            **{
                name: {"amount": _money(getattr(f, name).amount, cur), "source": getattr(f, name).source}
                for name in FIGURES
            },
            "household_size": f.household_size,
            "dependants": f.dependants,
            "region": f.region,
        },
        "assessment": {
            "income": _money(a.income, cur),
            "essentials": _money(a.essentials, cur),
            "essentials_basis": a.essentials_basis,
            "other_debts": _money(a.other_debts, cur),
            "disposable": _money(a.disposable, cur),
            "savings": _money(a.savings, cur),
            "max_share_of_disposable": str(a.max_share),
            "max_monthly_payment": _money(a.max_monthly_payment, cur),
        },
    }


# --- the loan's balance and the options -------------------------------------------------------------


@dataclass(frozen=True)
class Priced:
    """Everything an offer is built from: the loan, its balance, the finances used and the ranked options."""

    loan_key: int
    borrower_key: int
    borrower_id: str
    finances_key: int
    debt: Outstanding
    affordability: Affordability
    options: list[PlanOption]


def price(engine: Engine, cipher: Cipher, policy: PlanPolicy, loan_id: str, as_of: date) -> Priced:
    with engine.connect() as conn:
        loan = conn.execute(
            select(t.loan.c.loan_key, t.loan.c.borrower_key, t.loan.c.product, t.borrower.c.borrower_id)
            .join(t.borrower, t.borrower.c.borrower_key == t.loan.c.borrower_key)
            .where(t.loan.c.loan_id == loan_id)
        ).first()
        if loan is None:
            raise NotFoundError(f"no loan with id {loan_id!r}")
        finances_key, finances, _ = _latest_finances(conn, cipher, int(loan.borrower_key))
    debt = balance_to_restructure(engine, int(loan.loan_key), as_of)
    conventions = load_conventions(engine)[loan.product]
    try:
        affordability = assess(finances, policy)
        options = plan_options(debt, affordability, policy, conventions, as_of)
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    return Priced(
        int(loan.loan_key), int(loan.borrower_key), loan.borrower_id, finances_key, debt, affordability, options
    )


def loan_options(engine: Engine, cipher: Cipher, policy: PlanPolicy, loan_id: str, as_of: date) -> dict[str, Any]:
    """The ranked options for one loan as of a day, each with the role that may agree it."""
    p = price(engine, cipher, policy, loan_id, as_of)
    cur = p.debt.currency
    return {
        "loan_id": loan_id,
        "borrower_id": p.borrower_id,
        "as_of": as_of.isoformat(),
        "currency": cur,
        "outstanding": {
            "days_past_due": p.debt.days_past_due,
            **{c: _money(p.debt.component(c), cur) for c in ("principal", "interest", "penalty", "fee")},
            "total": _money(p.debt.total, cur),
            "remaining_months": p.debt.remaining_months,
        },
        "disposable": _money(p.affordability.disposable, cur),
        "max_monthly_payment": _money(p.affordability.max_monthly_payment, cur),
        "options": [
            {"rank": i, **option_json(o, cur), "agreed_by": _lowest_role(o, p.debt.total, policy)}
            for i, o in enumerate(p.options, 1)
        ],
    }


def borrower_options(
    engine: Engine, cipher: Cipher, policy: PlanPolicy, borrower_id: str, as_of: date
) -> list[dict[str, Any]]:
    """The options for each of a debtor's loans that is overdue as of the day (days past due > 0)."""
    with engine.connect() as conn:
        key = _borrower_key(conn, borrower_id)
        loans = conn.execute(
            select(t.loan.c.loan_id)
            .where(t.loan.c.borrower_key == key, t.loan.c.start_date <= as_of)
            .order_by(t.loan.c.loan_id)
        ).scalars()
        loan_ids = list(loans)
    # A debtor has a handful of loans: one ledger read each, as `loan show` does.
    views = [loan_options(engine, cipher, policy, loan_id, as_of) for loan_id in loan_ids]
    return [v for v in views if v["outstanding"]["days_past_due"] > 0]


def option_json(o: PlanOption, currency: str) -> dict[str, Any]:
    return {
        "kind": o.kind,
        "months": o.months,
        "monthly_payment": _money(o.monthly_payment, currency),
        "total_paid": _money(o.total_paid, currency),
        "restructured": _money(o.restructured, currency),
        "plan_interest": _money(o.plan_interest, currency),
        "waived": {c: _money(v, currency) for c, v in o.waived.items()},
        "waived_total": _money(o.waived_total, currency),
        "share_of_disposable": None if o.share is None else str(o.share),
        "affordable": o.affordable,
        "likelihood": str(o.likelihood),
        "expected_recovery": _money(o.expected_recovery, currency),
        "discount": str(o.discount),
        "reason": o.reason,
        "instalments": [
            {
                "seq": r.seq,
                "due_date": r.due_date.isoformat(),
                "principal": _money(r.principal, currency),
                "interest": _money(r.interest, currency),
                "amount": _money(r.amount, currency),
            }
            for r in o.instalments
        ],
    }


def _lowest_role(o: PlanOption, total: int, policy: PlanPolicy) -> str | None:
    return next((r for r in ROLES if check_authority(o, total, r, policy).within), None)


# --- offers and decisions ---------------------------------------------------------------------------


def offer(
    engine: Engine,
    cipher: Cipher,
    policy: PlanPolicy,
    loan_id: str,
    kind: str,
    months: int,
    agent: str,
    role: str,
    as_of: date,
    now: datetime,
    origin: str = "cli",
) -> dict[str, Any]:
    """Offer one of the loan's options. Within the role's limits it is `offered` (the debtor may accept at
    once); beyond them it is `pending_approval` until a supervisor approves or declines it."""
    if role not in ROLES:
        raise PlanError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    p = price(engine, cipher, policy, loan_id, as_of)
    chosen = next((o for o in p.options if o.kind == kind and o.months == months), None)
    if chosen is None:
        known = ", ".join(f"{o.kind}/{o.months}" for o in p.options)
        raise PlanError(f"loan {loan_id} has no {kind} option over {months} months as of {as_of}; options: {known}")
    check = check_authority(chosen, p.debt.total, role, policy)
    state = "offered" if check.within else "pending_approval"
    plan_id = f"PLAN-{now.astimezone(UTC):%Y%m%d}-{uuid.uuid4().hex[:10].upper()}"
    stored = {
        **_option_minor(chosen),
        "as_of": as_of.isoformat(),
        "currency": p.debt.currency,
        "outstanding_total": p.debt.total,
        "days_past_due": p.debt.days_past_due,
        "authority": {"role": role, "within": check.within, "beyond": list(check.reasons)},
    }
    with engine.begin() as conn:
        conn.execute(
            insert(t.repayment_plan).values(
                plan_id=plan_id,
                loan_key=p.loan_key,
                borrower_key=p.borrower_key,
                finances_key=p.finances_key,
                kind=chosen.kind,
                state=state,
                offered_at=_utc(now),
                offered_by=agent,
                offered_role=role,
                restructured=chosen.restructured,
                plan_interest=chosen.plan_interest,
                waived=dict(chosen.waived),
                option=stored,
            )
        )
        reason = (
            f"within the {role}'s limits"
            if check.within
            else "beyond the " + role + "'s limits, waits for a supervisor: " + "; ".join(check.reasons)
        )
        payload = {
            "loan_id": loan_id,
            "kind": chosen.kind,
            "months": chosen.months,
            "state": state,
            "role": role,
            "restructured": chosen.restructured,
            "waived": dict(chosen.waived),
            "beyond": list(check.reasons),
        }
        append(conn, [AuditRecord(agent, origin, "plan.offered", "repayment_plan", plan_id, reason, payload)], now)
        return _plan(conn, plan_id)


def approve(
    engine: Engine,
    policy: PlanPolicy,
    plan_id: str,
    by: str,
    role: str,
    reason: str,
    now: datetime,
    origin: str = "cli",
) -> dict[str, Any]:
    """A supervisor lets an offer beyond its maker's limits stand: the debtor may then accept it."""
    return _decide(engine, policy, plan_id, by, role, reason, now, origin, "approved")


def decline(
    engine: Engine,
    policy: PlanPolicy,
    plan_id: str,
    by: str,
    role: str,
    reason: str,
    now: datetime,
    origin: str = "cli",
) -> dict[str, Any]:
    """A supervisor refuses an offer beyond its maker's limits: it can never be accepted."""
    return _decide(engine, policy, plan_id, by, role, reason, now, origin, "declined")


def _decide(
    engine: Engine,
    policy: PlanPolicy,
    plan_id: str,
    by: str,
    role: str,
    reason: str,
    now: datetime,
    origin: str,
    decision: str,
) -> dict[str, Any]:
    if role != "supervisor":
        raise PlanError(f"only a supervisor may approve or decline an offer, not a {role}")
    if not reason.strip():
        raise PlanError("a decision needs its reason")
    with engine.begin() as conn:
        row = _plan_row(conn, plan_id, lock=True)
        if row.state != "pending_approval":
            raise PlanError(f"plan {plan_id} is {row.state}: only an offer pending approval is decided")
        if row.offered_by == by:
            raise PlanError(f"{by} made the offer and cannot decide it too")
        if decision == "approved":
            option = _option_from_json(row.option)
            check = check_authority(option, int(row.option["outstanding_total"]), "supervisor", policy)
            if not check.within:
                raise PlanError("beyond even a supervisor's limits: " + "; ".join(check.reasons))
        conn.execute(
            update(t.repayment_plan)
            .where(t.repayment_plan.c.plan_key == row.plan_key)
            .values(state=decision, decided_by=by, decided_at=_utc(now), decision_reason=reason)
        )
        append(
            conn,
            [
                AuditRecord(
                    by,
                    origin,
                    f"plan.{decision}",
                    "repayment_plan",
                    plan_id,
                    reason,
                    {"state": decision, "offered_by": row.offered_by, "role": role},
                )
            ],
            now,
        )
        return _plan(conn, plan_id)


def accept(
    engine: Engine,
    policy: PlanPolicy,
    plan_id: str,
    effective_date: date,
    accepted_by: str,
    now: datetime,
    origin: str = "cli",
) -> dict[str, Any]:
    """The debtor accepts an offer (made within its maker's limits, or approved by a supervisor): from
    `effective_date` the plan's instalments replace the loan's and a non-cash credit settles what was due
    (services/plan_ledger.py); the plan is active and watched for the policy's `follow_up.watch_days` from that day."""
    with engine.connect() as conn:
        row = _plan_row(conn, plan_id)
    _acceptable(row)
    option = _option_from_json(row.option)
    # Read before the write transaction opens: the effect is computed from the ledger on its own connection.
    effect = plan_effect(engine, int(row.loan_key), effective_date, option.instalments, option.waived_total)
    with engine.begin() as conn:
        row = _plan_row(conn, plan_id, lock=True)
        _acceptable(row)  # nothing decided it meanwhile
        p = t.repayment_plan
        live = conn.execute(
            select(p.c.plan_id).where(p.c.loan_key == row.loan_key, p.c.state == "active", p.c.plan_key != row.plan_key)
        ).scalar()
        if live is not None:
            raise PlanError(f"loan {row.loan_id} already has plan {live} in force")
        until = effective_date + timedelta(days=policy.follow_up.watch_days)
        conn.execute(
            update(p)
            .where(p.c.plan_key == row.plan_key)
            .values(
                state="active", effective_date=effective_date, credit_amount=effect.credit_amount, watch_until=until
            )
        )
        conn.execute(
            insert(t.plan_instalment),
            [
                {
                    "plan_key": row.plan_key,
                    "seq": i.seq,
                    "due_date": i.due_date,
                    "principal": i.principal,
                    "interest": i.interest,
                    "fee": 0,
                }
                for i in effect.instalments
            ],
        )
        payload = {
            "loan_id": row.loan_id,
            "kind": row.kind,
            "effective_date": effective_date.isoformat(),
            "credit_amount": effect.credit_amount,
            "instalments": len(effect.instalments),
            "restructured": row.restructured,
            "plan_interest": row.plan_interest,
            "waived": row.waived,
            "watch_until": until.isoformat(),
        }
        reason = f"accepted; the plan supersedes the loan's schedule from {effective_date}"
        append(
            conn, [AuditRecord(accepted_by, origin, "plan.accepted", "repayment_plan", plan_id, reason, payload)], now
        )
        return _plan(conn, plan_id)


def _acceptable(row: Any) -> None:
    if row.state == "pending_approval":
        raise PlanError(f"plan {row.plan_id} is beyond its maker's limits and waits for a supervisor's approval")
    if row.state not in ACCEPTABLE:
        raise PlanError(f"plan {row.plan_id} is {row.state} and cannot be accepted")


# --- reading plans ----------------------------------------------------------------------------------


def show_plan(engine: Engine, plan_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return _plan(conn, plan_id)


def list_plans(
    engine: Engine, borrower_id: str | None = None, loan_id: str | None = None, state: str | None = None
) -> list[dict[str, Any]]:
    """Plans, newest offer first, without their schedules (`show` has those)."""
    p = t.repayment_plan
    q = (
        select(p.c.plan_id, p.c.kind, p.c.state, p.c.offered_at, p.c.offered_by, p.c.effective_date, p.c.option)
        .add_columns(t.loan.c.loan_id, t.loan.c.currency, t.borrower.c.borrower_id)
        .join(t.loan, t.loan.c.loan_key == p.c.loan_key)
        .join(t.borrower, t.borrower.c.borrower_key == p.c.borrower_key)
        .order_by(p.c.offered_at.desc(), p.c.plan_key.desc())
    )
    if borrower_id is not None:
        q = q.where(t.borrower.c.borrower_id == borrower_id)
    if loan_id is not None:
        q = q.where(t.loan.c.loan_id == loan_id)
    if state is not None:
        q = q.where(p.c.state == state)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    return [
        {
            "plan_id": r.plan_id,
            "loan_id": r.loan_id,
            "borrower_id": r.borrower_id,
            "kind": r.kind,
            "months": r.option["months"],
            "monthly_payment": _money(r.option["monthly_payment"], r.currency),
            "state": r.state,
            "offered_at": _utc(r.offered_at).isoformat(),
            "offered_by": r.offered_by,
            "effective_date": None if r.effective_date is None else r.effective_date.isoformat(),
        }
        for r in rows
    ]


def _plan(conn: Connection, plan_id: str) -> dict[str, Any]:
    r = _plan_row(conn, plan_id)
    cur = r.option["currency"]
    instalments = conn.execute(
        select(t.plan_instalment).where(t.plan_instalment.c.plan_key == r.plan_key).order_by(t.plan_instalment.c.seq)
    ).all()
    option = _option_from_json(r.option)
    return {
        "plan_id": r.plan_id,
        "loan_id": r.loan_id,
        "borrower_id": r.borrower_id,
        "state": r.state,
        "offered_at": _utc(r.offered_at).isoformat(),
        "offered_by": r.offered_by,
        "offered_role": r.offered_role,
        "authority": r.option["authority"],
        "decided_by": r.decided_by,
        "decided_at": None if r.decided_at is None else _utc(r.decided_at).isoformat(),
        "decision_reason": r.decision_reason,
        "effective_date": None if r.effective_date is None else r.effective_date.isoformat(),
        "watch_until": None if r.watch_until is None else r.watch_until.isoformat(),
        "credit_amount": None if r.credit_amount is None else _money(r.credit_amount, cur),
        "ended_on": None if r.ended_on is None else r.ended_on.isoformat(),
        "as_of": r.option["as_of"],
        "currency": cur,
        "outstanding_total": _money(r.option["outstanding_total"], cur),
        **option_json(option, cur),
        "schedule": [
            {
                "seq": i.seq,
                "due_date": i.due_date.isoformat(),
                "principal": _money(i.principal, cur),
                "interest": _money(i.interest, cur),
                "fee": _money(i.fee, cur),
            }
            for i in instalments
        ],
    }


def _plan_row(conn: Connection, plan_id: str, lock: bool = False) -> Any:
    p = t.repayment_plan
    q = (
        select(p, t.loan.c.loan_id, t.borrower.c.borrower_id)
        .join(t.loan, t.loan.c.loan_key == p.c.loan_key)
        .join(t.borrower, t.borrower.c.borrower_key == p.c.borrower_key)
        .where(p.c.plan_id == plan_id)
    )
    if lock and conn.dialect.name == "postgresql":
        # The loan's row too: two plans of one loan accepted at once must not both come into force.
        q = q.with_for_update(of=(p, t.loan))
    row = conn.execute(q).first()
    if row is None:
        raise NotFoundError(f"no plan with id {plan_id!r}")
    return row


def _option_minor(o: PlanOption) -> dict[str, Any]:
    """The option as stored: minor units, exact decimals as strings."""
    return {
        "kind": o.kind,
        "months": o.months,
        "instalments": [
            {"seq": r.seq, "due_date": r.due_date.isoformat(), "principal": r.principal, "interest": r.interest}
            for r in o.instalments
        ],
        "restructured": o.restructured,
        "plan_interest": o.plan_interest,
        "waived": dict(o.waived),
        "monthly_payment": o.monthly_payment,
        "total_paid": o.total_paid,
        "share": None if o.share is None else str(o.share),
        "affordable": o.affordable,
        "likelihood": str(o.likelihood),
        "expected_recovery": o.expected_recovery,
        "discount": str(o.discount),
        "reason": o.reason,
    }


def _option_from_json(doc: Mapping[str, Any]) -> PlanOption:
    return PlanOption(
        kind=doc["kind"],
        months=doc["months"],
        instalments=tuple(
            PlanInstalment(r["seq"], date.fromisoformat(r["due_date"]), r["principal"], r["interest"])
            for r in doc["instalments"]
        ),
        restructured=doc["restructured"],
        plan_interest=doc["plan_interest"],
        waived=dict(doc["waived"]),
        monthly_payment=doc["monthly_payment"],
        total_paid=doc["total_paid"],
        share=None if doc["share"] is None else Decimal(doc["share"]),
        affordable=doc["affordable"],
        likelihood=Decimal(doc["likelihood"]),
        expected_recovery=doc["expected_recovery"],
        discount=Decimal(doc["discount"]),
        reason=doc["reason"],
    )


# --- helpers ----------------------------------------------------------------------------------------


def _borrower_key(conn: Connection, borrower_id: str) -> int:
    key = conn.execute(select(t.borrower.c.borrower_key).where(t.borrower.c.borrower_id == borrower_id)).scalar()
    if key is None:
        raise NotFoundError(f"no borrower with id {borrower_id!r}")
    return int(key)


def _money(minor: int, currency: str) -> str:
    return str(from_minor(int(minor), currency))


def _utc(at: datetime) -> datetime:
    """Aware UTC (SQLite hands instants back naive, kept in UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
