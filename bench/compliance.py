"""Benchmark of the compliance engine: batch throughput with contact history, and live-check latency.

Run: .venv/bin/python bench/compliance.py [--proposals N] [--pool P] [--live K] [--seed S] [--json]

A pool of P distinct proposals is drawn from the base proposals of the rule tests
(tests/rules/base/{CN,US,UK}.yaml; 70% CN, 20% US, 10% UK) with the facts rules read varied at random:
the hour (07:00–23:00 local), channel, counterpart (mostly the debtor), purpose, days past due, flags,
holds, opt-outs, and a contact history of 0–20 events (10 on average) over the ten days before. The
batch frame repeats the pool to N proposals (each with its own id, its own copy of the history, and its
own message: a verification code and an amount owed of its own in the text), so the vectorised path sees
N proposals with N distinct texts and about 10·N history rows. Reported: batch wall time and
proposals per second (with and without rescheduling of time-only blocks) with the CPU seconds they took
and the 1-minute load average around them, live `decide` latency (median, p95, p99 over K proposals), the
decision mix, and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import yaml

from duecourse.compliance.calendar import HolidayCalendar
from duecourse.compliance.checks.base import CheckContext
from duecourse.compliance.engine import decide, decide_batch
from duecourse.compliance.facts import Proposal, to_frames
from duecourse.compliance.rulebook import load_rulebook

ROOT = Path(__file__).resolve().parents[1]
ZONE = {"CN": "Asia/Shanghai", "US": "America/New_York", "UK": "Europe/London"}
CHANNELS = ["call"] * 6 + ["sms"] * 2 + ["email", "app_push", "letter"]
BASE_CODE, BASE_AMOUNT = "K7Q-4MZ", "1,234.56"  # as the base proposals' messages write them
OUTCOMES = ["no_answer"] * 4 + ["conversation", "connected", "voicemail", "busy", "delivered", "invalid_number"]


def _base(country: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "tests" / "rules" / "base" / f"{country}.yaml").read_text("utf-8"))
    return data


def pool(size: int, seed: int) -> list[Proposal]:
    rnd = random.Random(seed)
    bases = {c: _base(c) for c in ZONE}
    out = []
    for i in range(size):
        country = rnd.choices(["CN", "US", "UK"], weights=[7, 2, 1])[0]
        doc = json.loads(json.dumps(bases[country], default=str))
        zone = ZoneInfo(ZONE[country])
        local = datetime(2026, 3, 2) + timedelta(
            days=rnd.randint(0, 20), hours=rnd.randint(7, 22), minutes=rnd.choice([0, 15, 30, 45])
        )
        moment = local.replace(tzinfo=zone)
        doc["id"] = f"pool-{i}"
        doc["moment"] = moment.isoformat()
        doc["channel"] = rnd.choice(CHANNELS)
        doc["counterpart"] = "debtor" if rnd.random() < 0.9 else rnd.choice(["spouse", "family", "emergency_contact"])
        doc["purpose"] = "collect" if doc["counterpart"] == "debtor" else rnd.choice(["locate", "notify"])
        doc["debt"]["days_past_due"] = rnd.randint(1, 180)
        doc["debtor"]["id"] = f"d-{i}"
        if rnd.random() < 0.05:
            doc["debtor"]["flags"] = [rnd.choice(["elderly", "disabled", "deceased", "bankrupt"])]
        if rnd.random() < 0.03:
            doc["debtor"]["opted_out_channels"] = ["call"]
        if rnd.random() < 0.02:
            doc["debtor"]["dispute"] = {"open": True, "written": True}
        if rnd.random() < 0.1:
            doc["debtor"]["time_zones"] = [ZONE[country], rnd.choice(list(ZONE.values()))]
        history = []
        for _ in range(min(20, int(rnd.expovariate(1 / 10)))):
            at = moment - timedelta(minutes=rnd.randint(30, 10 * 24 * 60))
            history.append(
                {
                    "at": at.isoformat(),
                    "channel": rnd.choice(["call", "call", "call", "sms"]),
                    "counterpart": "debtor",
                    "address": doc["address"] if rnd.random() < 0.8 else "+10000000000",
                    "outcome": rnd.choice(OUTCOMES),
                    "initiated_by": "collector" if rnd.random() < 0.9 else "debtor",
                    "debts": [doc["debt"]["id"]],
                    "actor": doc["actor"],
                }
            )
        doc["history"] = history
        out.append(Proposal.model_validate(doc))
    return out


def replicate(frame: pl.DataFrame, history: pl.DataFrame, n: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """N proposals drawn from the pool, each with a new id and its own copy of the history."""
    pick = pl.DataFrame({"pool_row": pl.Series(random.Random(seed).choices(range(frame.height), k=n), dtype=pl.UInt32)})
    ids = frame.select(pool_id="proposal_id").with_row_index("pool_row")
    mapping = pick.with_row_index("i").join(ids, on="pool_row").with_columns(new_id=pl.format("q{}", pl.col("i")))
    proposals = (
        frame.join(mapping.select("pool_id", "new_id"), left_on="proposal_id", right_on="pool_id")
        .with_columns(proposal_id=pl.col("new_id"))
        .drop("new_id")
    )
    events = (
        history.join(mapping.select("pool_id", "new_id"), left_on="proposal_id", right_on="pool_id")
        .with_columns(proposal_id=pl.col("new_id"))
        .drop("new_id")
    )
    return proposals, events


def own_texts(proposals: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Each proposal's message made its own, as real ones are: its own verification code and amount owed (the
    debt's balance, which its message states), so no two texts of the batch are alike."""
    rnd = random.Random(seed)
    balances = [rnd.randint(10_000, 9_999_999) for _ in range(proposals.height)]
    codes = [f"{c[:3]}-{c[3:]}" for c in (f"{rnd.getrandbits(30):06X}"[-6:] for _ in balances)]
    amounts = [f"{b // 100:,}.{b % 100:02d}" for b in balances]
    text = pl.col("message_text").str.replace(BASE_CODE, pl.Series(codes), literal=True)
    return proposals.with_columns(
        debt_balance=pl.Series(balances, dtype=pl.Int64),
        message_text=text.str.replace(BASE_AMOUNT, pl.Series(amounts), literal=True),
    )


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process so far, all threads."""
    t = os.times()
    return t.user + t.system


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proposals", type=int, default=1_000_000)
    ap.add_argument("--pool", type=int, default=5_000)
    ap.add_argument("--live", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    book = load_rulebook(ROOT / "rules")
    ctx = CheckContext(calendar=HolidayCalendar.load(ROOT / "rules" / "calendars"))
    t0 = time.perf_counter()
    drawn = pool(args.pool, args.seed)
    pool_frame, pool_history = to_frames(drawn)
    proposals, history = replicate(pool_frame, pool_history, args.proposals, args.seed)
    proposals = own_texts(proposals, args.seed)
    build_s = time.perf_counter() - t0

    decide_batch(book, proposals.head(1000), history.head(0), ctx)  # warm-up: imports, regex compilation
    load_before = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), _cpu_s()
    no_reschedule = decide_batch(book, proposals, history, ctx, reschedule=False)
    batch_s, batch_cpu_s = time.perf_counter() - t0, _cpu_s() - c0
    t0, c0 = time.perf_counter(), _cpu_s()
    decided = decide_batch(book, proposals, history, ctx)
    batch_full_s, batch_full_cpu_s = time.perf_counter() - t0, _cpu_s() - c0
    load_after = os.getloadavg()[0]
    assert decided.height == no_reschedule.height == args.proposals

    live = random.Random(args.seed + 1).choices(drawn, k=args.live)
    for p in live[:50]:
        decide(book, p, ctx, reschedule=False)  # warm-up
    latencies = []
    for p in live:
        t = time.perf_counter()
        decide(book, p, ctx, reschedule=False)
        latencies.append((time.perf_counter() - t) * 1000)
    latencies.sort()

    mix = dict(decided.group_by("decision").len().sort("decision").iter_rows())
    rescheduled = decided.filter(pl.col("next_allowed_at").is_not_null()).height
    result = {
        "rules": len(book.rules),
        "rulebook_version": book.version,
        "proposals": args.proposals,
        "history_events": history.height,
        "build_s": round(build_s, 2),
        "batch_s": round(batch_s, 3),
        "batch_per_s": round(args.proposals / batch_s),
        "batch_cpu_s": round(batch_cpu_s, 2),
        "batch_with_reschedule_s": round(batch_full_s, 3),
        "batch_with_reschedule_per_s": round(args.proposals / batch_full_s),
        "batch_with_reschedule_cpu_s": round(batch_full_cpu_s, 2),
        "load_average_1min": [round(load_before, 2), round(load_after, 2)],
        "decisions": mix,
        "rescheduled": rescheduled,
        "live_checks": args.live,
        "live_median_ms": round(statistics.median(latencies), 3),
        "live_p95_ms": round(latencies[int(0.95 * len(latencies)) - 1], 3),
        "live_p99_ms": round(latencies[int(0.99 * len(latencies)) - 1], 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    print(f"rulebook {book.version}: {result['rules']} rules")
    print(f"built {args.proposals:,} proposals with {history.height:,} history events in {build_s:.1f} s")
    print(
        f"batch (decide_batch, no reschedule): {batch_s:.2f} s = {result['batch_per_s']:,} proposals/s "
        f"(CPU {batch_cpu_s:.2f} s)"
    )
    per_s = result["batch_with_reschedule_per_s"]
    print(
        f"batch with rescheduling:             {batch_full_s:.2f} s = {per_s:,} proposals/s "
        f"(CPU {batch_full_cpu_s:.2f} s)"
    )
    print(f"1-minute load average {load_before:.2f} -> {load_after:.2f} on {os.cpu_count()} cores")
    print(f"decisions {mix}; rescheduled {rescheduled:,}")
    print(
        f"live decide() over {args.live:,} proposals: median {result['live_median_ms']} ms, "
        f"p95 {result['live_p95_ms']} ms, p99 {result['live_p99_ms']} ms"
    )
    print(f"peak RSS {result['peak_rss_mib']:,} MiB")


if __name__ == "__main__":
    main()
