"""`duecourse …`: the command line. Commands only translate arguments to service calls and render results."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from duecourse import bootstrap
from duecourse.adapters.allocator import keep_freed_memory
from duecourse.cli_calls import calls_app
from duecourse.cli_compliance import compliance_app, rules_app
from duecourse.cli_dispatch import dispatch_app
from duecourse.cli_plans import plans_app
from duecourse.cli_visits import visits_app
from duecourse.cli_web import web_app
from duecourse.domain.errors import BookFormatError, DueCourseError
from duecourse.domain.money import format_money

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="DueCourse: collections that can prove every contact was lawful."
)
loan_app = typer.Typer(no_args_is_help=True, help="Look at one loan.")
cycle_app = typer.Typer(no_args_is_help=True, help="The daily cycle.")
report_app = typer.Typer(no_args_is_help=True, help="Reports from the daily snapshots.")
audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log.")
app.add_typer(loan_app, name="loan")
app.add_typer(cycle_app, name="cycle")
app.add_typer(report_app, name="report")
app.add_typer(audit_app, name="audit")
app.add_typer(rules_app, name="rules")
app.add_typer(compliance_app, name="compliance")
app.add_typer(dispatch_app, name="dispatch")
app.add_typer(calls_app, name="calls")
app.add_typer(visits_app, name="visits")
app.add_typer(plans_app, name="plans")
app.add_typer(web_app, name="web")

console = Console()
err = Console(stderr=True)

AsOf = Annotated[str, typer.Option("--as-of", help="The day, YYYY-MM-DD.")]


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        err.print(f"[red]{option}: {value!r} is not a date (YYYY-MM-DD)[/red]")
        raise typer.Exit(2) from None


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


@app.command("import")
def import_cmd(
    book_dir: Annotated[Path, typer.Argument(help="Directory with the book files (see docs/book-format.md).")],
    rejects: Annotated[Path | None, typer.Option(help="Where to write the rejects file.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Import a loan book. Exit 0: all rows accepted; 1: some rejected (see the rejects file); 2: unusable input."""
    from duecourse.services.importer import import_book

    c = bootstrap.build()
    try:
        report = import_book(
            c.engine,
            book_dir,
            rejects or c.settings.data_dir / "rejects",
            c.cipher,
            actor="cli",
            now=c.clock(),
            signer=c.signer,
        )
    except BookFormatError as exc:
        err.print(f"[red]unusable input, nothing was imported:[/red] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        _print_json(
            {
                "accepted": report.accepted,
                "rejected": report.rejected,
                "rejects_path": None if report.rejects_path is None else str(report.rejects_path),
                "files": [fr.__dict__ for fr in report.files],
                "errors": [e.__dict__ for e in report.errors],
            }
        )
    else:
        table = Table(title=f"Import of {book_dir}")
        for col in ("file", "rows", "accepted", "inserted", "updated", "unchanged", "rejected"):
            table.add_column(col, justify="left" if col == "file" else "right")
        for fr in report.files:
            table.add_row(
                fr.file,
                *(f"{getattr(fr, k):,}" for k in ("rows", "accepted", "inserted", "updated", "unchanged", "rejected")),
            )
        console.print(table)
        if report.rejected:
            for e in report.errors[:20]:
                console.print(f"  {e.file}:{e.row} {e.field}: {e.reason}")
            if len(report.errors) > 20:
                console.print(f"  … and {len(report.errors) - 20:,} more")
            console.print(
                f"[yellow]{report.rejected:,} rows rejected; every reason is in {report.rejects_path}[/yellow]"
            )
    raise typer.Exit(report.exit_status)


@loan_app.command("show")
def loan_show(loan_id: str, as_of: AsOf, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A loan's state as of a day: amounts due and overdue per component, days past due, bucket, schedule."""
    from duecourse.services.reports import loan_state

    c = bootstrap.build()
    state = loan_state(c.engine, loan_id, _day(as_of, "--as-of"))
    if as_json:
        _print_json(state)
        return
    table = Table(title=f"Loan {loan_id} as of {state['as_of']}", show_header=False)
    for key in ("product", "currency", "principal", "annual_rate", "penalty_rate", "term", "start_date", "method"):
        table.add_row(key, str(state[key]))
    for key in ("days_past_due", "bucket", "paused_days", "oldest_unpaid_due_date"):
        if key in state:
            table.add_row(f"[bold]{key}[/bold]", f"[bold]{state[key]}[/bold]")
    console.print(table)
    if "bucket" in state:
        comp = Table(title="Amounts")
        for col in ("", "principal", "interest", "fee", "penalty"):
            comp.add_column(col, justify="right")
        for kind in ("due", "overdue"):
            comp.add_row(kind, *(str(state[f"{kind}_{c_}"]) for c_ in ("principal", "interest", "fee", "penalty")))
        console.print(comp)
        console.print(
            f"outstanding principal {state['outstanding_principal']}, outstanding total {state['outstanding_total']}, "
            f"paid {state['paid_total']}, credit {state['credit_balance']}; next due {state['next_due_date']} "
            f"({state['next_due_amount']})"
        )
    sched = Table(title="Schedule")
    for col in ("seq", "due_date", "principal", "interest", "fee"):
        sched.add_column(col, justify="right")
    for row in state["schedule"]:
        sched.add_row(*(str(row[k]) for k in ("seq", "due_date", "principal", "interest", "fee")))
    console.print(sched)
    if state["payments"]:
        pays = Table(title="Payments as of the day")
        for col in ("value_date", "amount", "kind"):
            pays.add_column(col)
        for row in state["payments"]:
            pays.add_row(row["value_date"], row["amount"], row["kind"])
        console.print(pays)
    for h in state["holds"]:
        console.print(
            f"hold {h['kind']} {h['start_date']}–{h['end_date'] or 'open'} "
            f"clock={h['pauses_clock']} outreach={h['pauses_outreach']}"
        )


@cycle_app.command("run")
def cycle_run(
    as_of: AsOf,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Compute and report, write nothing.")] = False,
    replay: Annotated[bool, typer.Option("--replay", help="Allow a day earlier than the last run.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run the daily cycle for a day: ledger, cases, ladder proposals, compliance port, write-back."""
    from duecourse.services.cycle import STAGES, run_cycle

    c = bootstrap.build()
    day = _day(as_of, "--as-of")
    show_progress = not as_json and console.is_terminal
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        disable=not show_progress,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=len(STAGES))

        def on_stage(name: str) -> None:
            progress.update(task, description=f"cycle {day}: {name}", advance=1)

        summary = run_cycle(
            c.engine,
            c.strategy,
            c.compliance,
            day,
            now=c.clock(),
            replay=replay,
            dry_run=dry_run,
            follow_up=c.plan_policy.follow_up,
            on_stage=on_stage,
        )
    if as_json:
        _print_json(summary.to_json())
    else:
        render_cycle_summary(summary)


def render_cycle_summary(summary: Any, currency: str = "CNY") -> None:
    head = (
        "dry run — nothing written"
        if summary.dry_run
        else ("wrote new records" if summary.changed else "already run: nothing changed")
    )
    console.print(f"[bold]Cycle {summary.as_of}[/bold] ({head}); {summary.loans:,} loans")
    table = Table(title="Accounts and balances by bucket")
    for col in ("bucket", "accounts", "outstanding", "overdue"):
        table.add_column(col, justify="right")
    for row in summary.by_bucket:
        table.add_row(
            row["bucket"],
            f"{row['accounts']:,}",
            format_money(row["outstanding"], currency),
            format_money(row["overdue"], currency),
        )
    console.print(table)
    console.print(
        "Transitions since the day before: " + ", ".join(f"{k} {v:,}" for k, v in summary.transitions.items())
    )
    props = Table(title="Proposals by step and channel")
    for col in ("step", "channel", "count"):
        props.add_column(col, justify="right" if col == "count" else "left")
    for row in summary.proposals:
        props.add_row(row["step"], row["channel"], f"{row['count']:,}")
    console.print(props)
    console.print(
        f"cases opened {summary.cases_opened:,}, closed {summary.cases_closed:,}; "
        f"new proposals {summary.proposals_new:,}; "
        "compliance: " + (", ".join(f"{k} {v:,}" for k, v in summary.compliance.items()) or "no proposals")
    )
    if summary.blocks_by_rule:
        blocks = Table(title="Blocked or rescheduled proposals by rule")
        blocks.add_column("rule")
        blocks.add_column("proposals", justify="right")
        for rule, count in summary.blocks_by_rule.items():
            blocks.add_row(rule, f"{count:,}")
        console.print(blocks)


@report_app.command("roll-rates")
def report_roll_rates(
    start: Annotated[str, typer.Option("--from")],
    end: Annotated[str, typer.Option("--to")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Bucket-to-bucket roll-rate matrix between two snapshot days."""
    from duecourse.services.reports import roll_rates

    c = bootstrap.build()
    rr = roll_rates(c.engine, _day(start, "--from"), _day(end, "--to"))
    if as_json:
        _print_json(rr.to_json())
        return
    from duecourse.views import roll_rate_table

    console.print(roll_rate_table(rr))


@audit_app.command("verify")
def audit_verify() -> None:
    """Prove the audit chain, or name the first entry that was altered, removed or reordered."""
    from duecourse.audit.log import verify

    c = bootstrap.build()
    with c.engine.connect() as conn:
        count, brk = verify(conn)
    if brk is None:
        console.print(f"[green]audit chain verified: {count:,} entries, intact[/green]")
        return
    err.print(f"[red]audit chain BROKEN at entry {brk[0]}: {brk[1]}[/red] ({count:,} entries read)")
    raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    start: Annotated[str | None, typer.Option("--from", help="First day (UTC), inclusive.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day (UTC), inclusive.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="File to write; standard output if omitted.")] = None,
) -> None:
    """Write audit entries as JSON Lines, verifiable offline."""
    from datetime import timedelta

    from duecourse.audit.export import export_jsonl

    c = bootstrap.build()
    lo = None if start is None else datetime.combine(_day(start, "--from"), datetime.min.time(), UTC)
    hi = None if end is None else datetime.combine(_day(end, "--to") + timedelta(days=1), datetime.min.time(), UTC)
    with c.engine.connect() as conn:
        if out is None:
            n = export_jsonl(conn, sys.stdout, lo, hi)
        else:
            with out.open("w", encoding="utf-8") as fh:
                n = export_jsonl(conn, fh, lo, hi)
    err.print(f"exported {n:,} audit entries")


@app.command("demo")
def demo(
    borrowers: Annotated[int, typer.Option(help="Borrowers in the generated book.")] = 20_000,
    days: Annotated[int, typer.Option(help="Daily cycles to run.")] = 30,
    start: Annotated[str, typer.Option(help="First simulated day.")] = "2026-11-01",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing demo database.")] = False,
) -> None:
    """Build a realistic demo book, import it and run the daily cycle over simulated days."""
    from duecourse.demo.run import run_demo

    run_demo(
        bootstrap.build(), n_borrowers=borrowers, days=days, start=_day(start, "--start"), out=console, force=force
    )


def main() -> None:
    keep_freed_memory()
    try:
        app()
    except DueCourseError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(2)
