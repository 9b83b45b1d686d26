"""What a lender moving its book brings besides the loans: accounts that went silent deep in arrears, and the
record of the calls made before the move — so the demo's cycle meets debtors for whom a door visit is due.

A book is never migrated on a quiet day: some accounts stopped paying two or three months ago, and the old
dialler has been ringing them every few days without an answer. Those are the cases the seed reserves a
door visit for ("作为最后手段利用"), and the rules ask for that history before one is planned
(HOUSE.VISIT.LAST_RESORT: at least 3 failed remote attempts in 30 days and no conversation). The generated
book (book.py) follows the UCI roll rates, which leave few loans past 60 days on a young book; this module
adds the migrated tail on top, set-based like the generator, and writes the contact history as the
compliance contact events a lender's migration would load.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from sqlalchemy import Connection, select

from duecourse.adapters.db import tables as t
from duecourse.audit.chain import AuditRecord
from duecourse.audit.log import append
from duecourse.demo.book import GeneratedBook
from duecourse.services.contacts import ContactEvent, record_contacts

LENDER_TIME: Final = ZoneInfo("Asia/Shanghai")
# About one debtor in six does not answer any more (a number that rings out, a phone switched off): a fixed
# multiplicative hash of the borrower number, so the desk's simulated calls and the migrated history agree.
SILENT_ONE_IN: Final = 6
# The old dialler's cadence for an account in collections: one call every three days, over the 30 days
# before the move (the look-back of HOUSE.VISIT.LAST_RESORT).
CALL_EVERY_DAYS: Final = 3
HISTORY_DAYS: Final = 30
IN_COLLECTIONS_FROM: Final = 31  # days past due: the accounts the old system was calling (M2 and beyond)
# The migrated deep tail: accounts whose first unpaid instalment fell due 70-95 days before the move (M3),
# a few per ten thousand loans, each owing at least ¥6,000 overdue (the ladder's visit step wants ¥5,000).
DEEP_DAYS: Final = (70, 95)
DEEP_SHARE: Final = 0.0005
DEEP_MINIMUM: Final = 3
DEEP_OVERDUE: Final = 600_000  # fen


@dataclass(frozen=True)
class Migrated:
    book: GeneratedBook  # the book with the deep accounts' payments after they stopped removed
    deep: pl.DataFrame  # loan_id, borrower_id, stopped (first unpaid due date), overdue (fen at as_of)
    history: pl.DataFrame  # the old system's calls: event_id, borrower_id, loan_id, contact_id, at, outcome
    silent: frozenset[str]  # borrower ids of the debtors who do not answer


def silent(borrower_id: pl.Expr) -> pl.Expr:
    """True for the debtors who no longer answer: a Knuth multiplicative hash of the borrower number."""
    number = borrower_id.str.slice(1).cast(pl.UInt64)
    return ((number * 2_654_435_761) % (1 << 32)) % SILENT_ONE_IN == 0


def migrate(book: GeneratedBook, regions: frozenset[str], seed: int) -> Migrated:
    """The book as the lender hands it over: a deep tail of silent accounts in `regions` (where it has field
    teams) that stopped paying, and the calls made to every account in collections over the last 30 days."""
    rng = np.random.default_rng([seed, 4])  # its own stream: the book's other draws are unchanged
    quiet = book.borrowers.filter(silent(pl.col("borrower_id"))).get_column("borrower_id")
    deep = _deep_tail(book, regions, quiet, rng)
    stopped = deep.select("loan_id", "stopped")

    def before_stop(frame: pl.DataFrame) -> pl.DataFrame:
        return (
            frame.join(stopped, on="loan_id", how="left")
            .filter(pl.col("stopped").is_null() | (pl.col("value_date") < pl.col("stopped") - pl.duration(days=5)))
            .drop("stopped")
        )

    moved = replace(
        book,
        payments=before_stop(book.payments),
        daily_payments={d: before_stop(f) for d, f in book.daily_payments.items()},
    )
    history = _calls(moved, frozenset(quiet.to_list()), rng)
    return Migrated(moved, deep, history, frozenset(quiet.to_list()))


def _dues(book: GeneratedBook) -> pl.DataFrame:
    """Instalments with their total and the running total before each, in fen."""
    fen = (pl.col("principal") + pl.col("interest") + pl.col("fee")).mul(100).cast(pl.Int64)
    return (
        book.instalments.select("loan_id", "seq", "due_date", total=fen)
        .sort("loan_id", "seq")
        .with_columns(before=pl.col("total").cum_sum().over("loan_id") - pl.col("total"))
    )


def _deep_tail(
    book: GeneratedBook, regions: frozenset[str], quiet: pl.Series, rng: np.random.Generator
) -> pl.DataFrame:
    """Silent, plain (not elderly, disabled or on hold), single-loan borrowers in `regions` with a usable home
    address and phone, up to date until an instalment due 70-95 days ago, owing enough to be worth a visit."""
    as_of = book.as_of
    lo, hi = as_of - timedelta(days=DEEP_DAYS[1]), as_of - timedelta(days=DEEP_DAYS[0])
    dues = _dues(book)
    first_missed = (
        dues.filter(pl.col("due_date").is_between(lo, hi)).sort("loan_id", "seq").unique("loan_id", keep="first")
    )
    overdue = (
        dues.join(first_missed.select("loan_id", missed="seq"), on="loan_id")
        .filter((pl.col("seq") >= pl.col("missed")) & (pl.col("due_date") < as_of))
        .group_by("loan_id")
        .agg(overdue=pl.col("total").sum())
    )
    paid = (
        book.payments.join(first_missed.select("loan_id", "due_date"), on="loan_id")
        .filter(pl.col("value_date") < pl.col("due_date") - pl.duration(days=5))
        .group_by("loan_id")
        .agg(paid=(pl.col("amount") * 100).cast(pl.Int64).sum())
    )
    cp = book.contact_points.filter(pl.col("owner") == "borrower", pl.col("valid"), pl.col("consent"))
    reachable_home = cp.filter(pl.col("kind") == "address", pl.col("latitude").is_not_null()).select("borrower_id")
    phone = cp.filter(pl.col("kind") == "phone").select("borrower_id")
    one_loan = book.loans.group_by("borrower_id").len().filter(pl.col("len") == 1).select("borrower_id")
    plain = book.borrowers.filter(
        (pl.col("flags") == "") & pl.col("region").is_in(sorted(regions)) & pl.col("borrower_id").is_in(quiet.implode())
    ).select("borrower_id")
    on_hold = book.holds.get_column("borrower_id").unique().implode()
    pool = (
        book.loans.select("loan_id", "borrower_id")
        .join(plain, on="borrower_id", how="semi")
        .join(one_loan, on="borrower_id", how="semi")
        .join(reachable_home.unique(), on="borrower_id", how="semi")
        .join(phone.unique(), on="borrower_id", how="semi")
        .filter(~pl.col("borrower_id").is_in(on_hold))
        .join(first_missed.select("loan_id", stopped="due_date", before="before"), on="loan_id")
        .join(overdue, on="loan_id")
        .join(paid, on="loan_id", how="left")
        .filter(pl.col("paid").fill_null(0) >= pl.col("before"), pl.col("overdue") >= DEEP_OVERDUE)
        .sort("loan_id")
    )
    k = min(pool.height, max(DEEP_MINIMUM, round(DEEP_SHARE * book.loans.height)))
    picked = np.sort(rng.choice(pool.height, size=k, replace=False)) if k else np.zeros(0, dtype=np.int64)
    return pool[picked].select("loan_id", "borrower_id", "stopped", "overdue")


def _calls(book: GeneratedBook, quiet: frozenset[str], rng: np.random.Generator) -> pl.DataFrame:
    """The old dialler's calls over the last 30 days to every account at least 31 days past due, from the day it
    passed 31: unanswered for the silent debtors, a mix (a quarter of them conversations) for the others."""
    as_of = book.as_of
    dues = _dues(book)
    paid = book.payments.group_by("loan_id").agg(paid=(pl.col("amount") * 100).cast(pl.Int64).sum())
    oldest = (
        dues.join(paid, on="loan_id", how="left")
        .filter(pl.col("before") + pl.col("total") > pl.col("paid").fill_null(0), pl.col("due_date") < as_of)
        .group_by("loan_id")
        .agg(pl.col("due_date").min().alias("oldest"))
        .filter(pl.col("oldest") <= as_of - timedelta(days=IN_COLLECTIONS_FROM))
    )
    phone = (
        book.contact_points.filter(
            pl.col("owner") == "borrower", pl.col("kind") == "phone", pl.col("valid"), pl.col("consent")
        )
        .unique("borrower_id", keep="first", maintain_order=True)
        .select("borrower_id", "contact_id")
    )
    accounts = (
        book.loans.select("loan_id", "borrower_id")
        .join(oldest, on="loan_id")
        .join(phone, on="borrower_id")
        .sort("loan_id")
    )
    n = accounts.height
    phase = rng.integers(0, CALL_EVERY_DAYS, n)
    days_back = np.arange(1, HISTORY_DAYS + 1)
    slots = pl.DataFrame(
        {
            "row": np.repeat(np.arange(n), len(days_back)),
            "back": np.tile(days_back, n),
            "phase": np.repeat(phase, len(days_back)),
        }
    ).filter((pl.col("back") % CALL_EVERY_DAYS) == pl.col("phase"))
    m = slots.height
    u = rng.random(m)
    minutes = rng.integers(10 * 60, 18 * 60, m)  # 10:00-17:59 lender time, inside every hours rule
    calls = (
        accounts.with_row_index("row")
        .with_columns(pl.col("row").cast(pl.Int64))
        .join(
            slots.with_columns(pl.col("row").cast(pl.Int64), u=pl.lit(pl.Series(u)), minute=pl.lit(pl.Series(minutes))),
            on="row",
        )
        .with_columns(day=pl.lit(as_of) - pl.duration(days=pl.col("back")))
        .filter(pl.col("day") > pl.col("oldest") + pl.duration(days=IN_COLLECTIONS_FROM - 1))
    )
    is_quiet = pl.col("borrower_id").is_in(sorted(quiet))
    outcome = (
        pl.when(is_quiet)
        .then(
            pl.when(pl.col("u") < 0.7)
            .then(pl.lit("no_answer"))
            .when(pl.col("u") < 0.9)
            .then(pl.lit("voicemail"))
            .otherwise(pl.lit("busy"))
        )
        .when(pl.col("u") < 0.25)
        .then(pl.lit("conversation"))
        .when(pl.col("u") < 0.75)
        .then(pl.lit("no_answer"))
        .when(pl.col("u") < 0.9)
        .then(pl.lit("voicemail"))
        .otherwise(pl.lit("busy"))
    )
    local = pl.col("day").cast(pl.Datetime("us")) + pl.duration(minutes=pl.col("minute"))
    return calls.sort("loan_id", "back", descending=[False, True]).select(
        event_id=pl.format("migrated:{}:{}", pl.col("loan_id"), pl.col("day")),
        borrower_id="borrower_id",
        loan_id="loan_id",
        contact_id="contact_id",
        at=local.dt.replace_time_zone(str(LENDER_TIME)).dt.convert_time_zone("UTC"),
        outcome=outcome,
    )


def record(conn: Connection, history: pl.DataFrame, now: datetime) -> int:
    """Load the migrated calls as contact events (the compliance contact history), with their audit entry, in the
    caller's transaction; returns how many were new."""
    if history.is_empty():
        return 0
    b, ln, cp = t.borrower, t.loan, t.contact_point
    keys: dict[str, dict[str, int]] = {}
    for name, column, key in (
        ("borrower", b.c.borrower_id, b.c.borrower_key),
        ("loan", ln.c.loan_id, ln.c.loan_key),
        ("contact", cp.c.contact_id, cp.c.contact_key),
    ):
        wanted = history.get_column(f"{name}_id").unique().to_list()
        keys[name] = {
            str(i): int(k)
            for part in range(0, len(wanted), 10_000)
            for i, k in conn.execute(select(column, key).where(column.in_(wanted[part : part + 10_000])))
        }
    events = [
        ContactEvent(
            event_id,
            keys["borrower"][borrower_id],
            at,
            "call",
            outcome,
            loan_key=keys["loan"][loan_id],
            address=f"cp:{keys['contact'][contact_id]}",
            agent="migrated",
            details={"source": "the lender's previous collections system"},
        )
        for event_id, borrower_id, loan_id, contact_id, at, outcome in history.iter_rows()
    ]
    new = record_contacts(conn, events, now)
    outcomes = dict(history.group_by("outcome").len().sort("outcome").iter_rows())
    append(
        conn,
        [
            AuditRecord(
                "demo",
                "import",
                "contact_history.imported",
                "contact_event",
                f"migrated:{now.date().isoformat()}",
                "the calls of the last 30 days from the lender's previous system, brought with its book",
                {"events": new, "accounts": history.get_column("loan_id").n_unique(), "outcomes": outcomes},
            )
        ],
        now,
    )
    return new
