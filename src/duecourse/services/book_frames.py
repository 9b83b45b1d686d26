"""Extract the book from the store as the frames the set-based core expects (one place for the SQL)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

import polars as pl
from sqlalchemy import Connection, Engine, select

from duecourse.adapters.db import tables as t
from duecourse.adapters.db.bulk import read_frame
from duecourse.domain import frames as f
from duecourse.domain.conventions import ProductConventions
from duecourse.ledger.plans import PLAN_INSTALMENTS, PLANS, supersede


@dataclass(frozen=True)
class BookFrames:
    loans: pl.DataFrame
    instalments: pl.DataFrame
    payments: pl.DataFrame
    holds: pl.DataFrame
    borrowers: pl.DataFrame
    conventions: dict[str, ProductConventions]


def load_conventions(source: Engine | Connection) -> dict[str, ProductConventions]:
    query = select(t.product.c.code, t.product.c.conventions)
    if isinstance(source, Connection):
        rows = source.execute(query).all()
    else:
        with source.connect() as conn:
            rows = conn.execute(query).all()
    return {code: ProductConventions.from_dict(conv) for code, conv in rows}


def load_book(engine: Engine | Connection, as_of: date, loan_keys: Collection[int] | None = None) -> BookFrames:
    """All events with a value date on or before `as_of` (later ones cannot affect the state as of it), of the
    whole book or of `loan_keys` only (with their borrowers, and the holds on those borrowers).

    Given a Connection, the book is read inside the caller's transaction (`bulk.read_frame`): for a few loans
    while the caller writes, as the letters do inside the dispatcher's transaction.

    Payments come back in (loan, value date) order, the order the ledger works in, so it need not sort them.
    (Reading the tables side by side on two connections was tried: the SQLite reads did not overlap and
    used more CPU, so they run one after the other.)
    """
    d = as_of.isoformat()
    # Keys are integers (formatted by int()), so the IN list cannot carry SQL.
    within = None if loan_keys is None else "(" + ",".join(str(int(k)) for k in sorted(set(loan_keys))) + ")"
    if within == "()":
        within = "(NULL)"
    loan_filter = "" if within is None else f" WHERE loan_key IN {within}"
    borrowers_of = f"(SELECT borrower_key FROM loan WHERE loan_key IN {within})"
    loans = read_frame(
        engine,
        "SELECT loan_key, loan_id, borrower_key, product, currency, principal, annual_rate, penalty_rate, term,"
        f" start_date, method FROM loan{loan_filter}",
        f.LOANS,
    )
    instalments = read_frame(
        engine, f"SELECT loan_key, seq, due_date, principal, interest, fee FROM instalment{loan_filter}", f.INSTALMENTS
    )
    pay_filter = f" WHERE value_date <= '{d}'" + ("" if within is None else f" AND loan_key IN {within}")
    payments = read_frame(
        engine,
        f"SELECT payment_key, loan_key, value_date, amount, reverses_payment_key FROM payment{pay_filter}",
        f.PAYMENTS,
    ).sort("loan_key", "value_date", "payment_key")
    instalments, payments = _with_plans(engine, instalments, payments, as_of, within)
    hold_filter = f" WHERE start_date <= '{d}'"
    if within is not None:
        hold_filter += f" AND (loan_key IN {within} OR (loan_key IS NULL AND borrower_key IN {borrowers_of}))"
    holds = read_frame(
        engine,
        "SELECT hold_key, borrower_key, loan_key, kind, start_date, end_date, pauses_clock, pauses_outreach"
        f" FROM hold{hold_filter}",
        f.HOLDS,
    )
    borrower_filter = "" if within is None else f" WHERE borrower_key IN {borrowers_of}"
    raw_borrowers = read_frame(
        engine,
        f"SELECT borrower_key, borrower_id, language, birth_date, flags FROM borrower{borrower_filter}",
        pl.Schema(
            {
                "borrower_key": pl.Int64,
                "borrower_id": pl.String,
                "language": pl.String,
                "birth_date": pl.Date,
                "flags": pl.String,
            }
        ),
    )
    borrowers = raw_borrowers.with_columns(
        flags=pl.when(pl.col("flags") == "")
        .then(pl.lit([], pl.List(pl.String)))
        .otherwise(pl.col("flags").str.split(","))
    )
    return BookFrames(loans, instalments, payments, holds, f.conform(borrowers, f.BORROWERS), load_conventions(engine))


def _with_plans(
    engine: Engine | Connection, instalments: pl.DataFrame, payments: pl.DataFrame, as_of: date, within: str | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Accepted repayment plans effective by `as_of` supersede the schedules they restructure (ledger/plans.py)."""
    accepted = f"effective_date IS NOT NULL AND effective_date <= '{as_of.isoformat()}'" + (
        "" if within is None else f" AND loan_key IN {within}"
    )
    plans = read_frame(
        engine, f"SELECT plan_key, loan_key, effective_date, credit_amount FROM repayment_plan WHERE {accepted}", PLANS
    )
    if plans.is_empty():
        return instalments, payments
    rows = read_frame(
        engine,
        "SELECT plan_key, seq, due_date, principal, interest, fee FROM plan_instalment"
        f" WHERE plan_key IN (SELECT plan_key FROM repayment_plan WHERE {accepted})",
        PLAN_INSTALMENTS,
    )
    return supersede(instalments, payments, plans, rows, as_of)
