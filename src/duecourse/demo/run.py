"""`duecourse demo`: generate a realistic book, import it, run a month of daily cycles and show how the book moved.

Everything goes through the same services a lender uses (the importer, the daily cycle, the reports),
on a fresh SQLite file under the data directory; simulated days use simulated clocks, so the audit
trail reads as if the month had really passed.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import polars as pl
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, make_url, select, text

from duecourse.adapters.db import tables as t
from duecourse.audit.chain import as_utc
from duecourse.audit.log import verify
from duecourse.bootstrap import Container
from duecourse.demo import history
from duecourse.demo.book import GeneratedBook, generate_book, load_roll_rates, write_book, write_table
from duecourse.demo.desk import AGENTS as AGENTS_SHOWN
from duecourse.demo.desk import Desk, DeskDay, field_teams
from duecourse.demo.history import migrate
from duecourse.domain.errors import DueCourseError
from duecourse.domain.money import format_money
from duecourse.domain.verification import display
from duecourse.services.cycle import CycleSummary, run_cycle
from duecourse.services.importer import import_book
from duecourse.services.reports import roll_rates
from duecourse.views import roll_rate_table

LENDER_TIME = ZoneInfo("Asia/Shanghai")
ACTOR = "demo"


class DemoError(DueCourseError):
    """The demo refuses to run (it would touch a database it does not own)."""


@dataclass
class DayLine:
    day: date
    payments: int
    reversals: int
    rejected: int
    delinquent: int
    overdue: int
    cases_opened: int
    cases_closed: int
    cures: int
    rolls_forward: int
    proposals: int
    seconds: float


@dataclass
class DemoResult:
    database: str
    book_dir: Path
    first_day: date
    last_day: date
    loans: int
    baseline: DayLine | None = None  # the cycle on the book as imported (first_day)
    days: list[DayLine] = field(default_factory=list)  # the simulated days, first_day + 1 .. last_day
    summaries: list[CycleSummary] = field(default_factory=list)  # baseline first
    desk: list[DeskDay] = field(default_factory=list)  # what the desk did each simulated day
    look_at: dict[str, str] = field(default_factory=dict)  # why -> loan id
    visited: list[str] = field(default_factory=list)  # door visits made, in order
    notices: dict[str, dict[str, str]] = field(default_factory=dict)  # visit id -> its notice PDF and code
    refusals: list[str] = field(default_factory=list)  # what the rules said to visits arranged against them
    audit: tuple[int, tuple[int, str] | None] = (0, None)  # entries checked, first break (audit.log.verify)


def run_demo(
    container: Container,
    n_borrowers: int = 20_000,
    days: int = 30,
    start: date = date(2026, 11, 1),
    out: Console | None = None,
    *,
    seed: int = 20261101,
    fmt: Literal["csv", "parquet"] = "csv",
    allow_existing_database: bool = False,
    force: bool = False,
) -> DemoResult:
    """Generate a book as of the day before `start`, import it, then run `days` daily cycles with each day's payments.

    The SQLite file under the data directory is deleted first, unless it holds data imported from
    anywhere but the demo's own directory (then `force` is needed). Any other database (PostgreSQL, or
    a SQLite file elsewhere) is refused unless `allow_existing_database`, and even then it must hold no
    loans: the demo never mixes its book into real data.
    """
    out = out or Console()
    if days < 2:
        raise DemoError("the demo needs at least 2 days to show how the book moves")
    as_of = start - timedelta(days=1)
    demo_dir = container.settings.data_dir / "demo"
    database = _fresh_database(container, allow_existing_database, force)

    face = _cut_letter_face_meanwhile(container.settings.data_dir / "fonts")
    staff = container.settings.policy_path.parent / "examples" / "staff.csv"
    teams, lapsed = field_teams(staff, as_of, start + timedelta(days=days + 30))
    with out.status(f"Generating {n_borrowers:,} borrowers as of {as_of} (seed {seed}) ..."):
        began = time.perf_counter()
        migrated = migrate(generate_book(n_borrowers, as_of, seed, days_ahead=days), frozenset(teams), seed)
        book = migrated.book
        shutil.rmtree(demo_dir, ignore_errors=True)
        book_dir = write_book(book, demo_dir / "book", fmt)
    out.print(
        f"Generated a book of [bold]{book.borrowers.height:,}[/bold] borrowers, {book.loans.height:,} loans, "
        f"{book.instalments.height:,} instalments, {book.payments.height:,} past payments, "
        f"{book.contact_points.height:,} contact points and {book.holds.height:,} holds "
        f"in {time.perf_counter() - began:.1f} s -> {book_dir}"
    )

    engine = container.engine
    _require_no_loans(engine, database, allow_existing_database)
    rejects_dir = demo_dir / "rejects"
    with out.status("Importing the book ..."):
        began = time.perf_counter()
        report = import_book(
            engine, book_dir, rejects_dir, container.cipher, actor=ACTOR, now=_evening(as_of), signer=container.signer
        )
    out.print(
        f"Imported {report.accepted:,} rows ({report.rejected:,} rejected) in {time.perf_counter() - began:.1f} s"
        + (f"; rejects in {report.rejects_path}" if report.rejects_path else "")
    )
    with engine.begin() as conn:
        calls = history.record(conn, migrated.history, _evening(as_of, minute=35))
    out.print(
        f"With the book came the previous system's contact history: {calls:,} calls over the last 30 days to the "
        f"{migrated.history.get_column('loan_id').n_unique():,} accounts in collections, "
        f"{migrated.history.filter(pl.col('outcome') != 'conversation').height:,} of them unanswered; "
        f"{migrated.deep.height} silent accounts stopped paying 70-95 days ago (door-visit cases)."
    )

    result = DemoResult(database, book_dir, as_of, start + timedelta(days=days - 1), book.loans.height)
    out.print()
    out.print(
        f"The cycle runs for {as_of} on the book as imported (it opens cases for the loans already "
        f"delinquent), then for [bold]{days} simulated days from {start}[/bold]: each day that day's "
        "payments are imported first."
    )
    out.print(_HEADER)
    result.baseline = _one_day(container, engine, book, as_of, demo_dir, rejects_dir, fmt, result)
    out.print(_format_line(result.baseline))
    if face is not None and face.wait() != 0:
        out.print("[yellow]cutting the letters' face failed; the first letter will cut it[/yellow]")
    desk = Desk(container, book, demo_dir, seed, migrated.silent, teams, lapsed)
    desk.start(_evening(as_of), staff)
    for offset in range(days):
        day = start + timedelta(days=offset)
        result.days.append(_one_day(container, engine, book, day, demo_dir, rejects_dir, fmt, result))
        began = time.perf_counter()
        result.desk.append(desk.work(day))
        result.days[-1].seconds += time.perf_counter() - began
        out.print(_format_line(result.days[-1]))
    seconds = sum(d.seconds for d in result.days)
    desk_time = {part: sum(d.seconds.get(part, 0.0) for d in result.desk) for part in ("dispatch", "calls", "visits")}
    out.print(
        f"{days} days in {seconds:.0f} s ({seconds / days:.1f} s a day): the day's payments imported and the cycle "
        f"over {book.loans.height:,} loans {seconds - sum(desk_time.values()):.0f} s; the desk's dispatch "
        f"{desk_time['dispatch']:.0f} s, calls {desk_time['calls']:.0f} s, visits {desk_time['visits']:.0f} s."
    )
    result.look_at = _interesting_loans(engine, book, result.first_day, result.last_day)
    result.visited, result.notices, result.refusals = desk.visited, desk.notices, desk.refusals
    _final_summary(out, engine, result, container)
    _desk_summary(out, engine, result, container, desk)
    with engine.connect() as conn:
        result.audit = verify(conn)
    count, broken = result.audit
    out.print()
    out.print(
        f"[green]audit chain verified: {count:,} entries, intact[/green] (what `duecourse audit verify` checks)"
        if broken is None
        else f"[red]audit chain BROKEN at entry {broken[0]}: {broken[1]}[/red]"
    )
    return result


# One line a day, under 80 columns: payments and bounced (reversed) payments imported that day; loans in
# arrears and their overdue amount (whole yuan); cases opened and closed; cures and roll-forwards since
# the day before; actions proposed.
_HEADER = (
    f"[bold]{'day':<10} {'paid':>6} {'rev.':>4} {'delinq.':>7} {'overdue CNY':>12} {'opened':>6} {'closed':>6} "
    f"{'cures':>5} {'rolled':>6} {'proposed':>8}[/bold]"
)


def _format_line(d: DayLine) -> str:
    return (
        f"{d.day.isoformat():<10} {d.payments:>6,} {d.reversals:>4,} {d.delinquent:>7,} {d.overdue // 100:>12,} "
        f"{d.cases_opened:>6,} {d.cases_closed:>6,} {d.cures:>5,} {d.rolls_forward:>6,} {d.proposals:>8,}"
    )


def _one_day(
    container: Container,
    engine: Engine,
    book: GeneratedBook,
    day: date,
    demo_dir: Path,
    rejects_dir: Path,
    fmt: Literal["csv", "parquet"],
    result: DemoResult,
) -> DayLine:
    began = time.perf_counter()
    arrived = book.daily_payments.get(day, book.payments.head(0))  # the baseline day has none: its are imported
    rejected = 0
    if arrived.height:
        # A partial book: only a payments file, for loans the store already holds.
        day_dir = write_table(arrived, demo_dir / "days" / day.isoformat(), "payments", fmt).parent
        report = import_book(
            engine, day_dir, rejects_dir, container.cipher, actor=ACTOR, now=_evening(day), signer=container.signer
        )
        rejected = report.rejected
    summary = run_cycle(
        engine,
        container.strategy,
        container.compliance,
        day,
        now=_evening(day, minute=45),
        actor="system:cycle",
        follow_up=container.plan_policy.follow_up,
    )
    result.summaries.append(summary)
    delinquent = [r for r in summary.by_bucket if r["bucket"] != "current"]
    return DayLine(
        day=day,
        payments=int(arrived.filter(pl.col("reverses_payment_id").is_null()).height),
        reversals=int(arrived.filter(pl.col("reverses_payment_id").is_not_null()).height),
        rejected=rejected,
        delinquent=sum(int(r["accounts"]) for r in delinquent),
        overdue=sum(int(r["overdue"]) for r in summary.by_bucket),
        cases_opened=summary.cases_opened,
        cases_closed=summary.cases_closed,
        cures=int(summary.transitions.get("cure", 0)),
        rolls_forward=int(summary.transitions.get("roll_forward", 0)),
        proposals=summary.proposals_new,
        seconds=time.perf_counter() - began,
    )


def _cut_letter_face_meanwhile(fonts: Path) -> subprocess.Popen[bytes] | None:
    """On a first run, cut the letters' face (adapters/channels/letters.py: a minute of one core) in another process
    while the book is generated, imported and cycled, instead of when the first letter is printed."""
    if any(fonts.glob("letter-sc-*.otf")):
        return None
    script = (
        "import sys, pathlib; from duecourse.adapters.channels.letters import letter_face as cut; "
        "cut(pathlib.Path(sys.argv[1]))"
    )
    return subprocess.Popen([sys.executable, "-c", script, str(fonts)])


def _evening(day: date, minute: int = 30) -> datetime:
    """The simulated instant a day's work is done: 23:xx lender time, after the day's last booking."""
    return datetime.combine(day, clock_time(23, minute), LENDER_TIME).astimezone(UTC)


# --- the database -----------------------------------------------------------------------------------------


def _foreign_imports(path: Path, demo_dir: Path) -> str | None:
    """The first import source outside the demo's directory recorded in the SQLite file, if any."""
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        sources = [r[0] for r in conn.execute("SELECT source FROM import_run")]
    except sqlite3.DatabaseError:  # no import_run table: nothing was ever imported
        return None
    finally:
        conn.close()
    return next((s for s in sources if not Path(s).resolve().is_relative_to(demo_dir.resolve())), None)


def _fresh_database(container: Container, allow_existing: bool, force: bool) -> str:
    """Delete the demo's own SQLite file (and its WAL) under the data directory; refuse anything else by default."""
    url = make_url(container.settings.database_url)
    shown = url.render_as_string(hide_password=True)
    data_dir = container.settings.data_dir.resolve()
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database).resolve()
        if path.is_relative_to(data_dir):
            foreign = _foreign_imports(path, data_dir / "demo")
            if foreign and not force:
                raise DemoError(
                    f"{path} holds data imported from {foreign}, not only the demo's: the demo will not delete it. "
                    "Set DUECOURSE_HOME to another directory for the demo, or run `duecourse demo --force` to "
                    "delete it anyway."
                )
            engine = container.__dict__.pop("engine", None)  # a cached engine would keep the old file open
            if engine is not None:
                engine.dispose()
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return str(path)
    if not allow_existing:
        raise DemoError(
            f"the demo only resets its own SQLite file under {data_dir}; it will not touch {shown}. "
            "Unset DUECOURSE_DATABASE_URL to use the demo's own SQLite file."
        )
    return shown


def _require_no_loans(engine: Engine, database: str, allow_existing: bool) -> None:
    if not allow_existing:
        return
    with engine.connect() as conn:
        loans = conn.execute(select(func.count()).select_from(t.loan)).scalar_one()
    if loans:
        raise DemoError(f"{database} already holds {loans:,} loans: the demo only runs on an empty database")


# --- what to look at ----------------------------------------------------------------------------------------


def _interesting_loans(engine: Engine, book: GeneratedBook, first: date, last: date) -> dict[str, str]:
    """A few loans worth opening: one that rolled forward, one that cured, one whose payment bounced, one on hold."""
    out: dict[str, str] = {}
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT l.loan_id, a.bucket, b.bucket, a.days_past_due, b.days_past_due, b.overdue_total"
                " FROM delinquency_snapshot a JOIN delinquency_snapshot b ON a.loan_key = b.loan_key"
                " JOIN loan l ON l.loan_key = a.loan_key WHERE a.as_of = :first AND b.as_of = :last"
                " AND a.bucket <> b.bucket ORDER BY b.overdue_total DESC, l.loan_id"
            ),
            {"first": first.isoformat(), "last": last.isoformat()},
        ).all()
    rolled = [r for r in rows if r[4] > r[3] and r[1] != "current"]
    cured = [r for r in rows if r[2] == "current" and r[3] > 30]
    if rolled:
        out[f"rolled from {rolled[0][1]} to {rolled[0][2]}"] = rolled[0][0]
    if cured:
        out[f"cured from {cured[0][1]}"] = cured[0][0]
    window = pl.concat(list(book.daily_payments.values())) if book.daily_payments else book.payments.head(0)
    bounced = window.filter(pl.col("reverses_payment_id").is_not_null())
    if bounced.height:
        out["a payment bounced and was reversed"] = str(bounced["loan_id"][0])
    held = book.holds.filter(pl.col("loan_id").is_not_null() & (pl.col("start_date") >= first))
    if held.height:
        out[f"a {held['kind'][0]} hold started on {held['start_date'][0]}"] = str(held["loan_id"][0])
    return out


# --- the final summary ---------------------------------------------------------------------------------------


def _final_summary(out: Console, engine: Engine, result: DemoResult, container: Container) -> None:
    first, last = result.summaries[0], result.summaries[-1]
    out.print()
    out.print(_bucket_table(first, last))
    rr = roll_rates(engine, result.first_day, result.last_day)
    out.print(roll_rate_table(rr))
    _, uci = load_roll_rates()
    out.print(
        "The generated behaviour follows monthly roll rates estimated from the UCI repayment histories: "
        f"current->M1 {uci[0, 1]:.1%}, M1->current {uci[1, 0]:.1%}, M1->M2 {uci[1, 2]:.1%}, M2->M3 {uci[2, 3]:.1%}, "
        f"M3->M4 {uci[3, 4]:.1%} (src/duecourse/demo/roll_rates_uci.json). Measured between two days, loans "
        "that pay a few days after a due date show as one bucket further on the later day."
    )
    out.print(_proposals_table(engine, result))
    out.print(_blocks_table(result))
    example = _blocked_example(engine, result)
    if example is not None:
        out.print(f"For example, {example[0]} on {example[1]} ({example[2]}): {example[3]}")

    def over_days(what: str) -> int:
        return sum(int(getattr(d, what)) for d in result.days)

    totals = (
        f"Over the {len(result.days)} simulated days: {over_days('payments'):,} payments imported "
        f"({over_days('reversals'):,} reversed, {over_days('rejected'):,} rejected), "
        f"{over_days('cases_opened'):,} cases opened, {over_days('cases_closed'):,} closed, "
        f"{over_days('proposals'):,} actions proposed."
    )
    out.print(totals)
    out.print()
    out.print("[bold]Where to look next[/bold]")
    home = container.settings.data_dir
    prefix = "" if home == Path("var").resolve() else f"DUECOURSE_HOME={home} "
    for why, loan_id in result.look_at.items():
        out.print(f"  {prefix}duecourse loan show {loan_id} --as-of {result.last_day}   # {why}")
    out.print(f"  {prefix}duecourse report roll-rates --from {result.first_day} --to {result.last_day}")
    out.print(f"  {prefix}duecourse cycle run --as-of {result.last_day} --dry-run  # again, writes nothing")
    out.print(f"  {prefix}duecourse audit verify")
    out.print(f"  {prefix}duecourse rules list                   # the rulebook that decided, every rule cited")
    out.print(f"  {prefix}duecourse compliance explain examples/compliance/cn-call.json   # every rule, one contact")
    out.print(f"  the database: {result.database}")
    out.print(f"  the generated book (import format, see docs/book-format.md): {result.book_dir}")


def _blocks_table(result: DemoResult) -> Table:
    """Blocked or rescheduled proposals of the whole run, by the rule that blocked them."""
    counts: dict[str, int] = {}
    for summary in result.summaries[1:]:
        for rule, n in summary.blocks_by_rule.items():
            counts[rule] = counts.get(rule, 0) + n
    table = Table(
        title="Proposals blocked or rescheduled by compliance, by rule (a proposal may be blocked by several)"
    )
    table.add_column("rule")
    table.add_column("proposals", justify="right")
    for rule, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(rule, f"{n:,}")
    return table


def _blocked_example(engine: Engine, result: DemoResult) -> tuple[str, str, str, str] | None:
    """One blocked contact (not an internal step) with its full reason, to show what a block says."""
    a, loan = t.proposed_action, t.loan
    with engine.connect() as conn:
        row = conn.execute(
            select(loan.c.loan_id, a.c.as_of, a.c.step, a.c.compliance_reason)
            .join(loan, loan.c.loan_key == a.c.loan_key)
            .where(
                a.c.as_of.between(result.first_day, result.last_day),
                a.c.compliance_status == "blocked",
                a.c.channel.in_(["call", "sms", "app", "email", "letter", "visit"]),
            )
            .order_by(a.c.as_of.desc(), a.c.action_key)
            .limit(1)
        ).first()
    return None if row is None else (str(row[0]), str(row[1]), str(row[2]), str(row[3]))


def _bucket_table(first: CycleSummary, last: CycleSummary) -> Table:
    table = Table(title=f"The book by bucket, {first.as_of} and {last.as_of}")
    for col in (
        "bucket",
        f"loans {first.as_of}",
        f"loans {last.as_of}",
        "change",
        f"overdue {first.as_of}",
        f"overdue {last.as_of}",
    ):
        table.add_column(col, justify="left" if col == "bucket" else "right")
    a = {r["bucket"]: r for r in first.by_bucket}
    b = {r["bucket"]: r for r in last.by_bucket}
    order = [r["bucket"] for r in last.by_bucket] + [k for k in a if k not in b]
    empty: dict[str, Any] = {"accounts": 0, "overdue": 0}
    for bucket in order:
        ra, rb = a.get(bucket, empty), b.get(bucket, empty)
        change = int(rb["accounts"]) - int(ra["accounts"])
        table.add_row(
            bucket,
            f"{ra['accounts']:,}",
            f"{rb['accounts']:,}",
            f"{change:+,}",
            format_money(int(ra["overdue"]), "CNY"),
            format_money(int(rb["overdue"]), "CNY"),
        )
    return table


def _proposals_table(engine: Engine, result: DemoResult) -> Table:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                t.proposed_action.c.step,
                t.proposed_action.c.channel,
                t.proposed_action.c.compliance_status,
                func.count(),
                func.min(t.proposed_action.c.priority),
            )
            .where(t.proposed_action.c.as_of.between(result.first_day, result.last_day))
            .group_by(t.proposed_action.c.step, t.proposed_action.c.channel, t.proposed_action.c.compliance_status)
        ).all()
    table = Table(title=f"Actions proposed {result.first_day} -> {result.last_day}, by ladder step and channel")
    for col in ("step", "channel", "compliance", "count"):
        table.add_column(col, justify="right" if col == "count" else "left")
    for step, channel, status, count, _ in sorted(rows, key=lambda r: (r[4], r[0], r[2])):
        table.add_row(step, channel, status, f"{count:,}")
    return table


def _desk_summary(out: Console, engine: Engine, result: DemoResult, container: Container, desk: Desk) -> None:
    """What reaching the debtors did over the month: messages, calls, promises, plans and door visits."""

    def total(part: str) -> dict[str, int]:
        sums: dict[str, int] = {}
        for d in result.desk:
            for k, n in getattr(d, part).items():
                sums[k] = sums.get(k, 0) + n
        return dict(sorted(sums.items()))

    with engine.connect() as conn:
        promises: dict[str, int] = dict(
            conn.execute(select(t.promise_to_pay.c.state, func.count()).group_by(t.promise_to_pay.c.state)).all()
        )
        plans: dict[str, int] = dict(
            conn.execute(select(t.repayment_plan.c.state, func.count()).group_by(t.repayment_plan.c.state)).all()
        )
    out.print()
    out.print("[bold]Reaching the debtors[/bold]")
    out.print(
        f"Dispatch: {sum(d.sent for d in result.desk):,} messages sent (SMS, e-mail, app; each with its verification "
        f"code, filed by the sandbox channel in {desk.folder / 'outbox'}), {sum(d.handed_off for d in result.desk):,} "
        f"handed to the call queue, the print room and visit planning, {sum(d.cancelled for d in result.desk):,} "
        "cancelled at send time (paid, on hold, or no longer allowed)."
    )
    out.print(f"Calls made by {len(AGENTS_SHOWN)} agents: {total('calls')}")
    out.print(f"Promises to pay: {dict(sorted(promises.items()))} (judged by the daily cycle on the cash that came in)")
    out.print(f"Repayment plans: offered and decided {total('plans')}; on the books now {dict(sorted(plans.items()))}")
    out.print(f"Door visits, steps taken over the month: {total('visits') or 'none'}")
    _visit_journey(out, engine, container, desk, result.last_day)


def _visit_journey(out: Console, engine: Engine, container: Container, desk: Desk, last_day: date) -> None:
    """One door visit from the cycle's proposal to its reported outcome, as the audit trail records it."""
    made = desk.visited or list(desk.notices)
    if not made:
        out.print("  no visit reached its notice this month")
        return
    visit_id = made[0]
    v, a, ln, e = t.visit, t.proposed_action, t.loan, t.audit_entry
    with engine.connect() as conn:
        row = conn.execute(
            select(v.c.status, v.c.eligibility, v.c.office_id, ln.c.loan_id, a.c.as_of, a.c.step, a.c.compliance_status)
            .join(a, a.c.action_key == v.c.action_key)
            .join(ln, ln.c.loan_key == v.c.loan_key)
            .where(v.c.visit_id == visit_id)
        ).one()
        steps = conn.execute(
            select(e.c.at, e.c.action, e.c.reason)
            .where(e.c.entity == "visit", e.c.entity_id == visit_id)
            .order_by(e.c.seq)
        ).all()
    why = row.eligibility
    out.print(
        f"  The journey of visit [bold]{visit_id}[/bold] (loan {row.loan_id}: {why['days_past_due']} days past due, "
        f"{format_money(int(why['balance']), why['currency'])} overdue; {why['failed_attempts']} failed calls in the "
        f"last 30 days and no conversation; a visit from {row.office_id} costs {format_money(int(why['cost']), 'CNY')}"
        f", expected to bring back {format_money(int(why['expected_recovery']), 'CNY')}):"
    )
    out.print(
        f"    {row.as_of}        the cycle proposed it (ladder step {row.step}, compliance: {row.compliance_status})"
    )
    for at, action, reason in steps:
        when = as_utc(at).astimezone(LENDER_TIME)
        out.print(f"    {when:%Y-%m-%d %H:%M}  {action.removeprefix('visit.')}: {reason}")
    notice = desk.notices.get(visit_id)
    if notice is not None:
        code = display(notice["code"])
        out.print(f"  Its pre-visit notice (Chinese, with a QR code to /verify): {notice['pdf']}")
        arrived = next((as_utc(s.at) for s in steps if s.action == "visit.checked_in"), None)
        at_door = arrived or _evening(last_day)
        answer = desk.verify(code, at_door)
        team = ", ".join(f"{name} ({badge})" for name, badge in answer.visit_team)
        out.print(
            f"  Its code {code}, checked as the debtor would at the door ({container.settings.public_url}/verify?code="
            f"{code}): [bold]{answer.status}[/bold], {answer.lender}, {answer.purpose} by {answer.channel}; the "
            f"visitors: {team}. It expires after the visit window: a made-up or expired code says not genuine, do "
            "not pay."
        )
    for refusal in desk.refusals:
        out.print(f"  Refused, {refusal}")
    home = container.settings.data_dir
    prefix = "" if home == Path("var").resolve() else f"DUECOURSE_HOME={home} "
    out.print("  Where to look next:")
    out.print(f"    {prefix}duecourse visits show {visit_id}   # its team, slot, check-in, evidence and outcome")
    if notice is not None:
        out.print(f"    pdftotext {notice['pdf']} -   # the notice's text; or open the PDF")
        url = f"{container.settings.public_url}/verify?code={display(notice['code'])}"
        now = f"DUECOURSE_NOW={at_door.astimezone(LENDER_TIME).isoformat()} "
        out.print(f"    {prefix}{now}duecourse web serve   # then open {url} (the page at that moment)")
    out.print(f"    {prefix}duecourse audit verify   # every step above is in the hash-chained audit log")
