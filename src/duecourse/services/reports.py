"""Read-side use cases: one loan's state as of a day, and the roll-rate matrix from the daily snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import Engine, select

from duecourse.adapters.db import tables as t
from duecourse.adapters.db.bulk import read_frame
from duecourse.domain.errors import NotFoundError
from duecourse.domain.money import RATE_SCALE, from_minor
from duecourse.ledger.engine import ledger_state
from duecourse.services.book_frames import load_book


def loan_state(engine: Engine, loan_id: str, as_of: date) -> dict[str, Any]:
    """Everything a person asks about one loan on one day: terms, schedule, payments, holds and the ledger state."""
    with engine.connect() as conn:
        key = conn.execute(select(t.loan.c.loan_key).where(t.loan.c.loan_id == loan_id)).scalar()
    if key is None:
        raise NotFoundError(f"no loan with id {loan_id!r}")
    book = load_book(engine, as_of, [int(key)])
    loan = book.loans.row(0, named=True)
    cur = loan["currency"]
    state = ledger_state(book.loans, book.instalments, book.payments, book.holds, book.conventions, as_of)

    def money(v: int | None) -> str | None:
        return None if v is None else str(from_minor(v, cur))

    out: dict[str, Any] = {
        "loan_id": loan_id,
        "as_of": as_of.isoformat(),
        "product": loan["product"],
        "currency": cur,
        "principal": money(loan["principal"]),
        "annual_rate": _rate(loan["annual_rate"]),
        "penalty_rate": _rate(loan["penalty_rate"]),
        "term": loan["term"],
        "start_date": loan["start_date"].isoformat(),
        "method": loan["method"],
        "conventions": book.conventions[loan["product"]].to_dict(),
    }
    if state.height:
        s = state.row(0, named=True)
        for k, v in s.items():
            if k in ("loan_key", "as_of"):
                continue
            if isinstance(v, date):
                out[k] = v.isoformat()
            elif k in ("days_past_due", "paused_days") or isinstance(v, str) or v is None:
                out[k] = v
            else:
                out[k] = money(v)
    else:
        out["status"] = "not started"
    out["schedule"] = [
        {
            "seq": r["seq"],
            "due_date": r["due_date"].isoformat(),
            "principal": money(r["principal"]),
            "interest": money(r["interest"]),
            "fee": money(r["fee"]),
        }
        for r in book.instalments.sort("seq").iter_rows(named=True)
    ]
    reversed_keys = set(book.payments.get_column("reverses_payment_key").drop_nulls().to_list())
    out["payments"] = [
        {
            "value_date": r["value_date"].isoformat(),
            "amount": money(r["amount"]),
            "kind": "reversal"
            if r["reverses_payment_key"] is not None
            else ("payment (reversed)" if r["payment_key"] in reversed_keys else "payment"),
        }
        for r in book.payments.sort("value_date", "payment_key").iter_rows(named=True)
    ]
    out["holds"] = [
        {
            "kind": r["kind"],
            "start_date": r["start_date"].isoformat(),
            "end_date": None if r["end_date"] is None else r["end_date"].isoformat(),
            "pauses_clock": r["pauses_clock"],
            "pauses_outreach": r["pauses_outreach"],
        }
        for r in book.holds.iter_rows(named=True)
    ]
    return out


def _rate(scaled: int) -> str:
    return str((Decimal(scaled) / RATE_SCALE).normalize())


@dataclass(frozen=True)
class RollRates:
    start: date
    end: date
    buckets: list[str]
    counts: list[list[int]]  # counts[i][j]: loans in bucket i on `start` and bucket j on `end`

    def to_json(self) -> dict[str, Any]:
        rates = [[round(c / sum(r), 4) if sum(r) else 0.0 for c in r] for r in self.counts]
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "buckets": self.buckets,
            "counts": self.counts,
            "rates": rates,
        }


def roll_rates(engine: Engine, start: date, end: date) -> RollRates:
    """Bucket on `start` against bucket on `end`, for loans in both snapshots."""
    schema = pl.Schema({"loan_key": pl.Int64, "bucket": pl.String, "days_past_due": pl.Int32})
    a = read_frame(
        engine,
        f"SELECT loan_key, bucket, days_past_due FROM delinquency_snapshot WHERE as_of = '{start.isoformat()}'",
        schema,
    )
    b = read_frame(
        engine,
        f"SELECT loan_key, bucket, days_past_due FROM delinquency_snapshot WHERE as_of = '{end.isoformat()}'",
        schema,
    )
    for day, frame in ((start, a), (end, b)):
        if frame.height == 0:
            raise NotFoundError(f"no delinquency snapshot for {day.isoformat()}: run the cycle for that day first")
    # Order buckets by the days past due they hold, so the matrix reads current, M1, M2 ...
    order = pl.concat([a, b]).group_by("bucket").agg(pl.col("days_past_due").min()).sort("days_past_due", "bucket")
    buckets = order.get_column("bucket").to_list()
    pairs = a.join(b, on="loan_key", suffix="_to").group_by("bucket", "bucket_to").len()
    index = {label: i for i, label in enumerate(buckets)}
    counts = [[0] * len(buckets) for _ in buckets]
    for f, to, n in pairs.iter_rows():
        counts[index[f]][index[to]] = int(n)
    return RollRates(start, end, buckets, counts)
