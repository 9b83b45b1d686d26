"""The call queue's HTTP API under /api/calls: each route only translates between JSON and `services.calls`.

A request the queue refuses (not the agent's task, a promise outside the policy, an unknown result) answers
400 with the reason; an unknown task 404; a body that does not match its model FastAPI's 422.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from duecourse.bootstrap import Container
from duecourse.domain.errors import DueCourseError, NotFoundError
from duecourse.services import calls as sc

router = APIRouter(prefix="/api/calls", tags=["calls"])
ORIGIN: Final = "api"
BAD: Final[dict[int | str, dict[str, Any]]] = {
    400: {"description": "The queue refuses the request (not this agent's task, a promise outside the policy …)"},
    404: {"description": "No such call task"},
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentBody(_Body):
    agent: str = Field(min_length=1, max_length=64, description="The agent's id, recorded in the audit trail")


class OutcomeBody(AgentBody):
    result: Literal[
        "conversation", "no_answer", "voicemail", "wrong_party", "promise_to_pay", "dispute", "refusal", "asked_to_stop"
    ]
    amount: str | None = Field(
        default=None,
        pattern=r"^\d+(\.\d+)?$",
        description='A promise\'s amount in major units as a decimal string, e.g. "1200.00" (never a float)',
    )
    date: dt.date | None = Field(default=None, description="The day the debtor promises to pay")
    note: str | None = Field(default=None, max_length=1000)


def _desk(request: Request) -> tuple[Container, sc.CallDesk]:
    state = request.app.state
    container: Container = state.container
    return container, container.call_desk


@contextmanager
def _answers() -> Iterator[None]:
    try:
        yield
    except NotFoundError as exc:
        raise HTTPException(404, {"error": str(exc)}) from exc
    except (DueCourseError, ValueError) as exc:
        raise HTTPException(400, {"error": str(exc)}) from exc


@router.get("")
def list_tasks(
    request: Request, include_closed: Annotated[bool, Query(description="Also closed tasks")] = False
) -> list[dict[str, Any]]:
    """The queue in the order agents are served (priority, then scheduled time)."""
    container, desk = _desk(request)
    with desk.engine.connect() as conn:
        return sc.queue(conn, container.clock(), include_closed)


@router.post("/next", responses=BAD)
def claim_next(request: Request, body: AgentBody) -> dict[str, Any]:
    """Claim the next call the rules allow now: its script (or null) and the tasks the live check held back."""
    container, desk = _desk(request)
    with _answers():
        claim = sc.next_task(desk, body.agent, container.clock(), ORIGIN)
    return {"script": None if claim.script is None else claim.script.to_json(), "held_back": claim.held_back}


@router.get("/{task_key}", responses=BAD)
def show_task(request: Request, task_key: int) -> dict[str, Any]:
    _, desk = _desk(request)
    with _answers():
        return sc.show(desk, task_key)


@router.post("/{task_key}/reveal", responses=BAD)
def reveal_number(request: Request, task_key: int, body: AgentBody) -> dict[str, str]:
    """The number in clear, for the agent holding the task (audited)."""
    container, desk = _desk(request)
    with _answers():
        return {"phone": sc.reveal(desk, task_key, body.agent, container.clock(), ORIGIN)}


@router.post("/{task_key}/release", responses=BAD)
def release_task(request: Request, task_key: int, body: AgentBody) -> dict[str, Any]:
    container, desk = _desk(request)
    with _answers():
        sc.release(desk.engine, task_key, body.agent, container.clock(), ORIGIN)
    return {"task_key": task_key, "state": "queued"}


@router.post("/{task_key}/outcome", responses=BAD)
def record_outcome(request: Request, task_key: int, body: OutcomeBody) -> dict[str, Any]:
    """What happened on the call, with its effects (promise, dispute hold, opt-out, wrong number, retry)."""
    container, desk = _desk(request)
    outcome = sc.CallOutcome(body.result, None if body.amount is None else Decimal(body.amount), body.date, body.note)
    with _answers():
        return sc.record_outcome(desk, task_key, body.agent, outcome, container.clock(), ORIGIN)
