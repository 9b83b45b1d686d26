"""Small hand-made books for the ledger tests: one or a few loans, amounts in fen, dates spelled out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import polars as pl

from duecourse.domain import frames as f
from duecourse.domain.conventions import ProductConventions
from duecourse.domain.money import rate_to_scaled
from duecourse.ledger.engine import ledger_state

# The hand-checked loan of docs/ledger.md: 3,000.00 over three instalments of 1,000.00 principal with interest
# 30.00, 20.00 and 10.00, due 15 Feb, 15 Mar and 15 Apr 2026; penalty 18.25 % a year on actual/365, so
# 1,000.00 of unpaid principal accrues 1,000.00 x 0.1825 / 365 = exactly 0.50 a day.
START = date(2026, 1, 15)
DUES = (date(2026, 2, 15), date(2026, 3, 15), date(2026, 4, 15))
SCHEDULE = ((100_000, 3_000, 0), (100_000, 2_000, 0), (100_000, 1_000, 0))  # principal, interest, fee


def loans(*specs: dict[str, Any]) -> pl.DataFrame:
    """LOANS rows; each spec may override loan_key, borrower_key, product, penalty, start_date."""
    rows = []
    for n, spec in enumerate(specs or ({},), start=1):
        s = {"loan_key": n, "borrower_key": n, "product": "HC", "penalty": "0.1825", "start_date": START, **spec}
        rows.append(
            (
                s["loan_key"],
                f"L{s['loan_key']}",
                s["borrower_key"],
                s["product"],
                "CNY",
                300_000,
                1_200_000,
                rate_to_scaled(s["penalty"]),
                3,
                s["start_date"],
                "equal_principal",
            )
        )
    return pl.DataFrame(rows, schema=f.LOANS, orient="row")


def instalments(
    loan_key: int = 1, dues: Sequence[date] = DUES, schedule: Sequence[tuple[int, int, int]] = SCHEDULE
) -> pl.DataFrame:
    rows = [
        (loan_key, seq, due, p, i, fee)
        for seq, (due, (p, i, fee)) in enumerate(zip(dues, schedule, strict=True), start=1)
    ]
    return pl.DataFrame(rows, schema=f.INSTALMENTS, orient="row")


def payments(*rows: tuple[Any, ...]) -> pl.DataFrame:
    """(value_date, amount) or (value_date, amount, reverses_payment_key) or with a loan_key first as a 4th form:
    (loan_key, value_date, amount, reverses). Payment keys number the rows from 1."""
    out = []
    for key, row in enumerate(rows, start=1):
        if len(row) == 4:
            loan_key, day, amount, reverses = row
        else:
            loan_key, day, amount, reverses = 1, row[0], row[1], row[2] if len(row) > 2 else None
        out.append((key, loan_key, day, amount, reverses))
    return pl.DataFrame(out, schema=f.PAYMENTS, orient="row")


def holds(*rows: tuple[Any, ...]) -> pl.DataFrame:
    """(start, end, loan_key or None for the whole borrower, pauses_clock) for borrower 1."""
    out = [
        (n, 1, loan_key, "dispute", start, end, clock, True) for n, (start, end, loan_key, clock) in enumerate(rows, 1)
    ]
    return pl.DataFrame(out, schema=f.HOLDS, orient="row")


def state(
    as_of: date,
    pays: pl.DataFrame | None = None,
    conv: ProductConventions | None = None,
    hold_rows: pl.DataFrame | None = None,
    loan_rows: pl.DataFrame | None = None,
    inst_rows: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """The one loan's LEDGER_STATE row as a dict."""
    frame = ledger_state(
        loan_rows if loan_rows is not None else loans(),
        inst_rows if inst_rows is not None else instalments(),
        pays if pays is not None else payments(),
        hold_rows if hold_rows is not None else pl.DataFrame(schema=f.HOLDS),
        {"HC": conv or ProductConventions()},
        as_of,
    )
    assert frame.height == 1
    return frame.row(0, named=True)
