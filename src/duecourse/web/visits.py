"""The door-visit HTTP API under /api/visits: each route only translates between JSON and `services.visits`.

A step the rules or the policy forbid answers 409 with every reason (each naming its rule or the policy); a
malformed request 400 (or FastAPI's 422 for a body that does not match its model); an unknown visit 404.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from duecourse.bootstrap import Container
from duecourse.domain.errors import DueCourseError, NotFoundError
from duecourse.domain.visits import VisitRefused
from duecourse.services import visits as sv

router = APIRouter(prefix="/api/visits", tags=["visits"])
ORIGIN: Final = "api"
BAD: Final[dict[int | str, dict[str, Any]]] = {
    400: {"description": "The request cannot be used (bad value, unknown time zone, empty file)"},
    404: {"description": "No such visit or borrower"},
    409: {"description": "The rules or the visit policy forbid this step now; `reasons` name each rule"},
}
T = TypeVar("T")


def _services(request: Request) -> tuple[Container, sv.VisitDeps, sv.NoticeWriter]:
    state = request.app.state
    container: Container = state.container
    return container, container.visit_deps, container.letters.write_pre_visit_notice


def _actor(request: Request) -> str:
    return request.headers.get("x-duecourse-actor", "api")


@contextmanager
def _answers() -> Iterator[None]:
    """Service errors as HTTP answers."""
    try:
        yield
    except VisitRefused as exc:
        raise HTTPException(409, {"error": str(exc), "step": exc.step, "reasons": list(exc.reasons)}) from exc
    except NotFoundError as exc:
        raise HTTPException(404, {"error": str(exc)}) from exc
    except (DueCourseError, ValueError) as exc:
        raise HTTPException(400, {"error": str(exc)}) from exc


def _write(request: Request, step: Callable[[Connection, sv.VisitDeps, sv.NoticeWriter, datetime], T]) -> T:
    c, deps, writer = _services(request)
    with _answers(), c.engine.begin() as conn:
        return step(conn, deps, writer, c.clock())


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise HTTPException(400, {"error": f"unknown time zone {name!r}"}) from exc


def _verdicts(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.select(
        "action_key",
        "eligible",
        "reasons",
        "days_past_due",
        "bucket",
        "balance",
        "currency",
        "office_id",
        "distance_m",
        "cost",
        "expected_recovery",
    ).to_dicts()


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanBody(_Body):
    as_of: date


class ApprovalBody(_Body):
    borrower_id: str = Field(min_length=1)
    approved_by: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    valid_until: date


class TeamBody(_Body):
    staff: list[str] = Field(min_length=1)


class DeliveryBody(_Body):
    delivered_at: AwareDatetime
    method: str = Field(min_length=1, max_length=32)


class ScheduleBody(TeamBody):
    start: AwareDatetime


class PlaceBody(_Body):
    at: AwareDatetime
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class CheckInBody(PlaceBody):
    identification_shown: bool
    recording: bool


class OutcomeBody(_Body):
    met_debtor: bool
    promise_amount: int | None = Field(default=None, gt=0, description="Minor units of the loan's currency")
    promise_date: date | None = None
    plan_requested: bool = False
    refused: bool = False
    third_party_present: bool = False
    third_party_note: str | None = None
    disclosed_to_third_party: bool = False
    notes: str | None = None


@router.get("/candidates", responses=BAD)
def candidates(request: Request, as_of: date) -> list[dict[str, Any]]:
    """The cycle's visit actions of `as_of` with their explained eligibility verdicts (nothing is written)."""
    c, deps, _ = _services(request)
    with _answers(), c.engine.connect() as conn:
        return _verdicts(sv.check_eligibility(conn, deps, sv.visit_actions(conn, deps.rulebook, as_of), c.clock()))


@router.post("/plan", responses=BAD)
def plan(request: Request, body: PlanBody) -> dict[str, Any]:
    def step(conn: Connection, deps: sv.VisitDeps, _: sv.NoticeWriter, now: datetime) -> sv.Planned:
        keys = sv.visit_actions(conn, deps.rulebook, body.as_of)
        return sv.plan_visits_from_actions(conn, deps, keys, now, _actor(request), ORIGIN)

    planned = _write(request, step)
    return {"planned": list(planned.planned), "already": list(planned.already), "verdicts": _verdicts(planned.verdicts)}


@router.post("/approvals", responses=BAD, status_code=201)
def approve(request: Request, body: ApprovalBody) -> dict[str, str]:
    _write(
        request,
        lambda conn, _d, _w, now: sv.approve_vulnerable(
            conn, body.borrower_id, body.approved_by, body.reason, body.valid_until, now, ORIGIN
        ),
    )
    return {"borrower_id": body.borrower_id, "valid_until": body.valid_until.isoformat()}


@router.get("/staff", responses=BAD)
def staff(request: Request, on: date | None = None) -> list[dict[str, Any]]:
    c, deps, _ = _services(request)
    with c.engine.connect() as conn:
        return [s.__dict__ for s in sv.list_staff(conn, deps.cipher, on or c.clock().date())]


@router.post("/staff/import", responses=BAD)
async def import_staff(request: Request, file: Annotated[UploadFile, File()]) -> dict[str, Any]:
    """Staff and certifications from a CSV upload; rows that cannot be used come back as data."""
    content = await file.read()
    if not content:
        raise HTTPException(400, {"error": "the file is empty"})
    c, deps, _ = _services(request)
    folder = c.settings.data_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / Path(file.filename or "staff.csv").name
    path.write_bytes(content)
    with _answers(), c.engine.begin() as conn:
        report = sv.import_staff(conn, deps.cipher, path, c.clock(), _actor(request), ORIGIN)
    return {"accepted": report.accepted, "staff": report.staff, "errors": [e.__dict__ for e in report.errors]}


@router.get("/routes", responses=BAD)
def routes(
    request: Request, day: Annotated[date, Query(alias="date")], zone: str = "Asia/Shanghai"
) -> list[dict[str, Any]]:
    """Each team's round trip from its office through the day's scheduled visits, with leg distances."""
    c, deps, _ = _services(request)
    with c.engine.connect() as conn:
        found = sv.routes(conn, deps, day, _zone(zone))
    return [
        {
            "team": list(r.team),
            "office": r.office.office_id,
            "stops": [
                {"visit_id": s.key, "start": r.starts[s.key].isoformat(), "leg_m": leg}
                for s, leg in zip(r.route.stops, r.route.legs_m, strict=False)
            ],
            "return_m": r.route.legs_m[-1],
            "total_m": r.route.total_m,
        }
        for r in found
    ]


@router.get("/{visit_id}", responses=BAD)
def show(request: Request, visit_id: str) -> dict[str, Any]:
    c, deps, _ = _services(request)
    with _answers(), c.engine.connect() as conn:
        return sv.show(conn, deps.cipher, visit_id)


@router.post("/{visit_id}/notice", responses=BAD)
def notice(request: Request, visit_id: str, body: TeamBody) -> dict[str, str]:
    pdf, code = _write(
        request,
        lambda conn, deps, writer, now: sv.issue_notice(
            conn, deps, visit_id, body.staff, now, writer, _actor(request), ORIGIN
        ),
    )
    return {"visit_id": visit_id, "pdf": str(pdf), "code": code}


@router.post("/{visit_id}/delivery", responses=BAD)
def deliver(request: Request, visit_id: str, body: DeliveryBody) -> dict[str, str]:
    _write(
        request,
        lambda conn, _d, _w, now: sv.record_delivery(
            conn, visit_id, body.delivered_at, body.method, now, _actor(request), ORIGIN
        ),
    )
    return {"visit_id": visit_id, "status": "notice_delivered"}


@router.post("/{visit_id}/schedule", responses=BAD)
def schedule(request: Request, visit_id: str, body: ScheduleBody) -> dict[str, str]:
    end = _write(
        request,
        lambda conn, deps, _w, now: sv.schedule(
            conn, deps, visit_id, body.staff, body.start, now, _actor(request), ORIGIN
        ),
    )
    return {"visit_id": visit_id, "status": "scheduled", "start": body.start.isoformat(), "end": end.isoformat()}


@router.post("/{visit_id}/check-in", responses=BAD)
def check_in(request: Request, visit_id: str, body: CheckInBody) -> dict[str, Any]:
    away = _write(
        request,
        lambda conn, deps, _w, now: sv.check_in(
            conn,
            deps,
            visit_id,
            body.at,
            body.latitude,
            body.longitude,
            identification_shown=body.identification_shown,
            recording=body.recording,
            now=now,
            actor=_actor(request),
            origin=ORIGIN,
        ),
    )
    return {"visit_id": visit_id, "status": "checked_in", "distance_to_address_m": away}


@router.post("/{visit_id}/check-out", responses=BAD)
def check_out(request: Request, visit_id: str, body: PlaceBody) -> dict[str, str]:
    _write(
        request,
        lambda conn, _d, _w, now: sv.check_out(
            conn, visit_id, body.at, body.latitude, body.longitude, now, _actor(request), ORIGIN
        ),
    )
    return {"visit_id": visit_id, "status": "checked_out"}


@router.post("/{visit_id}/outcome", responses=BAD)
def outcome(request: Request, visit_id: str, body: OutcomeBody) -> dict[str, Any]:
    report = sv.OutcomeReport(**body.model_dump())
    return _write(
        request,
        lambda conn, deps, _w, now: sv.report_outcome(conn, deps, visit_id, report, now, _actor(request), ORIGIN),
    )


@router.post("/{visit_id}/evidence", responses=BAD, status_code=201)
async def evidence(
    request: Request,
    visit_id: str,
    file: Annotated[UploadFile, File()],
    media_type: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    """An evidence file (recording, photo), kept once per content hash."""
    content = await file.read()
    kind = media_type or file.content_type or "application/octet-stream"
    sha, new = _write(
        request,
        lambda conn, deps, _w, now: sv.add_evidence(conn, deps, visit_id, content, kind, now, _actor(request), ORIGIN),
    )
    return {"visit_id": visit_id, "sha256": sha, "size": len(content), "media_type": kind, "new_file": new}
