"""Shared by the importer rule tests: a small valid book, overridable file by file, checked without a database."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from duecourse.adapters.bookfiles import read_book
from duecourse.domain.errors import RowError
from duecourse.services.importer_validation import (
    KEY_COLUMN,
    TYPED,
    CheckedBook,
    StoreView,
    check_book,
)

NOW = datetime(2025, 11, 20, 9, 0, tzinfo=UTC)

HEADERS = {
    "borrowers": "borrower_id,name,national_id,birth_date,language,flags,region",
    "contact_points": "contact_id,borrower_id,kind,owner,value,latitude,longitude,time_zone,valid,consent",
    "loans": "loan_id,borrower_id,product,currency,principal,annual_rate,penalty_rate,term,start_date,method",
    "instalments": "loan_id,seq,due_date,principal,interest,fee",
    "payments": "payment_id,loan_id,value_date,amount,reverses_payment_id,booked_at",
    "holds": "hold_id,borrower_id,loan_id,kind,start_date,end_date,pauses_clock,pauses_outreach",
}

PRODUCTS = """products:
  CASH03:
    currency: CNY
    description: 现金分期 3 期
    conventions: {day_count: per_period}
"""
BORROWERS = [
    "B1,张伟,110101198503120316,1985-03-12,zh-CN,,CN-BJ",
    "B2,王芳,310104199007230429,1990-07-23,zh-CN,elderly,CN-SH",
]
LOANS = ["L1,B1,CASH03,CNY,3000.00,0.1825,0.2738,3,2025-01-15,equal_instalment"]
INSTALMENTS = [
    "L1,1,2025-02-15,988.89,45.63,0.00",
    "L1,2,2025-03-15,993.94,30.58,0.00",
    "L1,3,2025-04-15,1017.17,15.47,0.00",
]


def write_book(directory: Path, files: Mapping[str, list[str] | str | None]) -> Path:
    """Write a book: `products` as YAML text, other tables as data lines under their standard header."""
    directory.mkdir(parents=True, exist_ok=True)
    for table, content in files.items():
        if content is None:
            continue
        if table == "products":
            (directory / "products.yaml").write_text(str(content), encoding="utf-8")
        else:
            lines = [HEADERS[table], *content] if isinstance(content, list) else [str(content)]
            (directory / f"{table}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def stored(table: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A StoreView frame: the typed columns plus the store key, keys numbered from 1 when not given."""
    key = KEY_COLUMN.get(table)
    schema = pl.Schema({**({key: pl.Int64} if key else {}), **TYPED[table]})
    filled = [{**({key: i} if key else {}), **r} for i, r in enumerate(rows, start=1)]
    return pl.DataFrame(filled, schema=schema)


def store_with_base(**extra: pl.DataFrame) -> StoreView:
    """A store that already holds the base product, borrowers, loan and schedule (as a previous import left them)."""
    from duecourse.domain.conventions import ProductConventions
    from duecourse.services.importer_validation import canonical_conventions

    base: dict[str, pl.DataFrame] = {
        "products": pl.DataFrame([{"product": "CASH03", "currency": "CNY", "description": "现金分期 3 期",
                                   "conventions": canonical_conventions(
                                       ProductConventions.from_dict({"day_count": "per_period"}))}],
                                 schema=TYPED["products"]),
        "borrowers": stored("borrowers", [
            {"borrower_id": "B1", "name": "张伟", "national_id": "110101198503120316", "birth_date": date(1985, 3, 12),
             "language": "zh-CN", "flags": "", "region": "CN-BJ"},
            {"borrower_id": "B2", "name": "王芳", "national_id": "310104199007230429", "birth_date": date(1990, 7, 23),
             "language": "zh-CN", "flags": "elderly", "region": "CN-SH"}]),
        "loans": stored("loans", [
            {"loan_id": "L1", "borrower_id": "B1", "product": "CASH03", "currency": "CNY", "principal": 300000,
             "annual_rate": 18_250_000, "penalty_rate": 27_380_000, "term": 3, "start_date": date(2025, 1, 15),
             "method": "equal_instalment"}]),
        "instalments": stored("instalments", [
            {"loan_id": "L1", "seq": 1, "due_date": date(2025, 2, 15), "principal": 98889, "interest": 4563, "fee": 0},
            {"loan_id": "L1", "seq": 2, "due_date": date(2025, 3, 15), "principal": 99394, "interest": 3058, "fee": 0},
            {"loan_id": "L1", "seq": 3, "due_date": date(2025, 4, 15), "principal": 101717, "interest": 1547,
             "fee": 0}]),
    }
    base.update(extra)
    return StoreView(**base)


class Checker:
    """`check(loans=[...])` writes the base book with the given files replaced and validates it."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.n = 0

    def book(self, base: bool = True, **files: list[str] | str | None) -> CheckedBook:
        return self.run(StoreView(), base, files)

    def on_store(self, store: StoreView, **files: list[str] | str | None) -> CheckedBook:
        """Validate only the given files against a store (nothing from the base book is re-sent)."""
        return self.run(store, False, files)

    def run(self, store: StoreView, base: bool, files: Mapping[str, list[str] | str | None]) -> CheckedBook:
        content: dict[str, list[str] | str | None] = (
            {"products": PRODUCTS, "borrowers": BORROWERS, "loans": LOANS, "instalments": INSTALMENTS} if base else {}
        )
        content.update(files)
        self.n += 1
        directory = write_book(self.tmp_path / f"book{self.n}", content)
        return check_book(read_book(directory), store, NOW)

    def errors(self, base: bool = True, **files: list[str] | str | None) -> list[RowError]:
        return self.book(base, **files).row_errors()

    def store_errors(self, store: StoreView, **files: list[str] | str | None) -> list[RowError]:
        return self.on_store(store, **files).row_errors()
