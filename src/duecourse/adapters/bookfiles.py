"""Reading a loan-book directory (docs/book-format.md) into Polars frames of strings, refusing unusable files whole.

This module only answers "can the file be read, and does it have the right columns?". Every value
stays a string (blank -> null, surrounding spaces removed) so the importer can validate each row and
report what was wrong with it; a file that cannot be read at all raises `BookFormatError` naming it.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl
import yaml

from duecourse.domain.errors import BookFormatError


@dataclass(frozen=True)
class FileSpec:
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


# In import order: every file refers only to files above it (payments may also refer to each other).
SPECS: Final[dict[str, FileSpec]] = {
    "borrowers": FileSpec(("borrower_id", "name", "national_id", "language"), ("birth_date", "flags", "region")),
    "contact_points": FileSpec(
        ("contact_id", "borrower_id", "kind", "owner", "value", "time_zone", "valid", "consent"),
        ("latitude", "longitude"),
    ),
    "loans": FileSpec(
        (
            "loan_id",
            "borrower_id",
            "product",
            "currency",
            "principal",
            "annual_rate",
            "penalty_rate",
            "term",
            "start_date",
            "method",
        ),
    ),
    "instalments": FileSpec(("loan_id", "seq", "due_date", "principal", "interest"), ("fee",)),
    "payments": FileSpec(("payment_id", "loan_id", "value_date", "amount"), ("reverses_payment_id", "booked_at")),
    "holds": FileSpec(
        ("hold_id", "borrower_id", "kind", "start_date", "pauses_clock", "pauses_outreach"), ("loan_id", "end_date")
    ),
}

PRODUCTS_FILE: Final = "products.yaml"
SUFFIXES: Final = (".csv", ".parquet")


@dataclass(frozen=True)
class BookFile:
    """One table of the book: `frame` has exactly the spec's columns, all strings, in spec order."""

    table: str
    name: str  # file name inside the book directory, as shown in row errors: "loans.csv"
    sha256: str
    frame: pl.DataFrame


@dataclass(frozen=True)
class ProductEntry:
    row: int  # 1-based position in products.yaml
    code: str
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class ProductsFile:
    name: str
    sha256: str
    entries: tuple[ProductEntry, ...]


@dataclass(frozen=True)
class Book:
    directory: Path
    products: ProductsFile | None
    files: dict[str, BookFile]  # table name -> file, only the tables present


def read_book(directory: Path) -> Book:
    """Read every book file in `directory`; any unusable file raises before anything is returned."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BookFormatError(str(directory), "not a directory")
    # A misspelt table file ("loan.csv", "products.yml") would otherwise be silently skipped; other files
    # (a README, a generator's notes) are left alone.
    stray = sorted(
        p.name
        for p in directory.iterdir()
        if p.is_file()
        and p.name != PRODUCTS_FILE
        and (p.suffix.lower() in (*SUFFIXES, ".yaml", ".yml") and not p.name.startswith("."))
        and (p.stem not in SPECS or p.suffix.lower() not in SUFFIXES)
    )
    if stray:
        raise BookFormatError(
            stray[0],
            f"not a book file; expected {PRODUCTS_FILE} or {{{', '.join(SPECS)}}} with suffix .csv or .parquet",
        )
    products = _read_products(directory / PRODUCTS_FILE) if (directory / PRODUCTS_FILE).exists() else None
    files: dict[str, BookFile] = {}
    for table in SPECS:
        found = [directory / f"{table}{s}" for s in SUFFIXES if (directory / f"{table}{s}").exists()]
        if len(found) > 1:
            raise BookFormatError(found[1].name, f"both {found[0].name} and {found[1].name} exist: keep one")
        if found:
            files[table] = read_table(found[0], table)
    if products is None and not files:
        raise BookFormatError(str(directory), "no book files found (see docs/book-format.md)")
    return Book(directory, products, files)


def read_table(path: Path, table: str) -> BookFile:
    spec = SPECS[table]
    data = _read_bytes(path)
    if path.suffix.lower() == ".csv":
        frame = _read_csv(path.name, data)
    elif path.suffix.lower() == ".parquet":
        frame = _read_parquet(path.name, data)
    else:
        raise BookFormatError(path.name, "not a .csv or .parquet file")
    frame = frame.rename({c: c.strip() for c in frame.columns})
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        raise BookFormatError(path.name, f"missing required column(s) {', '.join(missing)}")
    unknown = [c for c in frame.columns if c not in spec.columns]
    if unknown:
        raise BookFormatError(path.name, f"unknown column(s) {', '.join(unknown)}; expected {', '.join(spec.columns)}")
    frame = frame.with_columns(pl.lit(None, pl.String).alias(c) for c in spec.optional if c not in frame.columns)
    frame = frame.select(spec.columns)
    return BookFile(table, path.name, hashlib.sha256(data).hexdigest(), _trimmed(frame))


def _trimmed(frame: pl.DataFrame) -> pl.DataFrame:
    """Surrounding spaces are never meaningful in these fields, and a blank field is a missing value.

    Only columns that hold such a value are rewritten: copying twelve million clean strings costs seconds.
    """
    untidy = frame.select(pl.col(c).str.contains(r"^\s|\s$|^$").any().alias(c) for c in frame.columns).row(0)
    columns = [c for c, flag in zip(frame.columns, untidy, strict=True) if flag]
    clean = pl.col(columns).str.strip_chars()
    return frame.with_columns(pl.when(clean != "").then(clean)) if columns else frame


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BookFormatError(path.name, f"cannot be read: {exc.strerror or exc}") from None


def _read_csv(name: str, data: bytes) -> pl.DataFrame:
    if not data or data.isspace():
        raise BookFormatError(name, "empty file (a CSV needs at least its header line)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BookFormatError(name, f"not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    end = data.find(b"\n")
    first_line = data[: end if end >= 0 else len(data)].decode("utf-8-sig")
    header = [h.strip() for h in next(csv.reader([first_line]), [])]
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise BookFormatError(name, f"column(s) {', '.join(duplicated)} appear more than once in the header")
    try:
        frame = pl.read_csv(io.BytesIO(data), infer_schema=False, encoding="utf8")
    except pl.exceptions.PolarsError as exc:
        raise BookFormatError(name, f"cannot be read as CSV: {str(exc).splitlines()[0]}") from None
    return frame


def _read_parquet(name: str, data: bytes) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise BookFormatError(name, f"cannot be read as Parquet: {str(exc).splitlines()[0]}") from None
    return frame.select(_as_text(name, c, t) for c, t in frame.schema.items())


def _as_text(name: str, column: str, dtype: pl.DataType) -> pl.Expr:
    """Render a typed Parquet column as the same text a CSV would carry, so both formats validate alike."""
    col = pl.col(column)
    if dtype == pl.String:
        return col
    if dtype == pl.Date:
        return col.dt.strftime("%Y-%m-%d")
    if isinstance(dtype, pl.Datetime):
        # An instant without a time zone stays without an offset, and is rejected row by row.
        fmt = "%Y-%m-%dT%H:%M:%S%.f%:z" if dtype.time_zone else "%Y-%m-%dT%H:%M:%S%.f"
        return col.dt.strftime(fmt)
    if dtype == pl.Boolean:
        return col.cast(pl.String)
    if dtype.is_integer() or dtype.is_float() or isinstance(dtype, pl.Decimal):
        return col.cast(pl.String)
    if isinstance(dtype, pl.List) and dtype.inner == pl.String:
        return col.list.join(";")
    raise BookFormatError(name, f"column {column} has unsupported Parquet type {dtype}")


def _read_products(path: Path) -> ProductsFile:
    data = _read_bytes(path)
    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise BookFormatError(path.name, f"not valid UTF-8 YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict) or set(doc) != {"products"} or not isinstance(doc["products"], dict):
        raise BookFormatError(path.name, "must be a mapping with the single key 'products: {CODE: {...}}'")
    entries = []
    for i, (code, raw) in enumerate(doc["products"].items(), start=1):
        if not isinstance(raw, dict):
            raise BookFormatError(path.name, f"product {code!r} must be a mapping")
        entries.append(ProductEntry(i, str(code), raw))
    return ProductsFile(path.name, hashlib.sha256(data).hexdigest(), tuple(entries))
