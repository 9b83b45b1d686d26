"""Benchmark of the ladder engine: `propose()` over a synthetic book of N loans (default 1,000,000).

Run: .venv/bin/python bench/strategy.py [N] [--all-candidates]
The synthetic book is shaped like a consumer lender's: most loans current, a tail of delinquency,
some flagged borrowers, and a step history for a third of the delinquent loans. `--all-candidates`
makes every loan delinquent, the worst case for arm hashing.
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import date
from pathlib import Path

import polars as pl

from duecourse.strategy.ladder import FACTS, STEP_HISTORY, propose
from duecourse.strategy.loader import load_strategy

AS_OF = date(2026, 3, 31)


def synthetic_facts(n: int, all_candidates: bool, seed: int = 7) -> pl.DataFrame:
    rnd = random.Random(seed)
    if all_candidates:
        dpd = [rnd.randint(1, 200) for _ in range(n)]
    else:  # ~85 % current, the rest spread over the buckets, thinning out
        dpd = [0 if rnd.random() < 0.85 else min(int(rnd.expovariate(1 / 40)) + 1, 400) for _ in range(n)]
    loan = pl.int_range(0, n, eager=True)
    frame = pl.DataFrame(
        {
            "loan_key": loan,
            "days_past_due": pl.Series(dpd, dtype=pl.Int32),
            "days_to_next_due": pl.Series([rnd.randint(0, 30) for _ in range(n)], dtype=pl.Int32),
            "overdue_total": pl.Series([rnd.randint(1, 2_000_000) for _ in range(n)], dtype=pl.Int64),
            "outstanding_total": pl.Series([rnd.randint(50_000, 5_000_000) for _ in range(n)], dtype=pl.Int64),
            "age": pl.Series([rnd.randint(20, 80) for _ in range(n)], dtype=pl.Int32),
        }
    )
    flag_pool = [[], [], [], [], [], [], [], [], ["elderly"], ["disabled"], ["visit_refused_by_supervisor"]]
    return frame.with_columns(
        loan_id=pl.format("L{}", pl.col("loan_key")),
        borrower_key=pl.col("loan_key") // 2,
        borrower_id=pl.format("B{}", pl.col("loan_key") // 2),
        product=pl.lit("cash_loan"),
        currency=pl.lit("CNY"),
        bucket=pl.when(pl.col("days_past_due") == 0).then(pl.lit("current")).otherwise(pl.lit("M1")),
        overdue_total=pl.when(pl.col("days_past_due") == 0).then(0).otherwise(pl.col("overdue_total")),
        next_due_amount=pl.lit(150_000, dtype=pl.Int64),
        flags=pl.Series([flag_pool[rnd.randrange(len(flag_pool))] for _ in range(n)], dtype=pl.List(pl.String)),
        language=pl.lit("zh"),
        has_outreach_hold=pl.col("loan_key") % 50 == 0,
        has_active_promise=pl.lit(False),
        has_active_plan=pl.lit(False),
    ).select(FACTS.names())


def synthetic_history(facts: pl.DataFrame) -> pl.DataFrame:
    delinquent = facts.filter(pl.col("days_past_due") > 0, pl.col("loan_key") % 3 == 0)
    steps = ["call_1", "second_call", "sms_overdue_1", "app_push_1", "written_notice"]
    return pl.concat(
        [
            delinquent.select(
                "loan_key",
                step=pl.lit(step),
                last_proposed_on=pl.lit(AS_OF) - pl.duration(days=(pl.col("loan_key") + k) % 6 + 1),
            )
            for k, step in enumerate(steps)
        ]
    ).cast(dict(STEP_HISTORY))


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 1_000_000
    all_candidates = "--all-candidates" in sys.argv
    strategy = load_strategy(Path(__file__).resolve().parent.parent / "strategies" / "default.yaml")
    facts = synthetic_facts(n, all_candidates)
    history = synthetic_history(facts)
    propose(facts.head(1000), history, strategy, AS_OF)  # warm-up
    timings, cpu = [], []
    for _ in range(3):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = propose(facts, history, strategy, AS_OF)
        timings.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    print(f"facts={n:,} history={history.height:,} proposals={out.height:,} all_candidates={all_candidates}")
    # Wall time depends on what else runs on the machine; CPU time (all threads) does much less: on an idle
    # 2-core machine the wall time lies between cpu/2 and cpu.
    print(f"propose: wall best {min(timings):.3f} s (runs {', '.join(f'{t:.3f}' for t in timings)}); "
          f"cpu best {min(cpu):.3f} s; load average {os.getloadavg()[0]:.1f}")
    print(out.group_by("step").len().sort("len", descending=True))
    print(out.group_by("arm").len().sort("arm"))
    print(out.select("reason").head(3).to_series().to_list())


if __name__ == "__main__":
    main()
