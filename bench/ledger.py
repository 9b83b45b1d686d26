"""Time the set-based ledger alone on a synthetic book: `python bench/ledger.py --loans 1000000`.

Book: N loans x 12 monthly instalments, every loan 1–12 instalments old; 85 % of loans paid every due
instalment on its due date, 15 % stopped paying after a random number of instalments, some of those
paid part of an instalment once more. Prints build time, ledger_state time (as_of and the day before)
and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date

import polars as pl

from duecourse.domain import frames as f
from duecourse.domain.conventions import ProductConventions

AS_OF = date(2026, 11, 30)


def build(n: int, seed: int = 7) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    rng = pl.int_range(0, n, eager=True).alias("loan_key")
    loans = pl.DataFrame(rng).with_columns(
        loan_id=pl.format("L{}", pl.col("loan_key")),
        borrower_key=pl.col("loan_key"),
        product=pl.lit("CASH"),
        currency=pl.lit("CNY"),
        principal=pl.lit(1_200_000, pl.Int64),
        annual_rate=pl.lit(18_250_000, pl.Int64),
        penalty_rate=pl.lit(18_250_000, pl.Int64),
        term=pl.lit(12, pl.Int32),
        age_months=(pl.col("loan_key").hash(seed) % 12 + 1).cast(pl.Int32),
        delinquent=(pl.col("loan_key").hash(seed + 1) % 100 < 15),
        stop_after=(pl.col("loan_key").hash(seed + 2) % 12).cast(pl.Int32),
    ).with_columns(start_date=pl.lit(AS_OF).dt.offset_by(pl.format("-{}mo", pl.col("age_months"))), method=pl.lit("equal_instalment"))
    inst = (
        loans.select("loan_key", "start_date", "age_months", "delinquent", "stop_after", seq=pl.int_ranges(1, 13, dtype=pl.Int32))
        .explode("seq")
        .with_columns(
            due_date=pl.col("start_date").dt.offset_by(pl.format("{}mo", pl.col("seq"))),
            principal=pl.lit(100_000, pl.Int64),
            interest=pl.lit(18_250, pl.Int64),
            fee=pl.lit(0, pl.Int64),
        )
    )
    paid = inst.filter(
        (pl.col("due_date") <= AS_OF) & (~pl.col("delinquent") | (pl.col("seq") <= pl.col("stop_after")))
    )
    payments = paid.select(
        "loan_key", value_date="due_date", amount=pl.col("principal") + pl.col("interest"),
        reverses_payment_key=pl.lit(None, pl.Int64),
    )
    partial = inst.filter(pl.col("delinquent") & (pl.col("seq") == pl.col("stop_after") + 1) & (pl.col("due_date") < AS_OF)).select(
        "loan_key", value_date=pl.col("due_date").dt.offset_by("9d"), amount=pl.lit(50_000, pl.Int64),
        reverses_payment_key=pl.lit(None, pl.Int64),
    ).filter(pl.col("value_date") <= AS_OF)
    payments = pl.concat([payments, partial]).with_row_index("payment_key").with_columns(pl.col("payment_key").cast(pl.Int64))
    holds = pl.DataFrame(schema=f.HOLDS)
    return f.conform(loans, f.LOANS), f.conform(inst, f.INSTALMENTS), f.conform(payments, f.PAYMENTS), holds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--loans", type=int, default=1_000_000)
    args = ap.parse_args()
    from duecourse.ledger.engine import ledger_state, transitions

    t0 = time.perf_counter()
    loans, inst, pays, holds = build(args.loans)
    t1 = time.perf_counter()
    conv = {"CASH": ProductConventions()}
    today = ledger_state(loans, inst, pays, holds, conv, AS_OF)
    t2 = time.perf_counter()
    yesterday = ledger_state(loans, inst, pays, holds, conv, date(2026, 11, 29))
    transitions(today, yesterday, conv)
    t3 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"loans {args.loans:,}  instalments {inst.height:,}  payments {pays.height:,}")
    print(f"build {t1 - t0:.2f} s; ledger_state(as_of) {t2 - t1:.2f} s; day before + transitions {t3 - t2:.2f} s")
    print(f"throughput {args.loans / (t2 - t1):,.0f} loans/s per as_of; peak RSS {rss:.2f} GiB")
    print(today.group_by("bucket").len().sort("bucket"))


if __name__ == "__main__":
    main()
