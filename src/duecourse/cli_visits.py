"""`duecourse visits …`: door visits from the terminal; each command only translates to a `services.visits` call."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection

from duecourse import bootstrap
from duecourse.domain.errors import DueCourseError
from duecourse.domain.money import from_minor, to_minor
from duecourse.domain.verification import display
from duecourse.domain.visits import VisitRefused
from duecourse.services import visits as sv

visits_app = typer.Typer(
    no_args_is_help=True,
    help="Door visits: staff, teams, eligibility, notices, scheduling, routes, check-in and outcomes.",
)
staff_app = typer.Typer(no_args_is_help=True, help="The field staff registry and certifications.")
visits_app.add_typer(staff_app, name="staff")
console = Console()
err = Console(stderr=True)
T = TypeVar("T")
By = Annotated[str, typer.Option("--by", help="Who does this (recorded in the audit trail)")]
Staff = Annotated[list[str], typer.Option("--staff", help="A staff id of the team (repeat for each member)")]
At = Annotated[str, typer.Option("--at", help="ISO instant with its UTC offset, e.g. 2026-10-08T10:05:00+08:00")]


def _instant(text: str, what: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        err.print(f"{what}: give an ISO instant with its UTC offset, e.g. 2026-10-08T10:00:00+08:00")
        raise typer.Exit(2)
    return at


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        err.print(f"{what}: give a date YYYY-MM-DD")
        raise typer.Exit(2) from None


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except VisitRefused as exc:
        err.print(f"[red]refused[/red]: visit {exc.visit_id}: cannot {exc.step}:")
        for reason in exc.reasons:
            err.print(f"  - {reason}")
        raise typer.Exit(1) from None
    except DueCourseError as exc:
        err.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(1) from None


def _run(step: Callable[[Connection, sv.VisitDeps, sv.NoticeWriter, datetime], T]) -> T:
    c = bootstrap.build()
    with _refusals(), c.engine.begin() as conn:
        return step(conn, c.visit_deps, c.letters.write_pre_visit_notice, c.clock())


def _verdict_table(rows: list[dict[str, Any]]) -> Table:
    """One line per candidate; amounts in major units of the loan's currency."""
    table = Table("action", "ok", "dpd", "overdue", "km", "cost", "expected", "why not")

    def money(minor: int | None, currency: str | None) -> str:
        return "" if minor is None else str(from_minor(minor, currency or "CNY"))

    for r in rows:
        table.add_row(
            str(r["action_key"]),
            "yes" if r["eligible"] else "no",
            f"{r['days_past_due']} {r['bucket']}",
            money(r["balance"], r["currency"]),
            "" if r["distance_m"] is None else f"{r['distance_m'] / 1000:.1f}",
            money(r["cost"], r["currency"]),
            money(r["expected_recovery"], r["currency"]),
            "\n".join(r["reasons"]),
        )
    return table


@visits_app.command("candidates")
def candidates(
    as_of: Annotated[str, typer.Option("--as-of", help="The cycle day whose visit actions to judge")],
) -> None:
    """Explain, for each of the cycle's visit actions, whether a visit is warranted (writes nothing)."""
    c = bootstrap.build()
    deps = c.visit_deps
    with _refusals(), c.engine.connect() as conn:
        frame = sv.check_eligibility(
            conn, deps, sv.visit_actions(conn, deps.rulebook, _day(as_of, "--as-of")), c.clock()
        )
    console.print(_verdict_table(frame.to_dicts()))


@visits_app.command("plan")
def plan(as_of: Annotated[str, typer.Option("--as-of", help="The cycle day")], by: By = "cli") -> None:
    """Plan a visit for each eligible visit action of the cycle day (idempotent)."""
    day = _day(as_of, "--as-of")
    planned = _run(
        lambda conn, deps, _w, now: sv.plan_visits_from_actions(
            conn, deps, sv.visit_actions(conn, deps.rulebook, day), now, by, "cli"
        )
    )
    console.print(_verdict_table(planned.verdicts.to_dicts()))
    console.print(
        f"planned {len(planned.planned)}: {', '.join(planned.planned) or '-'}; already planned {len(planned.already)}"
    )


@visits_app.command("approve")
def approve(
    borrower_id: str,
    reason: Annotated[str, typer.Option("--reason")],
    until: Annotated[str, typer.Option("--until", help="Last day the approval holds")],
    by: By = "cli",
) -> None:
    """A supervisor approves visiting a vulnerable (elderly, disabled) debtor."""
    valid = _day(until, "--until")
    _run(lambda conn, _d, _w, now: sv.approve_vulnerable(conn, borrower_id, by, reason, valid, now, "cli"))
    console.print(f"approved visits to {borrower_id} until {valid}")


@visits_app.command("notice")
def notice(visit_id: str, staff: Staff, by: By = "cli") -> None:
    """Name the team, issue the verification code and render the pre-visit notice PDF."""
    pdf, code = _run(
        lambda conn, deps, writer, now: sv.issue_notice(conn, deps, visit_id, staff, now, writer, by, "cli")
    )
    console.print(f"notice: {pdf}\ncode: {display(code)}")


@visits_app.command("deliver")
def deliver(
    visit_id: str,
    at: At,
    method: Annotated[str, typer.Option("--method", help="registered_post | courier | hand")] = "registered_post",
    by: By = "cli",
) -> None:
    """Record when and how the notice reached the debtor (the lead time counts from here)."""
    when = _instant(at, "--at")
    _run(lambda conn, _d, _w, now: sv.record_delivery(conn, visit_id, when, method, now, by, "cli"))
    console.print(f"{visit_id}: notice delivered {when.isoformat()} by {method}")


@visits_app.command("schedule")
def schedule(
    visit_id: str,
    staff: Staff,
    start: Annotated[str, typer.Option("--start", help="ISO instant with offset, e.g. 2026-10-08T10:00:00+08:00")],
    by: By = "cli",
) -> None:
    """Fix the visit's slot and team; refused with the rule when the rules or the policy forbid it."""
    when = _instant(start, "--start")
    end = _run(lambda conn, deps, _w, now: sv.schedule(conn, deps, visit_id, staff, when, now, by, "cli"))
    console.print(f"{visit_id}: scheduled {when.isoformat()} - {end.time():%H:%M} with {', '.join(staff)}")


@visits_app.command("route")
def route(
    day: Annotated[str | None, typer.Option("--date", help="Routes of the visits scheduled that day")] = None,
    zone: Annotated[str, typer.Option("--zone", help="The day's time zone")] = "Asia/Shanghai",
    planned: Annotated[bool, typer.Option("--planned", help="Group the not yet scheduled visits into days")] = False,
) -> None:
    """Each team's round trip for the day (nearest neighbour + 2-opt from the office), with distances."""
    c = bootstrap.build()
    deps = c.visit_deps
    with c.engine.connect() as conn:
        if planned:
            for n, (office, group) in enumerate(sv.planned_groups(conn, deps), start=1):
                stops = " -> ".join(s.key for s in group.stops)
                console.print(f"day {n} from {office.office_id} {office.name}: {stops} ({group.total_m / 1000:.1f} km)")
            return
        if day is None:
            err.print("give --date DAY (or --planned)")
            raise typer.Exit(2)
        found = sv.routes(conn, deps, _day(day, "--date"), ZoneInfo(zone))
    if not found:
        console.print("no visits scheduled that day")
    for r in found:
        table = Table(
            "#", "visit", "start", "leg km", title=f"team {', '.join(r.team)} from {r.office.office_id} {r.office.name}"
        )
        for i, (stop, leg) in enumerate(zip(r.route.stops, r.route.legs_m, strict=False), start=1):
            table.add_row(
                str(i), stop.key, r.starts[stop.key].astimezone(ZoneInfo(zone)).strftime("%H:%M"), f"{leg / 1000:.2f}"
            )
        table.add_row("", "back to the office", "", f"{r.route.legs_m[-1] / 1000:.2f}")
        console.print(table)
        console.print(f"total {r.route.total_m / 1000:.2f} km")


@visits_app.command("check-in")
def check_in(
    visit_id: str,
    at: At,
    lat: Annotated[float, typer.Option("--lat")],
    lon: Annotated[float, typer.Option("--lon")],
    identification: Annotated[
        bool, typer.Option("--id-shown/--id-not-shown", help="Badges shown (CN.VISIT.ID)")
    ] = True,
    recording: Annotated[
        bool, typer.Option("--recording/--no-recording", help="Recording on (CN.VISIT.RECORDING)")
    ] = True,
    by: By = "cli",
) -> None:
    """The team arrives: time and place; the rules are asked again at that moment."""
    when = _instant(at, "--at")
    away = _run(
        lambda conn, deps, _w, now: sv.check_in(
            conn,
            deps,
            visit_id,
            when,
            lat,
            lon,
            identification_shown=identification,
            recording=recording,
            now=now,
            actor=by,
            origin="cli",
        )
    )
    console.print(f"{visit_id}: checked in {when.isoformat()}, {away} m from the address")


@visits_app.command("check-out")
def check_out(
    visit_id: str,
    at: At,
    lat: Annotated[float, typer.Option("--lat")],
    lon: Annotated[float, typer.Option("--lon")],
    by: By = "cli",
) -> None:
    when = _instant(at, "--at")
    _run(lambda conn, _d, _w, now: sv.check_out(conn, visit_id, when, lat, lon, now, by, "cli"))
    console.print(f"{visit_id}: checked out {when.isoformat()}")


@visits_app.command("outcome")
def outcome(
    visit_id: str,
    met: Annotated[bool, typer.Option("--met/--not-met", help="Whether the debtor was met")],
    promise_amount: Annotated[str | None, typer.Option("--promise-amount", help="In major units, e.g. 3000.00")] = None,
    promise_date: Annotated[str | None, typer.Option("--promise-date")] = None,
    plan_requested: Annotated[bool, typer.Option("--plan-requested")] = False,
    refused: Annotated[bool, typer.Option("--refused")] = False,
    third_party: Annotated[bool, typer.Option("--third-party-present")] = False,
    third_party_note: Annotated[
        str | None, typer.Option("--third-party-note", help="Who was there; never the debt")
    ] = None,
    notes: Annotated[str | None, typer.Option("--notes")] = None,
    currency: Annotated[str, typer.Option("--currency", help="Currency of the promised amount")] = "CNY",
    by: By = "cli",
) -> None:
    """Record what happened at the door (it becomes a contact event, and a promise to pay if one was made)."""
    try:
        amount = None if promise_amount is None else to_minor(Decimal(promise_amount), currency)
    except (InvalidOperation, ValueError) as exc:
        err.print(f"--promise-amount: {exc}")
        raise typer.Exit(2) from None
    report = sv.OutcomeReport(
        met_debtor=met,
        promise_amount=amount,
        promise_date=None if promise_date is None else _day(promise_date, "--promise-date"),
        plan_requested=plan_requested,
        refused=refused,
        third_party_present=third_party,
        third_party_note=third_party_note,
        notes=notes,
    )
    result = _run(lambda conn, deps, _w, now: sv.report_outcome(conn, deps, visit_id, report, now, by, "cli"))
    console.print(f"{visit_id}: outcome recorded ({result['detail']})")


@visits_app.command("evidence")
def evidence(
    visit_id: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    media_type: Annotated[str | None, typer.Option("--media-type")] = None,
    by: By = "cli",
) -> None:
    """Keep an evidence file (recording, photo) by its SHA-256."""
    kind = media_type or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    content = file.read_bytes()
    sha, new = _run(lambda conn, deps, _w, now: sv.add_evidence(conn, deps, visit_id, content, kind, now, by, "cli"))
    console.print(f"{visit_id}: {sha} ({len(content)} bytes, {kind}){'' if new else ' - same content already kept'}")


@visits_app.command("show")
def show(visit_id: str) -> None:
    c = bootstrap.build()
    with _refusals(), c.engine.connect() as conn:
        shown = sv.show(conn, c.cipher, visit_id)
    for key, value in shown.items():
        console.print(f"[bold]{key}[/bold]: {value}")


@staff_app.command("import")
def staff_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)], by: By = "cli"
) -> None:
    """Staff and certifications from a CSV (see examples/staff.csv); bad rows are listed, good ones kept."""
    report = _run(lambda conn, deps, _w, now: sv.import_staff(conn, deps.cipher, file, now, by, "cli"))
    console.print(f"{report.accepted} row(s) accepted for {report.staff} staff; {len(report.errors)} problem(s)")
    if report.errors:
        table = Table("file", "row", "field", "reason")
        for e in report.errors:
            table.add_row(e.file, str(e.row), e.field, e.reason)
        console.print(table)
        raise typer.Exit(1)


@staff_app.command("list")
def staff_list(on: Annotated[str | None, typer.Option("--on", help="Certification as of this day")] = None) -> None:
    c = bootstrap.build()
    day = c.clock().date() if on is None else _day(on, "--on")
    with c.engine.connect() as conn:
        rows = sv.list_staff(conn, c.cipher, day)
    table = Table("staff", "name", "badge", "region", "active", f"certified on {day}")
    for s in rows:
        valid = s.certified_until is not None and s.certified_until >= day
        until = "none" if s.certified_until is None else f"{'until' if valid else 'EXPIRED'} {s.certified_until}"
        table.add_row(s.staff_id, s.name, s.badge, s.region, "yes" if s.active else "no", until)
    console.print(table)
