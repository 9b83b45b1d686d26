"""Time the set-based ledger alone on a synthetic book: `python bench/ledger.py --loans 1000000`.

The book (built vectorised in Polars, seeded): N loans x 12 monthly instalments of 1,000.00 principal plus
interest, started on any day 1 to 13 months before the day, two products (90 % "CASH": default conventions; 10 % "CARD":
component-first waterfall, 3 grace days, 30/360). 85 % of loans pay every instalment, some a few days early,
some a few days late; 15 % stop paying after a random number of instalments and some of those pay part of
one more later. 0.5 % of payments are reversed a few days later, 1 % of borrowers have a clock-pausing hold.
Payments arrive in value-date order (as a store returns them unsorted by loan) unless --store-order loan.

Prints the build time, then ledger_state as of D (first call in the process), as of D-1 (what the daily cycle
computes next) and transitions, each with wall and CPU seconds, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date, timedelta

import polars as pl

from duecourse.domain import frames as f
from duecourse.domain.conventions import AllocationMode, DayCount, ProductConventions

AS_OF = date(2026, 11, 30)
CONVENTIONS = {
    "CASH": ProductConventions(),
    "CARD": ProductConventions(
        allocation_mode=AllocationMode.COMPONENT_FIRST, grace_days=3, day_count=DayCount.THIRTY_360
    ),
}


def _draw(seed: int, modulo: int) -> pl.Expr:
    """A deterministic pseudo-random integer in [0, modulo) per row, from the row's loan_key."""
    return (pl.col("loan_key").hash(seed) % modulo).cast(pl.Int64)


def build(n: int, seed: int = 7, store_order: str = "arrival") -> tuple[pl.DataFrame, ...]:
    loans = (
        pl.DataFrame({"loan_key": pl.int_range(1, n + 1, eager=True, dtype=pl.Int64)})
        .with_columns(
            age=(_draw(seed, 12) + 1).cast(pl.Int32),
            delinquent=_draw(seed + 1, 100) < 15,
            stop_after=_draw(seed + 2, 12).cast(pl.Int32),
            lateness=_draw(seed + 3, 100),  # < 60 on the day, < 80 early, else a few days late
            product=pl.when(_draw(seed + 4, 10) == 0).then(pl.lit("CARD")).otherwise(pl.lit("CASH")),
        )
        .with_columns(
            loan_id=pl.format("L{}", pl.col("loan_key")),
            borrower_key=pl.col("loan_key"),
            currency=pl.lit("CNY"),
            principal=pl.lit(1_200_000, pl.Int64),
            annual_rate=pl.lit(18_000_000, pl.Int64),
            penalty_rate=pl.lit(18_250_000, pl.Int64),
            term=pl.lit(12, pl.Int32),
            # spread over the month, so due days differ between loans
            start_date=pl.lit(AS_OF).dt.offset_by(pl.format("-{}mo", pl.col("age")))
            - pl.duration(days=_draw(seed + 10, 28)),
            method=pl.lit("equal_principal"),
        )
    )
    inst = (
        loans.select("loan_key", "start_date", seq=pl.int_ranges(1, 13, dtype=pl.Int32))
        .explode("seq")
        .with_columns(
            due_date=pl.col("start_date").dt.offset_by(pl.format("{}mo", pl.col("seq"))),
            principal=pl.lit(100_000, pl.Int64),
            interest=((13 - pl.col("seq")) * 1_500).cast(pl.Int64),
            fee=pl.lit(0, pl.Int64),
        )
    )
    shift = (
        pl.when(pl.col("lateness") < 60)
        .then(0)
        .when(pl.col("lateness") < 80)
        .then(-(pl.col("lateness") % 5) - 1)
        .otherwise(pl.col("lateness") % 7 + 1)
    )
    paid = (
        inst.join(loans.select("loan_key", "delinquent", "stop_after", "lateness"), on="loan_key")
        .filter(~pl.col("delinquent") | (pl.col("seq") <= pl.col("stop_after")))
        .select(
            "loan_key",
            "seq",
            value_date=pl.col("due_date") + pl.duration(days=shift),
            amount=pl.col("principal") + pl.col("interest"),
        )
    )
    partial = (
        inst.join(loans.filter("delinquent").select("loan_key", "stop_after"), on="loan_key")
        .filter((pl.col("seq") == pl.col("stop_after") + 1) & (_draw(seed + 5, 2) == 0))
        .select("loan_key", "seq", value_date=pl.col("due_date") + timedelta(days=20), amount=pl.lit(50_000, pl.Int64))
    )
    payments = (
        pl.concat([paid, partial])
        .filter(pl.col("value_date") <= AS_OF)
        .sort("value_date", "loan_key", "seq")  # the order payments arrive in
        .with_row_index("payment_key", offset=1)
        .select(
            pl.col("payment_key").cast(pl.Int64),
            "loan_key",
            "value_date",
            "amount",
            reverses_payment_key=pl.lit(None, pl.Int64),
        )
    )
    bounced = (
        payments.filter(_draw(seed + 6, 200) == 0)
        .select(
            "loan_key",
            "amount",
            value_date=pl.col("value_date") + timedelta(days=3),
            reverses_payment_key=pl.col("payment_key"),
        )
        .filter(pl.col("value_date") <= AS_OF)
    )
    bounced = bounced.with_columns(
        payment_key=pl.int_range(payments.height + 1, payments.height + 1 + bounced.height, dtype=pl.Int64)
    )
    payments = pl.concat([payments, bounced.select(payments.columns)])
    if store_order == "loan":
        payments = payments.sort("loan_key", "value_date", "payment_key")
    holds = (
        loans.filter(_draw(seed + 7, 100) == 0)
        .select(
            "borrower_key",
            loan_key=pl.lit(None, pl.Int64),
            kind=pl.lit("dispute"),
            start_date=pl.lit(AS_OF) - pl.duration(days=_draw(seed + 8, 60) + 1),
            end_date=pl.when(_draw(seed + 9, 2) == 0)
            .then(pl.lit(None, pl.Date))
            .otherwise(pl.lit(AS_OF) - timedelta(days=1)),
            pauses_clock=pl.lit(True),
            pauses_outreach=pl.lit(True),
        )
        .with_row_index("hold_key", offset=1)
        .with_columns(pl.col("hold_key").cast(pl.Int64))
    )
    return (
        f.conform(loans, f.LOANS),
        f.conform(inst, f.INSTALMENTS),
        f.conform(payments, f.PAYMENTS),
        f.conform(holds, f.HOLDS),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loans", type=int, default=1_000_000)
    ap.add_argument("--store-order", choices=("arrival", "loan"), default="arrival")
    args = ap.parse_args()
    from duecourse.adapters.allocator import keep_freed_memory
    from duecourse.ledger.engine import ledger_state, transitions

    keep_freed_memory()  # as the `duecourse` command does at start

    def timed(label: str, fn):  # type: ignore[no-untyped-def]
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        print(f"{label:36s} wall {time.perf_counter() - w:6.2f} s   cpu {time.process_time() - c:6.2f} s")
        return out

    loans, inst, pays, holds = timed("build the book", lambda: build(args.loans, store_order=args.store_order))
    print(f"loans {loans.height:,}  instalments {inst.height:,}  payments {pays.height:,}  holds {holds.height:,}")
    today = timed(f"ledger_state as of {AS_OF}", lambda: ledger_state(loans, inst, pays, holds, CONVENTIONS, AS_OF))
    before = AS_OF - timedelta(days=1)
    yesterday = timed(
        f"ledger_state as of {before}", lambda: ledger_state(loans, inst, pays, holds, CONVENTIONS, before)
    )
    moves = timed("transitions", lambda: transitions(today, yesterday, CONVENTIONS))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"peak RSS {rss:.2f} GiB")
    print(today.group_by("bucket").agg(loans=pl.len(), overdue=pl.col("overdue_total").sum()).sort("bucket"))
    print(moves.group_by("transition").len().sort("transition"))


if __name__ == "__main__":
    main()
