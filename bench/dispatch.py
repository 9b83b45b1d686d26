"""Benchmark of dispatch: messages a second through the local Infobip fake and SMTP (aiosmtpd), letters a second.

Run: .venv/bin/python bench/dispatch.py [--loans 3000] [--batch 2000] [--letters 60] [--only sms,email,letters]
     [--workers N] [--letter-workers N] [--database-url URL] [--json]

Setup: a fresh SQLite file (or the EMPTY database at --database-url), a demo book of `--loans` loans imported
(names, numbers and addresses encrypted), and for every loan that owes something on 2026-09-28 one allowed
`sms` action and one allowed `email` action planned for 10:00 in Shanghai (the cycle's own planning makes
only a few of each a day on a demo book, so the bench writes them directly). Each phase is a real
`Dispatcher.run` at 02:30 UTC with one channel configured, everything included: enqueue (INSERT … SELECT),
claim under a lease, the send-time re-check (the book as of the day through the ledger, holds, the whole
rulebook at that moment with the contact history), a verification code per message, rendering, the send
(the Infobip fake over HTTP on loopback, 500 messages a request; a real aiosmtpd server, up to 4 connections
at once — each in a process of its own, as a provider is another system, and not counted in our CPU), and the
results with their contact events and audit entries; SMS receipts are pulled at the end. The provider reports
how many messages it received and how many it was sent twice (none, or exactly-once is broken).
Letters: `--letters` written notices to loans with something overdue, handed to services/letters.py and rendered
into one print batch (Jinja2 HTML, WeasyPrint with the cut Chinese face, the batch as one document, its manifest),
in the container's letters service with `--letter-workers` rendering processes (default: one a core; a batch of
at least 8 letters a worker is cut into one part a worker). The first letter is a phase of its own: it pays the
one-time cut of the letter face in a fresh home; the workers are then started (timed apart, shown with the batch).
The sms and email phases run in `--workers` dispatching processes (default: one a core on PostgreSQL; one on
SQLite, which the dispatcher allows only one process): the phase's dispatcher and helpers forked from a fork server
that is started, as `duecourse dispatch run` starts it, before the setup and imports beside it (its CPU is shown
apart); forking the helpers, their sends and their CPU are in the phase.
`--only` runs only the phases named (the actions of the others are not even written).
Reported per phase: messages, wall time, messages a second, the latency of a batch (claim to recorded:
p50/p95/max), the CPU seconds of the process and its children (rendering workers included) and the peak RSS so
far (of this process; of the largest rendering worker when there are workers), with the 1-minute load average.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.fakes: the Infobip fake

DAY = date(2026, 9, 28)
NOW = datetime(2026, 9, 28, 2, 30, tzinfo=UTC)
PLANNED = datetime(2026, 9, 28, 2, 0, tzinfo=UTC)
PROVIDERS: set[int] = set()  # pids of the loopback provider stand-ins: not ours, so not in our CPU or RSS
TEMPLATES = {
    "sms": "sms.overdue_amount_and_date",
    "email": "email.statement_and_options",
    "letter": "letter.written_notice",
}


def prepare(home: Path, loans: int, database_url: str | None, letters: int, channels: set[str]) -> dict[str, Any]:
    import polars as pl
    from sqlalchemy import insert, select

    from duecourse.adapters.db import tables as t
    from duecourse.bootstrap import Container
    from duecourse.demo.book import generate_book, write_book
    from duecourse.ledger.engine import ledger_state
    from duecourse.services.importer import import_book
    from duecourse.settings import Settings

    env = {"DUECOURSE_HOME": str(home)}
    if database_url:
        env["DUECOURSE_DATABASE_URL"] = database_url
    container = Container(Settings.from_env(env), clock=lambda: NOW)
    book = write_book(generate_book(loans, DAY, seed=5, days_ahead=1), home / "book", "csv")
    import_book(container.engine, book, home / "rejects", container.cipher, "bench", datetime(2026, 9, 27, tzinfo=UTC))
    with container.engine.begin() as conn:
        loan_ids = conn.execute(select(t.loan.c.loan_key, t.loan.c.loan_id).order_by(t.loan.c.loan_key)).all()
    # A written notice is only printed for a loan with something overdue: letters go to those.
    state = ledger_state(*_book_args(container.engine), DAY)
    overdue = set(state.filter(pl.col("overdue_total") > 0).get_column("loan_key").to_list())
    with container.engine.begin() as conn:
        rows = (
            [
                {
                    "idempotency_key": f"{DAY.isoformat()}:{loan_id}:bench_{channel}",
                    "as_of": DAY,
                    "loan_key": key,
                    "segment": "bench",
                    "ladder": "bench",
                    "step": f"bench_{channel}",
                    "action": "message",
                    "channel": channel,
                    "template": TEMPLATES[channel],
                    "priority": 1,
                    "arm": "bench",
                    "reason": "benchmark",
                    "compliance_status": "allowed",
                    "compliance_reason": "benchmark: planned as the cycle plans an allowed action",
                    "scheduled_at": PLANNED,
                }
                for channel in ("sms", "email")
                if channel in channels
                for key, loan_id in loan_ids
            ]
            + [
                {
                    "idempotency_key": f"{DAY.isoformat()}:{loan_id}:bench_letter",
                    "as_of": DAY,
                    "loan_key": key,
                    "segment": "standard",  # a real ladder step: the notice names the ladder's coming measure
                    "ladder": "standard",
                    "step": "written_notice",
                    "action": "letter",
                    "channel": "letter",
                    "template": TEMPLATES["letter"],
                    "priority": 1,
                    "arm": "bench",
                    "reason": "benchmark",
                    "compliance_status": "allowed",
                    "compliance_reason": "benchmark",
                    "scheduled_at": PLANNED,
                }
                for key, loan_id in [(k, i) for k, i in loan_ids if k in overdue][:letters]
                if "letters" in channels
            ]
        )
        conn.execute(insert(t.proposed_action), rows)
    return {"container": container}


def _book_args(engine: Any) -> tuple[Any, ...]:
    from duecourse.services.book_frames import load_book

    book = load_book(engine, DAY)
    return book.loans, book.instalments, book.payments, book.holds, book.conventions


def phase(
    container: Any,
    name: str,
    channels: dict[str, Any],
    hand_offs: dict[str, Any],
    batch: int,
    limit: int | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    from duecourse.services import dispatch as d

    policy = d.Policy(batch=batch)
    worker = d.Dispatcher(
        container.engine,
        container.cipher,
        container.signer,
        container.messages,
        container.compliance,
        channels,
        hand_offs=hand_offs,
        policy=policy,
        owner=f"bench:{name}",
        workers=workers,
        recipe=container.dispatch_recipe(channels, policy),
    )
    marks: list[float] = []
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    summary = worker.run(NOW, limit=limit, on_batch=lambda done, total: marks.append(time.perf_counter()))
    wall = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    latencies = [b - a for a, b in itertools.pairwise(marks)]
    report = summary.to_json()
    moved = sum(n for (_, o), n in summary.counts.items() if o in ("sent", "handed_off"))
    return {
        "phase": name,
        "workers": workers,
        "outcomes": report["by_channel"],
        "cancelled_reasons": report["cancelled_reasons"],
        "moved": moved,
        "wall_s": round(wall, 3),
        "per_second": round(moved / wall, 1) if wall else None,
        "batch_latency_s": {
            "p50": round(statistics.median(latencies), 3) if latencies else None,
            "p95": round(sorted(latencies)[math.ceil(0.95 * len(latencies)) - 1], 3) if latencies else None,
            "max": round(max(latencies), 3) if latencies else None,
        },
        "cpu_s": round(cpu, 2),
        "cpu_ms_each": round(1000 * cpu / moved, 1) if moved else None,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "workers_peak_rss_mib": max((rss for _, rss in descendants()), default=None),
        "load_1min": round(os.getloadavg()[0], 2),
    }


def descendants() -> list[tuple[int, float]]:
    """(pid, peak RSS in MiB) of every live process below this one (the forkserver and its rendering workers)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # gone meanwhile
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, todo = [], [os.getpid()]
    while todo:
        parent = todo.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in PROVIDERS]
        found += children
        todo += children
    out = []
    for pid in found:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        peak = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")), "0")
        out.append((pid, round(int(peak) / 1024, 1)))
    return out


def cpu_seconds() -> float:
    """User + system CPU of this process, its reaped children and its live descendants (the rendering workers
    live on between batches, so the kernel's children totals alone would miss them)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
    return total + sum(process_cpu(pid) for pid, _ in descendants())


def process_cpu(pid: int) -> float:
    """CPU seconds of a live process and of the children it reaped (the helper dispatchers are forked from, and
    reaped by, the fork server): utime, stime, cutime, cstime (fields 14 to 17 of /proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0  # gone meanwhile
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def serve(kind: str) -> None:
    """`--serve sms|smtp`: the provider's stand-in in a process of its own, as a real provider is another system
    (in the dispatcher's process its threads took the dispatcher's interpreter lock and CPU). Prints its URL, then
    runs until standard input closes and prints what it received as JSON."""
    if kind == "sms":
        from tests.fakes.infobip import FakeInfobip

        fake = FakeInfobip(push_reports=False).start()
        print(json.dumps({"url": fake.url, "api_key": fake.api_key}), flush=True)
        sys.stdin.read()
        received = {"messages": len(fake.messages), "duplicates": sum(n - 1 for n in fake.submissions.values())}
        fake.stop()
    else:
        from aiosmtpd.controller import Controller

        class Inbox:
            count = 0

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                Inbox.count += 1
                return "250 OK"

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
        controller.start()
        print(json.dumps({"url": f"smtp://127.0.0.1:{port}"}), flush=True)
        sys.stdin.read()
        received = {"messages": Inbox.count}
        controller.stop()
    print(json.dumps(received), flush=True)


@contextlib.contextmanager
def provider(kind: str) -> Iterator[tuple[dict[str, str], dict[str, int]]]:
    """Start `serve(kind)` in a child process; yield (its address, what it received — filled in on exit)."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin is not None and child.stdout is not None
    PROVIDERS.add(child.pid)
    received: dict[str, int] = {}
    try:
        yield json.loads(child.stdout.readline()), received
    finally:
        child.stdin.close()
        received.update(json.loads(child.stdout.readline() or "{}"))
        child.wait(timeout=30)
        PROVIDERS.discard(child.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=3000)
    parser.add_argument("--batch", type=int, help="messages a claimed batch (default: the dispatcher's)")
    parser.add_argument("--letters", type=int, default=60)
    parser.add_argument("--only", default="sms,email,letters", help="phases to run, comma-separated")
    parser.add_argument(
        "--letter-workers", type=int, default=os.cpu_count(), help="rendering processes (default: one a core)"
    )
    parser.add_argument(
        "--workers", type=int, help="dispatching processes (default: one a core on PostgreSQL, one on SQLite)"
    )
    parser.add_argument("--database-url")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", choices=("sms", "smtp"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    only = set(args.only.split(","))
    if only - {"sms", "email", "letters"}:
        parser.error(f"--only names phases among sms, email, letters: not {sorted(only - {'sms', 'email', 'letters'})}")

    from duecourse.adapters.channels.sms_gateway import InfobipSms
    from duecourse.adapters.channels.smtp import SmtpMailer
    from duecourse.bootstrap import DISPATCH_HELPER_MODULES
    from duecourse.services.dispatch import start_worker_server

    if args.batch is None:
        from duecourse.services.dispatch import Policy

        args.batch = Policy.batch
    if args.workers is None:
        args.workers = os.cpu_count() if args.database_url else 1
    fork_server = None
    if args.workers > 1 and only & {"sms", "email"}:
        # As `duecourse dispatch run` does when it starts: the helpers' fork server imports beside the setup.
        t0 = time.perf_counter()
        start_worker_server(DISPATCH_HELPER_MODULES)
        fork_server = {"wall_s": round(time.perf_counter() - t0, 2)}
    with tempfile.TemporaryDirectory(prefix="duecourse-bench-dispatch-") as tmp:
        home = Path(tmp)
        t0 = time.perf_counter()
        container = prepare(home, args.loans, args.database_url, args.letters, only)["container"]
        setup = time.perf_counter() - t0
        if fork_server is not None:  # its imports (the only process below this one yet), beside the setup
            fork_server["cpu_s"] = round(sum(process_cpu(pid) for pid, _ in descendants()), 2)
        results = []

        if "sms" in only:
            with provider("sms") as (gateway, received):
                sms = InfobipSms(gateway["url"], gateway["api_key"], "DueCourse")
                results.append(
                    phase(container, "sms (Infobip fake)", {"sms": sms}, {}, args.batch, workers=args.workers)
                )
            results[-1]["gateway_messages"] = received["messages"]
            results[-1]["duplicates_at_gateway"] = received["duplicates"]

        if "email" in only:
            with provider("smtp") as (server, received):
                mailer = SmtpMailer(server["url"], "collections@example.com")
                results.append(
                    phase(container, "email (aiosmtpd)", {"email": mailer}, {}, args.batch, workers=args.workers)
                )
            results[-1]["smtp_received"] = received["messages"]

        if "letters" in only:
            letters = {"letter": container.hand_offs()["letter"]}
            # The first letter pays for the renderer's one-time font preparation in a fresh home: timed apart.
            results.append(phase(container, "letters, first (warm-up)", {}, letters, args.batch, limit=1))
            renderer = container.letters.renderer
            renderer.workers = args.letter_workers
            try:
                # Starting the rendering processes (WeasyPrint and the fonts in each) is once per dispatcher too.
                started, cpu_before = time.perf_counter(), cpu_seconds()
                renderer.start()
                start = {
                    "wall_s": round(time.perf_counter() - started, 2),
                    "cpu_s": round(cpu_seconds() - cpu_before, 2),
                }
                results.append(phase(container, "letters (print batch)", {}, letters, args.batch))
                results[-1]["letter_workers"] = {"count": renderer.workers, "started": start}
            finally:
                renderer.close()

        out = {"loans": args.loans, "setup_s": round(setup, 1), "fork_server": fork_server, "phases": results}
        if args.json:
            print(json.dumps(out, indent=2, ensure_ascii=False))
            return
        print(f"{args.loans} loans; setup (book, import, actions) {setup:.1f} s")
        if fork_server is not None:
            print(
                f"fork server of the helper dispatchers: started in {fork_server['wall_s']} s, its imports"
                f" {fork_server['cpu_s']} s of CPU beside the setup"
            )
        for r in results:
            lat = r["batch_latency_s"]
            print(
                f"{r['phase']:<24} {r['moved']:>6} moved in {r['wall_s']:>7.2f} s = {r['per_second']:>8} /s;"
                f" batch p50 {lat['p50']} s, p95 {lat['p95']} s, max {lat['max']} s; peak RSS {r['peak_rss_mib']} MiB"
            )
            print(
                f"{'':<24} {r['workers']} process(es); CPU {r['cpu_s']} s ({r['cpu_ms_each']} ms each);"
                f" workers' peak RSS {r['workers_peak_rss_mib']} MiB; load average (1 min) {r['load_1min']}"
            )
            print(f"{'':<24} outcomes {r['outcomes']} cancelled {r['cancelled_reasons']}")
            if "gateway_messages" in r or "smtp_received" in r:
                got = r.get("gateway_messages", r.get("smtp_received"))
                twice = r.get("duplicates_at_gateway", "-")
                print(f"{'':<24} at the provider (its own process): {got} received, {twice} sent twice")
            if "letter_workers" in r:
                w = r["letter_workers"]
                print(
                    f"{'':<24} {w['count']} rendering workers, started before the batch in {w['started']['wall_s']} s"
                    f" (CPU {w['started']['cpu_s']} s)"
                )


if __name__ == "__main__":
    main()
