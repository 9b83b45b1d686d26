"""`duecourse calls …`: the agent work queue from the terminal; each command only translates to `services.calls`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from duecourse import bootstrap
from duecourse.domain.errors import DueCourseError, NotFoundError
from duecourse.domain.money import format_money
from duecourse.services import calls as sc

calls_app = typer.Typer(no_args_is_help=True, help="The agent work queue: call tasks and their outcomes.")
console = Console()
err = Console(stderr=True)
ORIGIN = "cli"
Agent = Annotated[str, typer.Option("--agent", help="Your agent id (recorded in the audit trail)")]
Json = Annotated[bool, typer.Option("--json")]


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


@contextmanager
def _refusals() -> Iterator[None]:
    """A request the queue refuses exits 1 with the reason; an unknown task exits 2."""
    try:
        yield
    except NotFoundError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except DueCourseError as exc:
        err.print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(1) from None


@calls_app.command("queue")
def queue_cmd(
    all_tasks: Annotated[bool, typer.Option("--all", help="Also closed tasks")] = False, as_json: Json = False
) -> None:
    """The queue in the order agents are served: priority (1 first), then scheduled time."""
    c = bootstrap.build()
    now = c.clock()
    with c.engine.connect() as conn:
        rows = sc.queue(conn, now, all_tasks)
    if as_json:
        _print_json(rows)
        return
    table = Table(title=f"Call queue at {now:%Y-%m-%d %H:%M} UTC ({len(rows)} tasks)")
    for col in ("task", "loan", "priority", "state", "scheduled (UTC)", "attempts", "agent", "deferred by"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["task_key"]),
            r["loan_id"],
            str(r["priority"]),
            r["state"] + (" (due)" if r["due"] else ""),
            f"{r['scheduled_at']:%Y-%m-%d %H:%M}",
            str(r["attempts"]),
            r["agent"] or "",
            r["deferred_rules"] or "",
        )
    console.print(table)


@calls_app.command("next")
def next_cmd(agent: Agent, as_json: Json = False) -> None:
    """Claim the next call the rules allow now and show its script (exit 3 when nothing can be called now)."""
    c = bootstrap.build()
    with _refusals():
        claim = sc.next_task(c.call_desk, agent, c.clock(), ORIGIN)
    if as_json:
        _print_json({"script": None if claim.script is None else claim.script.to_json(), "held_back": claim.held_back})
    else:
        for held in claim.held_back:
            where = f"deferred to {held['deferred_to']}" if held["deferred_to"] else f"closed ({held['closed']})"
            console.print(f"task {held['task_key']} {where}: {held['reason']}")
        if claim.script is not None:
            _print_script(claim.script)
        else:
            console.print("Nothing can be called now.")
    if claim.script is None:
        raise typer.Exit(3)


def _print_script(s: sc.CallScript) -> None:
    state = "overdue since" if s.overdue else "due on"
    console.print(
        f"[bold]Task {s.task_key}[/bold] — loan {s.loan_id}, attempt {s.attempts + 1},"
        f" yours until {s.lease_until:%H:%M} UTC"
    )
    console.print(f"Call {s.phone} (masked; `duecourse calls reveal {s.task_key} --agent …` shows it, audited)")
    console.print(f"Say: you are calling for [bold]{s.lender}[/bold]; {s.amount_text} {state} {s.due_date}.")
    console.print(f"Verification code to read out: [bold]{s.code}[/bold]")
    console.print(f"The debtor can check it at {s.how_to_check}.")


@calls_app.command("show")
def show_cmd(task: int, as_json: Json = False) -> None:
    """One task: its state, schedule, last deferral, the masked number and any promise taken."""
    c = bootstrap.build()
    with _refusals():
        row = sc.show(c.call_desk, task)
    if as_json:
        _print_json(row)
        return
    table = Table(title=f"Call task {task}", show_header=False)
    for key in (
        "loan_id",
        "state",
        "priority",
        "scheduled_at",
        "attempts",
        "agent",
        "lease_until",
        "phone",
        "result",
        "deferred_rules",
        "deferred_reason",
        "closed_at",
    ):
        table.add_row(key, "" if row[key] is None else str(row[key]))
    console.print(table)
    for p in row["promises"]:
        console.print(
            f"promise {p['promise_id']}: {format_money(p['amount'], p['currency'])} by {p['due_date']} ({p['state']})"
        )


@calls_app.command("reveal")
def reveal_cmd(task: int, agent: Agent) -> None:
    """Show the number in clear (only to the agent holding the task; the reveal is audited)."""
    c = bootstrap.build()
    with _refusals():
        number = sc.reveal(c.call_desk, task, agent, c.clock(), ORIGIN)
    console.print(number)


@calls_app.command("release")
def release_cmd(task: int, agent: Agent) -> None:
    """Give a claimed task back to the queue without calling."""
    c = bootstrap.build()
    with _refusals():
        sc.release(c.engine, task, agent, c.clock(), ORIGIN)
    console.print(f"task {task} is back in the queue")


@calls_app.command("outcome")
def outcome_cmd(
    task: int,
    agent: Agent,
    result: Annotated[str, typer.Option("--result", help=f"One of: {', '.join(sc.RESULTS)}")],
    amount: Annotated[
        str | None, typer.Option("--amount", help="A promise's amount in major units, e.g. 1200.00")
    ] = None,
    promise_date: Annotated[str | None, typer.Option("--date", help="The day promised, YYYY-MM-DD")] = None,
    note: Annotated[str | None, typer.Option("--note")] = None,
    as_json: Json = False,
) -> None:
    """Record what happened on the call; a promise, a dispute, a stop request or a wrong party take effect now."""
    c = bootstrap.build()
    outcome = sc.CallOutcome(result, _amount(amount), _date(promise_date), note)
    with _refusals():
        summary = sc.record_outcome(c.call_desk, task, agent, outcome, c.clock(), ORIGIN)
    if as_json:
        _print_json(summary)
        return
    then = f"retry from {summary['retry_at']}" if summary["retry_at"] else "closed"
    extra = "".join(f", {k} {summary[k]}" for k in ("promise_id", "hold_id", "contact") if k in summary)
    console.print(f"task {task}: {result} recorded (event {summary['event_id']}{extra}); {then}")


def _amount(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation:
        err.print(f"--amount: {text!r} is not an amount (e.g. 1200.00)")
        raise typer.Exit(2) from None


def _date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        err.print(f"--date: {text!r} is not a date (YYYY-MM-DD)")
        raise typer.Exit(2) from None
