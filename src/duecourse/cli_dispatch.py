"""`duecourse dispatch …`: send the outbox's allowed actions through the configured channels; replay dead letters."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from duecourse import bootstrap
from duecourse.services import dispatch as d
from duecourse.settings import Settings

dispatch_app = typer.Typer(
    no_args_is_help=True, help="Send allowed actions from the outbox through the channels; dead letters."
)
out = Console()
err = Console(stderr=True)


def _instant(value: str | None, c: bootstrap.Container) -> datetime:
    if value is None:
        return c.clock()
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        err.print(f"[red]--now: {value!r} is not an ISO instant (2026-09-28T02:00:00+00:00)[/red]")
        raise typer.Exit(2) from None
    if at.tzinfo is None:
        err.print("[red]--now needs a UTC offset, e.g. 2026-09-28T10:00:00+08:00[/red]")
        raise typer.Exit(2)
    return at.astimezone(UTC)


def _json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


@dispatch_app.command("run")
def run(
    now: Annotated[str | None, typer.Option("--now", help="The instant to act at (ISO 8601 with offset).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Send at most this many.")] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Messages per claimed batch.")] = d.Policy.batch,
    lease_seconds: Annotated[int, typer.Option("--lease-seconds", min=1, help="How long a claim lasts.")] = 300,
    max_attempts: Annotated[int, typer.Option("--max-attempts", min=1, help="Attempts before a dead letter.")] = 5,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Processes sending at once, each claiming its own batches (default: one a core; one on SQLite).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Reconcile stopped sends, enqueue due actions, re-check and send them, pull delivery reports."""
    settings = Settings.from_env()
    sqlite = settings.database_url.startswith("sqlite")
    workers = workers or (1 if sqlite else os.cpu_count() or 1)
    if workers > 1 and sqlite:
        err.print(f"[red]--workers {workers}: {d.SQLITE_ONE_PROCESS}[/red]")
        raise typer.Exit(2)
    if workers > 1:
        d.start_worker_server(bootstrap.DISPATCH_HELPER_MODULES)  # its imports run while this process starts
    c = bootstrap.build(settings)
    at = _instant(now, c)
    policy = d.Policy(batch=batch, lease=timedelta(seconds=lease_seconds), max_attempts=max_attempts)
    worker = c.dispatcher(policy, workers=workers)
    with Progress(
        TextColumn("dispatch"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=as_json
    ) as progress:
        task = progress.add_task("dispatch", total=None)

        def on_batch(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        summary = worker.run(at, limit=limit, on_batch=on_batch)
    report = summary.to_json()
    if as_json:
        _json(report)
        return
    table = Table(title=f"dispatch at {at.isoformat()} — {summary.enqueued} newly enqueued")
    outcomes = sorted({o for row in report["by_channel"].values() for o in row})
    table.add_column("channel")
    for o in outcomes:
        table.add_column(o, justify="right")
    for channel, row in report["by_channel"].items():
        table.add_row(channel, *(str(row.get(o, 0)) for o in outcomes))
    out.print(table)
    for reason, n in report["cancelled_reasons"].items():
        out.print(f"cancelled {n}: {reason}")
    for problem in report["errors"]:
        err.print(f"[red]{problem}[/red]")
    for channel, n in report["left_queued"].items():
        out.print(f"[yellow]left queued {n} {channel}: no channel configured for it in this run[/yellow]")


@dispatch_app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Outbox rows by channel and state."""
    counts = d.outbox_counts(bootstrap.build().engine)
    if as_json:
        _json(counts)
        return
    states = [s for s in d.STATES if any(s in row for row in counts.values())]
    table = Table(title="outbox")
    table.add_column("channel")
    for s in states:
        table.add_column(s, justify="right")
    for channel, row in counts.items():
        table.add_row(channel, *(str(row.get(s, 0)) for s in states))
    out.print(table)


@dispatch_app.command("dead-letters")
def dead_letters(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Messages that will not be sent again without a person: retries exhausted, or in doubt."""
    rows = d.dead_letters(bootstrap.build().engine)
    if as_json:
        _json(rows)
        return
    table = Table(title=f"{len(rows)} dead letters")
    for col in ("id", "key", "channel", "attempts", "reason"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), r["key"], r["channel"], str(r["attempts"]), str(r["reason"]))
    out.print(table)


@dispatch_app.command("replay")
def replay(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead letter ids (from dead-letters).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (audited).")] = "replayed by an operator",
    actor: Annotated[str, typer.Option("--actor", help="Who replays (audited).")] = "cli",
) -> None:
    """Put dead letters back in the queue; the next `dispatch run` sends them (an in-doubt one may arrive twice)."""
    if bool(ids) == all_:
        err.print("[red]name dead letter ids or --all (not both)[/red]")
        raise typer.Exit(2)
    c = bootstrap.build()
    n = d.replay(c.engine, None if all_ else ids, c.clock(), actor, reason)
    out.print(f"{n} dead letters back in the queue")
    if ids and n < len(ids):
        err.print(f"[yellow]{len(ids) - n} of the ids are not dead letters[/yellow]")
        raise typer.Exit(1)
