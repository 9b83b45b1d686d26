"""Benchmark of the public /verify page under a stated request rate, over real HTTP on loopback.

Run: .venv/bin/python bench/verify.py [--rate 200] [--duration 20] [--bad-share 0.1] [--connections 32]
                                      [--borrowers 200] [--codes 2000] [--database-url URL] [--workers 1] [--json]

Setup: a fresh DueCourse home under a temporary folder (SQLite, or the EMPTY database at --database-url,
e.g. a PostgreSQL database made for the run and dropped after), a demo book of `--borrowers` borrowers
imported, and `--codes` codes issued for them (messages, notices, calls, visits). The server is the real
command, `duecourse web serve [--workers N]`, in its own process(es). The load is open-loop: request i is
due at start + i / rate whatever happened before, so a slow server is not given time to recover (no
coordinated omission); latency runs from the moment a request was due to the last byte of its answer,
queueing on the client's connections included. Requests alternate between the HTML page
(GET /verify?code=…, the QR path) and the JSON API (GET /api/verify/{code}); `--bad-share` of them carry
a forged, altered or never-issued code. Each request comes from one of 5,000 simulated addresses
(X-Forwarded-For, which uvicorn trusts from a proxy on 127.0.0.1), so the per-client throttle does not
trip; the global failure ceiling (services/verification.py: LIMITS) applies as in production. A warm-up
of 200 requests at 100/s runs first and is not counted. Every answer is checked: a genuine code must say
genuine, a bad one not genuine. Reported: latency p50/p95/p99/max, achieved throughput, status counts,
wrong answers, the server's CPU time per request (its processes' user + system time, independent of
what else the machine runs) and peak RSS (VmHWM, summed over its processes).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Probe:
    path: str
    genuine: bool
    as_json: bool
    client: str


def prepare(home: Path, borrowers: int, codes: int, database_url: str | None) -> tuple[dict[str, str], list[str]]:
    """A fresh home with an imported demo book and `codes` issued codes; returns the server's environment."""
    from sqlalchemy import select

    from duecourse.adapters.db import tables as t
    from duecourse.bootstrap import Container
    from duecourse.demo.book import generate_book, write_book
    from duecourse.services.importer import import_book
    from duecourse.services.verification import CodeRequest, issue_many
    from duecourse.settings import Settings

    env = {
        "DUECOURSE_HOME": str(home),
        "DUECOURSE_MESSAGES": str(ROOT / "templates" / "messages.yaml"),
        "DUECOURSE_RULES": str(ROOT / "rules"),
        "DUECOURSE_STRATEGY": str(ROOT / "strategies" / "default.yaml"),
    }
    if database_url:
        env["DUECOURSE_DATABASE_URL"] = database_url
    container = Container(Settings.from_env(env))
    now = datetime.now(UTC)
    book = write_book(generate_book(borrowers, now.date() - timedelta(days=1), seed=3, days_ahead=1), home / "book")
    import_book(container.engine, book, home / "rejects", container.cipher, "bench", now)
    with container.engine.begin() as conn:
        loans = conn.execute(select(t.loan.c.loan_key, t.loan.c.borrower_key)).all()
        purposes = [("message", "sms"), ("notice", "letter"), ("call", "call"), ("visit", "visit")]
        requests = [
            CodeRequest(*purposes[i % 4], loans[i % len(loans)].borrower_key, "示例消费金融有限公司",
                        loan_key=loans[i % len(loans)].loan_key)
            for i in range(codes)
        ]  # fmt: skip
        issued = issue_many(conn, container.signer, requests, now)
    container.engine.dispose()
    return env, issued


def probes(issued: list[str], n: int, bad_share: float, seed: int) -> list[Probe]:
    from duecourse.domain.verification import ALPHABET, CodeSigner

    rnd = random.Random(seed)
    stranger = CodeSigner(os.urandom(32))
    out = []
    for i in range(n):
        bad = rnd.random() < bad_share
        if not bad:
            code = rnd.choice(issued)
        else:
            kind = rnd.randrange(3)
            code = rnd.choice(issued)
            if kind == 0:  # one character changed
                j = rnd.randrange(len(code))
                code = code[:j] + ALPHABET[(ALPHABET.index(code[j]) + 1) % 32] + code[j + 1 :]
            else:  # forged with another key, or a random well-formed string
                code = stranger.new_code() if kind == 1 else "".join(rnd.choice(ALPHABET) for _ in range(16))
        as_json = i % 2 == 1
        path = f"/api/verify/{code}" if as_json else f"/verify?code={code}"
        out.append(Probe(path, not bad, as_json, f"10.{rnd.randrange(20)}.{rnd.randrange(250)}.{rnd.randrange(1, 20)}"))
    return out


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, p: Probe) -> tuple[int, bytes]:
    accept = "application/json" if p.as_json else "text/html"
    writer.write(
        f"GET {p.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\nX-Forwarded-For: {p.client}\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    length = next(int(v) for k, _, v in (ln.partition(": ") for ln in lines[1:]) if k.lower() == "content-length")
    return status, await reader.readexactly(length)


async def drive(port: int, plan: list[Probe], rate: float, connections: int) -> list[dict[str, Any]]:
    """Open-loop load: each probe is due at start + i / rate; a pool of keep-alive connections serves them."""
    queue: asyncio.Queue[tuple[float, Probe] | None] = asyncio.Queue()
    results: list[dict[str, Any]] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (item := await queue.get()) is not None:
            due, p = item
            try:
                status, body = await asyncio.wait_for(_request(reader, writer, p), timeout=30)
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                results.append({"due": due, "latency": time.perf_counter() - due, "status": 0, "error": repr(exc)})
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            results.append({"due": due, "latency": time.perf_counter() - due, "status": status,
                            "wrong": status == 200 and _says_genuine(body, p.as_json) != p.genuine})  # fmt: skip
        writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = time.perf_counter() + 0.2
    for i, p in enumerate(plan):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, p))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return results


def _says_genuine(body: bytes, as_json: bool) -> bool:
    if as_json:
        return bool(json.loads(body)["genuine"])
    return b"Genuine: this contact is from us" in body


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _peak_rss_mib(pid: int) -> float:
    """The sum of the peak resident sizes of the server's processes (VmHWM)."""
    kib = 0
    for p in _tree(pid):
        kib += next(
            int(ln.split()[1]) for ln in Path(f"/proc/{p}/status").read_text().splitlines() if ln.startswith("VmHWM:")
        )
    return kib / 1024


def _tree(pid: int) -> list[int]:
    """The server and its worker processes."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(p for child in children for p in _tree(int(child)))]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server's processes so far (/proc/<pid>/stat, fields 14 and 15)."""
    total = 0
    for p in _tree(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _wait_until_serving(port: int, server: subprocess.Popen[bytes]) -> None:
    """Until the app answers (with several workers the socket accepts before any worker is ready)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/verify")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
        finally:
            conn.close()
    raise SystemExit("the server did not answer within 120 s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second offered")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of load (at most 120)")
    ap.add_argument("--bad-share", type=float, default=0.1)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--borrowers", type=int, default=200)
    ap.add_argument("--codes", type=int, default=2000)
    ap.add_argument("--database-url", default=None, help="default: SQLite in a temporary folder")
    ap.add_argument("--workers", type=int, default=1, help="server processes (more than one needs PostgreSQL)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    duration = min(args.duration, 120.0)
    n = int(args.rate * duration)
    with tempfile.TemporaryDirectory(prefix="duecourse-bench-verify-") as tmp:
        env, issued = prepare(Path(tmp), args.borrowers, args.codes, args.database_url)
        plan = probes(issued, n, args.bad_share, args.seed)
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "duecourse", "web", "serve", "--port", str(port), "--workers", str(args.workers)],
            cwd=ROOT,
            env={**os.environ, **env},
        )
        try:
            _wait_until_serving(port, server)
            # Warm-up, not measured: the first requests of a fresh process compile the template and import
            # what the first answers need (about a second); the numbers below are the steady state.
            asyncio.run(drive(port, probes(issued, 200, args.bad_share, args.seed + 1), 100.0, args.connections))
            load_before = os.getloadavg()[0]
            cpu_before = _cpu_seconds(server.pid)
            began = time.perf_counter()
            results = asyncio.run(drive(port, plan, args.rate, args.connections))
            elapsed = time.perf_counter() - began
            cpu = _cpu_seconds(server.pid) - cpu_before
            rss = _peak_rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    latencies = [r["latency"] * 1000 for r in results if r["status"]]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    report = {
        "offered_rate": args.rate,
        "duration_s": duration,
        "requests": n,
        "bad_share": args.bad_share,
        "connections": args.connections,
        "workers": args.workers,
        "database": "sqlite" if not args.database_url else args.database_url.split(":")[0],
        "throughput_per_s": round(len(latencies) / elapsed, 1),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50), 1),
            "p95": round(percentile(latencies, 0.95), 1),
            "p99": round(percentile(latencies, 0.99), 1),
            "max": round(max(latencies), 1),
            "mean": round(statistics.fmean(latencies), 1),
        },
        "statuses": statuses,
        "wrong_answers": sum(1 for r in results if r.get("wrong")),
        "server_peak_rss_mib": round(rss, 1),
        "server_cpu_ms_per_request": round(cpu * 1000 / max(len(latencies), 1), 2),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "cores": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    lat = report["latency_ms"]
    print(f"/verify at {args.rate:g} req/s offered for {duration:g} s ({n:,} requests, {args.bad_share:.0%} bad codes, "
          f"{args.connections} connections, {report['database']}, {args.workers} worker(s))")  # fmt: skip
    print(f"  throughput {report['throughput_per_s']:,} req/s; latency p50 {lat['p50']} ms, p95 {lat['p95']} ms, "
          f"p99 {lat['p99']} ms, max {lat['max']} ms")  # fmt: skip
    print(f"  statuses {statuses}; wrong answers {report['wrong_answers']}")
    print(f"  server CPU {report['server_cpu_ms_per_request']} ms a request (user + system)")
    print(f"  server peak RSS {report['server_peak_rss_mib']} MiB; load average {report['load_average_before']} -> "
          f"{report['load_average_after']} on {report['cores']} cores")  # fmt: skip


if __name__ == "__main__":
    main()
