"""`duecourse plans …`: finances, plan options, offers, approvals, acceptance and promises to pay from the terminal.

Each command only translates its arguments to a `services.plans` or `services.promises` call and renders the
result. Money typed here is read as an exact decimal in major units (never a float).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from duecourse import bootstrap
from duecourse.domain.errors import DueCourseError
from duecourse.services import plans, promises
from duecourse.services.plans import FinancesInput

plans_app = typer.Typer(
    no_args_is_help=True, help="Repayment plans: finances, options, offers, approvals, acceptance; promises to pay."
)
finances_app = typer.Typer(no_args_is_help=True, help="A debtor's finances and what they can afford.")
promises_app = typer.Typer(no_args_is_help=True, help="Promises to pay: take, list, report.")
plans_app.add_typer(finances_app, name="finances")
plans_app.add_typer(promises_app, name="promises")
console = Console()
err = Console(stderr=True)

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
By = Annotated[str, typer.Option("--by", help="Who does this (recorded in the audit trail).")]
Role = Annotated[str, typer.Option("--role", help="The role acting: agent, team_lead or supervisor.")]
Source = Annotated[str, typer.Option(help="stated, evidenced or estimated.")]
_AMOUNT = re.compile(r"\d{1,15}(\.\d+)?")


def _amount(text: str, what: str) -> Decimal:
    """A typed amount in major units, exactly: digits with an optional decimal point, nothing else."""
    if not _AMOUNT.fullmatch(text.strip()):
        err.print(f"[red]{what}: {text!r} is not an amount (digits with an optional decimal point, e.g. 1234.56)[/red]")
        raise typer.Exit(2)
    return Decimal(text.strip())


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        err.print(f"[red]{what}: {text!r} is not a date (YYYY-MM-DD)[/red]")
        raise typer.Exit(2) from None


@contextmanager
def _refusals() -> Iterator[None]:
    """A request the services refuse (not found, not allowed, bad input) exits 1 with the reason."""
    try:
        yield
    except DueCourseError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def _out(value: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")
    else:
        render(value)


# --- finances ---------------------------------------------------------------------------------------


@finances_app.command("record")
def finances_record(
    borrower_id: str,
    income: Annotated[str, typer.Option(help="Monthly income, major units.")],
    essentials: Annotated[str, typer.Option(help="Monthly essential expenses, major units.")],
    by: By,
    other_debts: Annotated[str, typer.Option(help="Monthly payments on other debts, major units.")] = "0",
    savings: Annotated[str, typer.Option(help="Savings held now, major units.")] = "0",
    household: Annotated[int, typer.Option(help="People living on the income, the debtor included.")] = 1,
    dependants: Annotated[int, typer.Option(help="Of them, dependants.")] = 0,
    region: Annotated[str | None, typer.Option(help="ISO 3166-2 code, e.g. CN-11.")] = None,
    income_source: Source = "stated",
    essentials_source: Source = "stated",
    other_debts_source: Source = "stated",
    savings_source: Source = "stated",
    as_json: Json = False,
) -> None:
    """Record a debtor's finances (stored encrypted) and show what they can afford."""
    given = FinancesInput(
        monthly_income=(_amount(income, "--income"), income_source),
        essential_expenses=(_amount(essentials, "--essentials"), essentials_source),
        other_debt_payments=(_amount(other_debts, "--other-debts"), other_debts_source),
        savings=(_amount(savings, "--savings"), savings_source),
        household_size=household,
        dependants=dependants,
        region=region,
    )
    c = bootstrap.build()
    with _refusals():
        result = plans.record_finances(c.engine, c.cipher, c.plan_policy, borrower_id, given, by, c.clock())
    _out(result, as_json, _render_finances)


@finances_app.command("show")
def finances_show(
    borrower_id: str,
    payment: Annotated[
        str | None, typer.Option(help="A proposed monthly payment: its share of disposable income.")
    ] = None,
    as_json: Json = False,
) -> None:
    """The debtor's latest finances, the assessment, and the affordability of a proposed payment."""
    proposed = None if payment is None else _amount(payment, "--payment")
    c = bootstrap.build()
    with _refusals():
        result = plans.show_finances(c.engine, c.cipher, c.plan_policy, borrower_id, proposed)
    _out(result, as_json, _render_finances)


def _render_finances(r: dict[str, Any]) -> None:
    table = Table(title=f"Finances of {r['borrower_id']} ({r['currency']})", show_header=False)
    for name, figure in r["finances"].items():
        table.add_row(name, f"{figure['amount']} ({figure['source']})" if isinstance(figure, dict) else str(figure))
    for name, value in r["assessment"].items():
        table.add_row(f"[bold]{name}[/bold]", str(value))
    if "proposed" in r:
        p = r["proposed"]
        table.add_row(
            "[bold]proposed payment[/bold]",
            f"{p['monthly_payment']}: {p['share_of_disposable']} of disposable, affordable {p['affordable']}",
        )
    console.print(table)


# --- options and offers -----------------------------------------------------------------------------


@plans_app.command("options")
def options(
    loan_id: Annotated[str, typer.Argument(help="The loan; with --borrower, the borrower (all their overdue loans).")],
    as_of: Annotated[str, typer.Option("--as-of", help="The day, YYYY-MM-DD.")],
    borrower: Annotated[bool, typer.Option("--borrower", help="LOAN_ID is a borrower id.")] = False,
    as_json: Json = False,
) -> None:
    """The plans the policy allows for an overdue loan, best affordable first, each with its reason."""
    day = _day(as_of, "--as-of")
    c = bootstrap.build()
    with _refusals():
        if borrower:
            views = plans.borrower_options(c.engine, c.cipher, c.plan_policy, loan_id, day)
        else:
            views = [plans.loan_options(c.engine, c.cipher, c.plan_policy, loan_id, day)]

    def render(_: Any) -> None:
        for v in views:
            _render_options(v)
        if not views:
            console.print(f"{loan_id} has no overdue loan as of {day}")

    _out(views if borrower else views[0], as_json, render)


def _render_options(v: dict[str, Any]) -> None:
    o = v["outstanding"]
    console.print(
        f"Loan {v['loan_id']} as of {v['as_of']}: owes {o['total']} {v['currency']} (principal {o['principal']}, "
        f"interest {o['interest']}, penalty {o['penalty']}, fee {o['fee']}), {o['days_past_due']} days past due; "
        f"disposable {v['disposable']}, affordable up to {v['max_monthly_payment']} a month"
    )
    table = Table()
    for col in ("#", "kind", "months", "monthly", "total paid", "share", "waived", "expected", "agreed by", "reason"):
        table.add_column(col, justify="left" if col in ("kind", "waived", "reason", "agreed by") else "right")
    for opt in v["options"]:
        table.add_row(
            str(opt["rank"]),
            opt["kind"],
            str(opt["months"]),
            opt["monthly_payment"],
            opt["total_paid"],
            "-" if opt["share_of_disposable"] is None else f"{Decimal(opt['share_of_disposable']):.1%}",
            ", ".join(f"{k} {a}" for k, a in opt["waived"].items()) or "-",
            opt["expected_recovery"],
            opt["agreed_by"] or "nobody",
            opt["reason"],
        )
    console.print(table)


@plans_app.command("offer")
def offer(
    loan_id: str,
    kind: Annotated[str, typer.Option(help="restructure, suspension, holiday or settlement.")],
    months: Annotated[int, typer.Option(help="The option's term in months (as `options` lists it).")],
    by: By,
    role: Role,
    as_of: Annotated[str, typer.Option("--as-of", help="The day the option is priced for, YYYY-MM-DD.")],
    as_json: Json = False,
) -> None:
    """Offer an option: within the role's limits it stands at once, beyond them it waits for a supervisor."""
    day = _day(as_of, "--as-of")
    c = bootstrap.build()
    with _refusals():
        result = plans.offer(c.engine, c.cipher, c.plan_policy, loan_id, kind, months, by, role, day, c.clock())
    _out(result, as_json, _render_plan)


@plans_app.command("approve")
def approve(
    plan_id: str,
    by: By,
    role: Role,
    reason: Annotated[str, typer.Option(help="Why (recorded with the decision).")],
    as_json: Json = False,
) -> None:
    """A supervisor approves an offer beyond its maker's limits."""
    c = bootstrap.build()
    with _refusals():
        result = plans.approve(c.engine, c.plan_policy, plan_id, by, role, reason, c.clock())
    _out(result, as_json, _render_plan)


@plans_app.command("decline")
def decline(
    plan_id: str,
    by: By,
    role: Role,
    reason: Annotated[str, typer.Option(help="Why (recorded with the decision).")],
    as_json: Json = False,
) -> None:
    """A supervisor declines an offer beyond its maker's limits; it can never be accepted."""
    c = bootstrap.build()
    with _refusals():
        result = plans.decline(c.engine, c.plan_policy, plan_id, by, role, reason, c.clock())
    _out(result, as_json, _render_plan)


@plans_app.command("accept")
def accept(
    plan_id: str,
    effective: Annotated[str, typer.Option(help="The day the plan takes effect, YYYY-MM-DD.")],
    by: By,
    as_json: Json = False,
) -> None:
    """Record the debtor's acceptance: the plan replaces the loan's schedule from the effective day."""
    day = _day(effective, "--effective")
    c = bootstrap.build()
    with _refusals():
        result = plans.accept(c.engine, c.plan_policy, plan_id, day, by, c.clock())
    _out(result, as_json, _render_plan)


@plans_app.command("show")
def show(plan_id: str, as_json: Json = False) -> None:
    """One plan: the option offered, the decision trail, and its schedule once accepted."""
    c = bootstrap.build()
    with _refusals():
        result = plans.show_plan(c.engine, plan_id)
    _out(result, as_json, _render_plan)


@plans_app.command("list")
def list_cmd(
    borrower: Annotated[str | None, typer.Option(help="Only this borrower's plans.")] = None,
    loan: Annotated[str | None, typer.Option(help="Only this loan's plans.")] = None,
    state: Annotated[str | None, typer.Option(help="Only plans in this state.")] = None,
    as_json: Json = False,
) -> None:
    """Plans, newest offer first."""
    c = bootstrap.build()
    rows = plans.list_plans(c.engine, borrower, loan, state)
    _out(rows, as_json, lambda r: _render_rows("Plans", r))


def _render_plan(p: dict[str, Any]) -> None:
    table = Table(title=f"Plan {p['plan_id']}", show_header=False)
    for key in ("loan_id", "borrower_id", "state", "kind", "months", "monthly_payment", "total_paid", "restructured"):
        table.add_row(key, str(p[key]))
    table.add_row("waived", ", ".join(f"{k} {a}" for k, a in p["waived"].items()) or "-")
    table.add_row("offered", f"{p['offered_at']} by {p['offered_by']} ({p['offered_role']})")
    if p["authority"]["beyond"]:
        table.add_row("beyond the role's limits", "; ".join(p["authority"]["beyond"]))
    if p["decided_by"]:
        table.add_row("decided", f"{p['decided_at']} by {p['decided_by']}: {p['decision_reason']}")
    if p["effective_date"]:
        table.add_row(
            "effective", f"{p['effective_date']}, credit {p['credit_amount']}, watched until {p['watch_until']}"
        )
    console.print(table)
    sched = Table(title="Schedule" if p["schedule"] else "Schedule (as offered)")
    for col in ("seq", "due_date", "principal", "interest"):
        sched.add_column(col, justify="right")
    for row in p["schedule"] or p["instalments"]:
        sched.add_row(*(str(row[k]) for k in ("seq", "due_date", "principal", "interest")))
    console.print(sched)


def _render_rows(title: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=title)
    for col in rows[0] if rows else ():
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table if rows else f"{title}: none")


# --- promises ---------------------------------------------------------------------------------------


@promises_app.command("take")
def promises_take(
    loan_id: str,
    amount: Annotated[str, typer.Option(help="Major units of the loan's currency, e.g. 1234.56.")],
    on: Annotated[str, typer.Option("--on", help="The day promised, YYYY-MM-DD.")],
    channel: Annotated[str, typer.Option(help=f"One of {', '.join(promises.CHANNELS)}.")],
    by: Annotated[
        str, typer.Option("--by", help=f"The agent who took it, or '{promises.DEBTOR}' for the debtor's own channel.")
    ],
    event: Annotated[str | None, typer.Option(help="The contact event it was made in, if already recorded.")] = None,
    note: Annotated[str | None, typer.Option(help="A note kept with the contact.")] = None,
    as_json: Json = False,
) -> None:
    """Record a promise to pay with the contact it was made in."""
    given = promises.PromiseInput(
        loan_id, _amount(amount, "--amount"), _day(on, "--on"), channel, by, in_event=event, note=note
    )
    c = bootstrap.build()
    with _refusals():
        result = promises.take_promise(c.engine, given, c.clock())
    _out(
        result,
        as_json,
        lambda r: console.print(
            f"promise {r['promise_id']}: {r['amount']} {r['currency']} on {r['due_date']}"
            f" ({r['channel']}, {r['taken_by']})"
        ),
    )


@promises_app.command("list")
def promises_list(
    borrower: Annotated[str | None, typer.Option(help="Only this borrower's promises.")] = None,
    loan: Annotated[str | None, typer.Option(help="Only this loan's promises.")] = None,
    state: Annotated[str | None, typer.Option(help="open, kept, partly_kept or broken.")] = None,
    as_json: Json = False,
) -> None:
    """Promises, latest due first."""
    c = bootstrap.build()
    rows = promises.list_promises(c.engine, borrower, loan, state)
    _out(rows, as_json, lambda r: _render_rows("Promises to pay", r))


@promises_app.command("report")
def promises_report(
    due_from: Annotated[str | None, typer.Option("--from", help="Promises due on or after this day.")] = None,
    due_to: Annotated[str | None, typer.Option("--to", help="Promises due on or before this day.")] = None,
    as_json: Json = False,
) -> None:
    """The promise-kept rate by agent, channel and bucket (kept / (kept + partly kept + broken))."""
    start = None if due_from is None else _day(due_from, "--from")
    end = None if due_to is None else _day(due_to, "--to")
    c = bootstrap.build()
    report = promises.promise_report(c.engine, start, end)

    def render(r: dict[str, Any]) -> None:
        _render_rows("All promises", [r["total"]])
        for key in ("by_agent", "by_channel", "by_bucket"):
            _render_rows(f"Promises {key.replace('_', ' ')}", r[key])

    _out(report, as_json, render)
