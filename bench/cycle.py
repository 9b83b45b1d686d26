"""Benchmark of the whole daily cycle: import a synthetic book of N loans, then ledger, ladder and write-back.

Run:  .venv/bin/python bench/cycle.py --loans 1000000 [--db sqlite|postgresql] [--seed 7] [--contacts]

The book comes from the demo generator (duecourse.demo.book): one loan per borrower, 12 monthly
instalments each, a payment history following the UCI roll rates, a few holds; no contact points
unless --contacts (the cycle does not read them; encrypting them would time the cipher). It is
generated once in a child process and cached as Parquet under --workdir. The import then runs in this
process and the cycle in a fresh one, as `duecourse import` and `duecourse cycle run` are two commands:
each stage's time and each process's peak memory are its own. PostgreSQL needs --database-url (or
DUECOURSE_BENCH_PG_URL) pointing at an empty database: the bench refuses one that holds loans.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2026, 10, 31)
NOW = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
TARGET_TOTAL_S = 60.0
TARGET_CORE_S = 5.0
TARGET_RSS_GIB = 8.0


def peak_rss_gib() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries a parent's ru_maxrss through
    fork and exec into the child, so the cycle's process would report the import's peak."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux and BSD


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def generate(loans: int, seed: int, contacts: bool, out: Path) -> dict[str, Any]:
    """Generate the book and write it as Parquet (run in the child process)."""
    from duecourse.demo.book import generate_book, write_book

    began = time.perf_counter()
    book = generate_book(loans, AS_OF, seed, days_ahead=0, second_loan_share=0.0, term=12, contact_points=contacts)
    generated = time.perf_counter() - began
    write_book(book, out, "parquet")
    rows = {name: frame.height for name, frame in book.tables().items()}
    info = {
        "loans": loans,
        "seed": seed,
        "contacts": contacts,
        "rows": rows,
        "generate_s": round(generated, 2),
        "write_s": round(time.perf_counter() - began - generated, 2),
        "peak_rss_gib": round(peak_rss_gib(), 2),
    }
    (out / "bench.json").write_text(json.dumps(info), encoding="utf-8")
    return info


def book_dir(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    target = Path(args.workdir) / f"book-{args.loans}-seed{args.seed}{'-contacts' if args.contacts else ''}"
    marker = target / "bench.json"
    if marker.exists() and not args.regenerate:
        return target, {**json.loads(marker.read_text(encoding="utf-8")), "cached": True}
    cmd = [
        sys.executable,
        __file__,
        "--generate-only",
        "--loans",
        str(args.loans),
        "--seed",
        str(args.seed),
        "--workdir",
        str(args.workdir),
    ] + (["--contacts"] if args.contacts else [])
    subprocess.run(cmd, check=True)
    return target, {**json.loads(marker.read_text(encoding="utf-8")), "cached": False}


def database_url(args: argparse.Namespace) -> str:
    if args.db == "sqlite":
        path = Path(args.workdir).resolve() / f"bench-{args.loans}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    url = args.database_url or os.environ.get("DUECOURSE_BENCH_PG_URL")
    if not url:
        sys.exit("--db postgresql needs --database-url or DUECOURSE_BENCH_PG_URL (an empty, throwaway database)")
    return str(url)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import func, select

    from duecourse.adapters.crypto import FieldCipher
    from duecourse.adapters.db import migrate
    from duecourse.adapters.db import tables as t
    from duecourse.adapters.db.engine import make_engine
    from duecourse.services.importer import import_book

    directory, generated = book_dir(args)
    engine = make_engine(database_url(args))
    migrate.upgrade(engine)
    with engine.connect() as conn:
        if conn.execute(select(func.count()).select_from(t.loan)).scalar_one():
            sys.exit("the database already holds loans: the bench needs an empty one")
    rss_start = peak_rss_gib()
    load_before = os.getloadavg()[0]
    cpu_start = cpu_seconds()

    began = time.perf_counter()
    report = import_book(
        engine, directory, Path(args.workdir) / "rejects", FieldCipher.generate(), actor="bench", now=NOW
    )
    import_s = time.perf_counter() - began
    rss_import = peak_rss_gib()

    load_before_cycle = os.getloadavg()[0]
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    child = subprocess.run(
        [sys.executable, __file__, "--cycle-only", "--database-url", url], check=True, capture_output=True, text=True
    )
    cycle = json.loads(child.stdout)
    return {
        "load_average": {
            "before": round(load_before, 2),
            "before_cycle": round(load_before_cycle, 2),
            "after": round(os.getloadavg()[0], 2),
        },
        "cpu_seconds": round(cpu_seconds() - cpu_start + cycle["cpu_seconds"], 1),
        "command": " ".join(["bench/cycle.py", *sys.argv[1:]]),
        "db": engine.dialect.name,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "book": generated,
        "import": {
            "seconds": round(import_s, 2),
            "accepted": report.accepted,
            "rejected": report.rejected,
            "peak_rss_gib": round(rss_import, 2),
        },
        "cycle": cycle,
        "peak_rss_gib": {
            "before_import": round(rss_start, 2),
            "import": round(rss_import, 2),
            "cycle": cycle["peak_rss_gib"],
        },
    }


def run_cycle_only(url: str) -> dict[str, Any]:
    """The daily cycle over the imported book, in this fresh process (the child of `run`)."""
    from duecourse.adapters.db.engine import make_engine
    from duecourse.compliance.port import NoComplianceEngine
    from duecourse.services.cycle import run_cycle
    from duecourse.strategy.loader import load_strategy

    engine = make_engine(url)
    strategy = load_strategy(ROOT / "strategies" / "default.yaml")
    cpu_start = cpu_seconds()
    began = time.perf_counter()
    summary = run_cycle(engine, strategy, NoComplianceEngine(), AS_OF, now=NOW, actor="bench")
    return {
        "seconds": round(time.perf_counter() - began, 2),
        "cpu_seconds": round(cpu_seconds() - cpu_start, 1),
        "stages": summary.timings,
        "loans": summary.loans,
        "proposals": summary.proposals_new,
        "cases_opened": summary.cases_opened,
        "by_bucket": {r["bucket"]: r["accounts"] for r in summary.by_bucket},
        "peak_rss_gib": round(peak_rss_gib(), 2),
    }


def report(result: dict[str, Any]) -> None:
    stages = result["cycle"]["stages"]
    core = stages.get("ledger", 0.0) + stages.get("cases", 0.0) + stages.get("strategy", 0.0)
    cycle = result["cycle"]["seconds"]
    total = result["import"]["seconds"] + cycle
    rss = max(result["peak_rss_gib"]["import"], result["peak_rss_gib"]["cycle"])
    book = result["book"]
    print(f"command: {result['command']}")
    print(
        f"database: {result['db']}; machine: {result['machine']}; 1-min load average "
        f"{result['load_average']['before']} before, {result['load_average']['before_cycle']} before the cycle, "
        f"{result['load_average']['after']} after (other work on the machine slows the timings); "
        f"import + cycle used {result['cpu_seconds']} CPU s, the cycle {result['cycle']['cpu_seconds']}"
    )
    print(
        f"book: {book['rows']} ({'cached, ' if book['cached'] else ''}generated in {book['generate_s']} s, "
        f"written in {book['write_s']} s, generator peak RSS {book['peak_rss_gib']} GiB)"
    )
    print(f"import: {result['import']['accepted']:,} rows accepted, {result['import']['rejected']:,} rejected")
    print(
        f"cycle: {result['cycle']['loans']:,} loans, {result['cycle']['cases_opened']:,} cases opened, "
        f"{result['cycle']['proposals']:,} proposals; by bucket {result['cycle']['by_bucket']}"
    )
    print()
    rows = [("import", result["import"]["seconds"])] + [(f"cycle: {k}", v) for k, v in stages.items()]
    rows += [("cycle, all stages", cycle), ("ledger + ladder", core), ("import + cycle", total)]
    width = max(len(r[0]) for r in rows)
    print(f"{'stage':<{width}}  {'seconds':>8}")
    for name, secs in rows:
        print(f"{name:<{width}}  {secs:>8.2f}")
    peaks = result["peak_rss_gib"]
    print(
        f"{'peak RSS':<{width}}  {rss:>8.2f} GiB "
        f"(import process {peaks['import']:.2f}, cycle process {peaks['cycle']:.2f})"
    )
    print()
    checks = [
        (f"whole cycle (extract to write-back) < {TARGET_TOTAL_S:.0f} s", cycle < TARGET_TOTAL_S),
        (f"ledger + ladder < {TARGET_CORE_S:.0f} s", core < TARGET_CORE_S),
        (f"peak RSS < {TARGET_RSS_GIB:.0f} GiB", rss < TARGET_RSS_GIB),
    ]
    for name, ok in checks:
        print(f"{'PASS' if ok else 'MISS'}  {name}")
    print(f"(the import, {result['import']['seconds']:.0f} s, is timed apart: loading the book is not part of the day)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--database-url", help="PostgreSQL URL of an empty database (or DUECOURSE_BENCH_PG_URL)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--contacts", action="store_true", help="also generate and import contact points")
    parser.add_argument("--workdir", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--regenerate", action="store_true", help="generate the book even if it is cached")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cycle-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    if args.generate_only:
        out = Path(args.workdir) / f"book-{args.loans}-seed{args.seed}{'-contacts' if args.contacts else ''}"
        generate(args.loans, args.seed, args.contacts, out)
        return
    from duecourse.adapters.allocator import keep_freed_memory

    keep_freed_memory()  # as the `duecourse` command does at start
    if args.cycle_only:
        print(json.dumps(run_cycle_only(args.database_url)))
        return
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)


if __name__ == "__main__":
    main()
