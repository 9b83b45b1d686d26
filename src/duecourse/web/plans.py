"""The repayment-plan and promise HTTP API under /api/plans and /api/promises: each route only translates
between JSON and `services.plans` / `services.promises`.

Money in a body is a string of digits in major units ("1234.56"), read as an exact decimal, never a JSON
number (a float). A request the services refuse (bad amount, an offer waiting for a supervisor, a declined
offer …) answers 400 with the reason; an unknown borrower, loan or plan 404; a body not matching its model 422.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from duecourse.bootstrap import Container
from duecourse.domain.errors import DueCourseError, NotFoundError
from duecourse.plans.policy import PlanPolicy
from duecourse.services import plans, promises

router = APIRouter(tags=["plans"])
ORIGIN: Final = "api"
ANSWERS: Final[dict[int | str, dict[str, Any]]] = {
    400: {"description": "Refused as asked; `error` says why (bad amount, waiting for approval, declined …)"},
    404: {"description": "No such borrower, loan or plan"},
}
Money = Annotated[str, Field(pattern=r"^\d{1,15}(\.\d+)?$", examples=["1234.56"])]
SourceName = Literal["stated", "evidenced", "estimated"]
Role = Literal["agent", "team_lead", "supervisor"]


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def _policy(request: Request) -> PlanPolicy:
    return _container(request).plan_policy


@contextmanager
def _answers() -> Iterator[None]:
    try:
        yield
    except NotFoundError as exc:
        raise HTTPException(404, {"error": str(exc)}) from exc
    except DueCourseError as exc:
        raise HTTPException(400, {"error": str(exc)}) from exc


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Figure(_Body):
    amount: Money
    source: SourceName = "stated"


class FinancesBody(_Body):
    monthly_income: Figure
    essential_expenses: Figure
    other_debt_payments: Figure
    savings: Figure
    household_size: int = Field(ge=1)
    dependants: int = Field(ge=0)
    region: str | None = None
    recorded_by: str = Field(min_length=1)


class OfferBody(_Body):
    loan_id: str = Field(min_length=1)
    kind: Literal["restructure", "suspension", "holiday", "settlement"]
    months: int = Field(ge=1)
    as_of: date
    by: str = Field(min_length=1)
    role: Role


class DecisionBody(_Body):
    by: str = Field(min_length=1)
    role: Role
    reason: str = Field(min_length=1)


class AcceptBody(_Body):
    effective_date: date
    by: str = Field(min_length=1)


class PromiseBody(_Body):
    loan_id: str = Field(min_length=1)
    amount: Money
    due_date: date
    channel: Literal["call", "visit", "app", "sms", "email"]
    taken_by: str = Field(min_length=1, description=f"the agent, or '{promises.DEBTOR}' for the debtor's own channel")
    event_id: str | None = None
    note: str | None = None


# --- finances and options ---------------------------------------------------------------------------


@router.post("/api/plans/finances/{borrower_id}", responses=ANSWERS)
def record_finances(borrower_id: str, body: FinancesBody, request: Request) -> dict[str, Any]:
    c = _container(request)
    given = plans.FinancesInput(
        monthly_income=(Decimal(body.monthly_income.amount), body.monthly_income.source),
        essential_expenses=(Decimal(body.essential_expenses.amount), body.essential_expenses.source),
        other_debt_payments=(Decimal(body.other_debt_payments.amount), body.other_debt_payments.source),
        savings=(Decimal(body.savings.amount), body.savings.source),
        household_size=body.household_size,
        dependants=body.dependants,
        region=body.region,
    )
    with _answers():
        return plans.record_finances(
            c.engine, c.cipher, _policy(request), borrower_id, given, body.recorded_by, c.clock(), ORIGIN
        )


@router.get("/api/plans/finances/{borrower_id}", responses=ANSWERS)
def show_finances(
    borrower_id: str,
    request: Request,
    payment: Annotated[
        str | None, Query(pattern=r"^\d{1,15}(\.\d+)?$", description="A proposed monthly payment")
    ] = None,
) -> dict[str, Any]:
    c = _container(request)
    with _answers():
        proposed = None if payment is None else Decimal(payment)
        return plans.show_finances(c.engine, c.cipher, _policy(request), borrower_id, proposed)


@router.get("/api/plans/options/{loan_id}", responses=ANSWERS)
def loan_options(loan_id: str, as_of: date, request: Request) -> dict[str, Any]:
    c = _container(request)
    with _answers():
        return plans.loan_options(c.engine, c.cipher, _policy(request), loan_id, as_of)


@router.get("/api/plans/borrowers/{borrower_id}/options", responses=ANSWERS)
def borrower_options(borrower_id: str, as_of: date, request: Request) -> list[dict[str, Any]]:
    c = _container(request)
    with _answers():
        return plans.borrower_options(c.engine, c.cipher, _policy(request), borrower_id, as_of)


# --- offers and decisions ---------------------------------------------------------------------------


@router.post("/api/plans/offers", responses=ANSWERS)
def offer(body: OfferBody, request: Request) -> dict[str, Any]:
    c = _container(request)
    with _answers():
        return plans.offer(
            c.engine,
            c.cipher,
            _policy(request),
            body.loan_id,
            body.kind,
            body.months,
            body.by,
            body.role,
            body.as_of,
            c.clock(),
            ORIGIN,
        )


@router.post("/api/plans/{plan_id}/approve", responses=ANSWERS)
def approve(plan_id: str, body: DecisionBody, request: Request) -> dict[str, Any]:
    c = _container(request)
    with _answers():
        return plans.approve(c.engine, _policy(request), plan_id, body.by, body.role, body.reason, c.clock(), ORIGIN)


@router.post("/api/plans/{plan_id}/decline", responses=ANSWERS)
def decline(plan_id: str, body: DecisionBody, request: Request) -> dict[str, Any]:
    c = _container(request)
    with _answers():
        return plans.decline(c.engine, _policy(request), plan_id, body.by, body.role, body.reason, c.clock(), ORIGIN)


@router.post("/api/plans/{plan_id}/accept", responses=ANSWERS)
def accept(plan_id: str, body: AcceptBody, request: Request) -> dict[str, Any]:
    c = _container(request)
    with _answers():
        return plans.accept(c.engine, _policy(request), plan_id, body.effective_date, body.by, c.clock(), ORIGIN)


@router.get("/api/plans/{plan_id}", responses=ANSWERS)
def show_plan(plan_id: str, request: Request) -> dict[str, Any]:
    with _answers():
        return plans.show_plan(_container(request).engine, plan_id)


@router.get("/api/plans")
def list_plans(
    request: Request, borrower_id: str | None = None, loan_id: str | None = None, state: str | None = None
) -> list[dict[str, Any]]:
    return plans.list_plans(_container(request).engine, borrower_id, loan_id, state)


# --- promises ---------------------------------------------------------------------------------------


@router.post("/api/promises", responses=ANSWERS)
def take_promise(body: PromiseBody, request: Request) -> dict[str, Any]:
    c = _container(request)
    given = promises.PromiseInput(
        body.loan_id, Decimal(body.amount), body.due_date, body.channel, body.taken_by, body.event_id, body.note
    )
    with _answers():
        return promises.take_promise(c.engine, given, c.clock(), ORIGIN)


@router.get("/api/promises/report")
def promise_report(
    request: Request,
    due_from: Annotated[date | None, Query(alias="from")] = None,
    due_to: Annotated[date | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    return promises.promise_report(_container(request).engine, due_from, due_to)


@router.get("/api/promises")
def list_promises(
    request: Request, borrower_id: str | None = None, loan_id: str | None = None, state: str | None = None
) -> list[dict[str, Any]]:
    return promises.list_promises(_container(request).engine, borrower_id, loan_id, state)
