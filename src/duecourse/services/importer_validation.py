"""Validation of a loan book against itself and the store, set-based: a rule is a Polars expression, a failure a row.

Pure: it takes the book's string frames, a `StoreView` of what the store already holds for the ids the
book mentions, and `now`; it returns, per file, the typed rows to write (new, changed or same as
stored) and every `(row, field, reason)` failure. Rules run in dependency order so a rejected parent
(a borrower, a loan, a schedule) rejects the rows that need it, with a reason naming the parent's row.
Reasons never repeat personal data (names, national ids, contact values): they are stored in clear.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final

import polars as pl

from duecourse.adapters.bookfiles import Book, BookFile, ProductsFile
from duecourse.domain.conventions import ProductConventions
from duecourse.domain.errors import ConventionError, RowError
from duecourse.domain.money import MINOR_UNIT_EXPONENT, RATE_SCALE

METHODS: Final = ("equal_instalment", "equal_principal", "interest_only")
CONTACT_KINDS: Final = ("phone", "email", "address", "app")
CONTACT_OWNERS: Final = ("borrower", "spouse", "family", "emergency", "employer", "guarantor")
HOLD_KINDS: Final = ("dispute", "hardship", "legal", "deceased")
FLAGS: Final = ("elderly", "disabled", "deceased", "vulnerable", "bankrupt", "attorney", "military")
MAX_TERM: Final = 600
EARLIEST_BIRTH: Final = date(1900, 1, 1)

ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"
ID_HELP: Final = "1-64 letters, digits, '.', '_', '/' or '-', starting with a letter or digit"
DATE_PATTERN: Final = r"^\d{4}-\d{2}-\d{2}$"
AMOUNT_PATTERN: Final = r"^\d{1,15}(\.\d+)?$"
RATE_PATTERN: Final = r"^\d{1,3}(\.\d+)?$"
LANGUAGE_PATTERN: Final = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$"
REGION_PATTERN: Final = r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$"
PHONE_PATTERN: Final = r"^\+?[0-9]{6,15}$"
EMAIL_PATTERN: Final = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PHONE_SEPARATORS: Final = r"[\s().-]"
TIME_ZONES: Final = sorted(zoneinfo.available_timezones())


def schema_of(columns: Mapping[str, Any]) -> pl.Schema:
    """A Polars schema from a literal mapping (typed loosely: mypy cannot join dtype classes and instances)."""
    return pl.Schema(columns)


# Columns each file is stored with once typed: ids are external ids, money Int64 minor units, rates
# Int64 scaled by RATE_SCALE. `StoreView` frames have the same columns plus the store's surrogate key.
TYPED: Final[dict[str, pl.Schema]] = {
    "products": schema_of(
        {"product": pl.String, "currency": pl.String, "conventions": pl.String, "description": pl.String}
    ),
    "borrowers": schema_of(
        {
            "borrower_id": pl.String,
            "name": pl.String,
            "national_id": pl.String,
            "birth_date": pl.Date,
            "language": pl.String,
            "flags": pl.String,
            "region": pl.String,
        }
    ),
    "contact_points": schema_of(
        {
            "contact_id": pl.String,
            "borrower_id": pl.String,
            "kind": pl.String,
            "owner": pl.String,
            "value": pl.String,
            "latitude": pl.Float64,
            "longitude": pl.Float64,
            "time_zone": pl.String,
            "valid": pl.Boolean,
            "consent": pl.Boolean,
        }
    ),
    "loans": schema_of(
        {
            "loan_id": pl.String,
            "borrower_id": pl.String,
            "product": pl.String,
            "currency": pl.String,
            "principal": pl.Int64,
            "annual_rate": pl.Int64,
            "penalty_rate": pl.Int64,
            "term": pl.Int32,
            "start_date": pl.Date,
            "method": pl.String,
        }
    ),
    "instalments": schema_of(
        {
            "loan_id": pl.String,
            "seq": pl.Int32,
            "due_date": pl.Date,
            "principal": pl.Int64,
            "interest": pl.Int64,
            "fee": pl.Int64,
        }
    ),
    "payments": schema_of(
        {
            "payment_id": pl.String,
            "loan_id": pl.String,
            "value_date": pl.Date,
            "amount": pl.Int64,
            "reverses_payment_id": pl.String,
            "booked_at": pl.Datetime("us", "UTC"),
        }
    ),
    "holds": schema_of(
        {
            "hold_id": pl.String,
            "borrower_id": pl.String,
            "loan_id": pl.String,
            "kind": pl.String,
            "start_date": pl.Date,
            "end_date": pl.Date,
            "pauses_clock": pl.Boolean,
            "pauses_outreach": pl.Boolean,
        }
    ),
}
ID_COLUMN: Final = {
    "products": "product",
    "borrowers": "borrower_id",
    "contact_points": "contact_id",
    "loans": "loan_id",
    "payments": "payment_id",
    "holds": "hold_id",
}
KEY_COLUMN: Final = {
    "borrowers": "borrower_key",
    "contact_points": "contact_key",
    "loans": "loan_key",
    "payments": "payment_key",
    "holds": "hold_key",
}
# Fields an import may update on an existing row; a difference in any other field rejects the row.
UPDATABLE: Final[dict[str, tuple[str, ...]]] = {
    "products": ("description",),
    "borrowers": ("name", "national_id", "birth_date", "language", "flags", "region"),
    "contact_points": ("kind", "owner", "value", "latitude", "longitude", "time_zone", "valid", "consent"),
    "loans": (),
    "instalments": (),
    "payments": (),
    "holds": ("kind", "start_date", "end_date", "pauses_clock", "pauses_outreach"),
}
IMMUTABLE_REASON: Final = {
    "products": "product {} already exists with a different {}: that would rewrite the ledger of its loans;"
    " give the changed product a new code",
    "contact_points": "contact {} is stored with a different {}: a contact point cannot move to another borrower;"
    " add a new contact point instead",
    "loans": "loan {} already imported with a different {}; loans are not changed by an import"
    " (payments are corrected by a reversal)",
    "payments": "payment {} already imported with a different {}; payments are corrected by a reversal",
    "holds": "hold {} is stored with a different {}: a hold cannot move to another borrower or loan;"
    " end it and add a new hold instead",
}
COMPANION_ORDER: Final = 1000  # `_order` of errors that only say "rejected with its schedule"
ERRORS_SCHEMA: Final = pl.Schema({"_row": pl.Int64, "field": pl.String, "reason": pl.String, "_order": pl.Int64})


def stored_schema(table: str) -> pl.Schema:
    """TYPED[table] with the store's surrogate key first: the columns of a StoreView frame."""
    key = KEY_COLUMN.get(table)
    return schema_of({**({key: pl.Int64} if key else {}), **TYPED[table]})


@dataclass(frozen=True)
class StoreView:
    """What the store already holds for the ids the book mentions, typed like TYPED (personal data decrypted).

    `payments` also holds every stored reversal of a payment the book reverses, so "reversed twice" is seen.
    """

    products: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=TYPED["products"]))
    borrowers: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=stored_schema("borrowers")))
    contact_points: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=stored_schema("contact_points")))
    loans: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=stored_schema("loans")))
    instalments: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=TYPED["instalments"]))
    payments: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=stored_schema("payments")))
    holds: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=stored_schema("holds")))


@dataclass(frozen=True)
class CheckedFile:
    """One book file after validation."""

    table: str
    file: str
    sha256: str
    rows: int  # data rows read
    raw: pl.DataFrame  # the rejected rows' strings as read, with `_row` (1-based data row)
    accepted: pl.DataFrame  # TYPED columns + `_row`, `_status` (new|changed|same), `_changed`, the store key
    errors: pl.DataFrame  # ERRORS_SCHEMA: one line per (row, field) failure

    @property
    def rejected_rows(self) -> int:
        return int(self.errors["_row"].n_unique())

    def row_errors(self) -> list[RowError]:
        ordered = self.errors.sort("_row", "_order")
        return [RowError(self.file, r, f, why) for r, f, why in ordered.select("_row", "field", "reason").iter_rows()]


@dataclass(frozen=True)
class CheckedBook:
    files: dict[str, CheckedFile]  # table -> checked file, in import order

    def row_errors(self) -> list[RowError]:
        return [e for f in self.files.values() for e in f.row_errors()]


# ---------------------------------------------------------------------------------------------- expressions


def _required(c: str) -> pl.Expr:
    return pl.when(pl.col(c).is_null()).then(pl.lit("required"))


def _id_reason(c: str, required: bool = True) -> pl.Expr:
    col = pl.col(c)
    return (
        pl.when(col.is_null())
        .then(pl.lit("required" if required else None, pl.String))
        .when(~col.str.contains(ID_PATTERN))
        .then(pl.lit(f"not a valid id ({ID_HELP})"))
    )


def _one_of_reason(c: str, allowed: Sequence[str], required: bool = True) -> pl.Expr:
    col = pl.col(c)
    return (
        pl.when(col.is_null())
        .then(pl.lit("required" if required else None, pl.String))
        .when(~col.is_in(list(allowed)))
        .then(pl.format(f"unknown {c} '{{}}'; expected one of {', '.join(allowed)}", col))
    )


def _date(c: str) -> pl.Expr:
    col = pl.col(c)
    return pl.when(col.str.contains(DATE_PATTERN)).then(col.str.to_date("%Y-%m-%d", strict=False))


def _date_reason(c: str, required: bool = True) -> pl.Expr:
    return (
        pl.when(pl.col(c).is_null())
        .then(pl.lit("required" if required else None, pl.String))
        .when(_date(c).is_null())
        .then(pl.format("not a date '{}' (expected YYYY-MM-DD)", pl.col(c)))
    )


def _bool(c: str) -> pl.Expr:
    return (
        pl.col(c)
        .str.to_lowercase()
        .replace_strict({"true": True, "false": False}, default=None, return_dtype=pl.Boolean)
    )


def _bool_reason(c: str) -> pl.Expr:
    return (
        pl.when(pl.col(c).is_null())
        .then(pl.lit("required"))
        .when(_bool(c).is_null())
        .then(pl.format("not true or false: '{}'", pl.col(c)))
    )


def _int(c: str) -> pl.Expr:
    return pl.when(pl.col(c).str.contains(r"^\d{1,6}$")).then(pl.col(c).cast(pl.Int64, strict=False))


def _int_reason(c: str, lo: int, hi: int) -> pl.Expr:
    return (
        pl.when(pl.col(c).is_null())
        .then(pl.lit("required"))
        .when(_int(c).is_null())
        .then(pl.format("not a whole number: '{}'", pl.col(c)))
        .when(~_int(c).is_between(lo, hi))
        .then(pl.format(f"must be between {lo} and {hi}, got {{}}", pl.col(c)))
    )


def _exponent(currency: pl.Expr) -> pl.Expr:
    return currency.replace_strict(MINOR_UNIT_EXPONENT, default=None, return_dtype=pl.Int64)


def _decimals(c: str) -> pl.Expr:
    col = pl.col(c)
    dot = col.str.find(".", literal=True)
    return pl.when(dot.is_null()).then(0).otherwise(col.str.len_bytes().cast(pl.Int64) - dot - 1).cast(pl.Int64)


def _scaled(c: str, exponent: pl.Expr, pattern: str = AMOUNT_PATTERN) -> pl.Expr:
    """Exact "123.45" -> 12345 at `exponent` decimals, integers only; null if not an amount or too precise.

    The pattern bounds the digits (15 before the point, at most `exponent` after), so the Int64 cannot overflow.
    """
    col = pl.col(c)
    n = _decimals(c)
    digits = col.str.replace(".", "", literal=True).cast(pl.Int64, strict=False)
    return pl.when(col.str.contains(pattern) & (n <= exponent)).then(
        digits * pl.lit(10, pl.Int64).pow((exponent - n).clip(0))
    )


def _amount_reason(c: str, currency: pl.Expr, exp: pl.Expr, *, positive: bool, required: bool = True) -> pl.Expr:
    """Why `c` is not an amount in `currency` (whose minor-unit exponent is `exp`), or null."""
    col = pl.col(c)
    chain = (
        pl.when(col.is_null())
        .then(pl.lit("required" if required else None, pl.String))
        .when(col.str.contains(r"^-\d"))
        .then(pl.format("must not be negative, got {}", col))
        .when(~col.str.contains(AMOUNT_PATTERN))
        .then(pl.format("not an amount '{}' (digits with an optional decimal point, e.g. 12000.00)", col))
        .when(exp.is_null())
        .then(pl.lit(None, pl.String))  # the currency is unknown: reported on its own field
        .when(_decimals(c) > exp)
        .then(pl.format("{} has more decimals than {} allows ({})", col, currency, exp))
    )
    return chain.when(col.str.contains(r"^[0.]+$")).then(pl.lit("must be greater than zero")) if positive else chain


def _rate_reason(c: str) -> pl.Expr:
    col = pl.col(c)
    return (
        pl.when(col.is_null())
        .then(pl.lit("required"))
        .when(col.str.contains(r"^-\d"))
        .then(pl.format("must not be negative, got {}", col))
        .when(~col.str.contains(RATE_PATTERN))
        .then(pl.format("not a rate '{}' (a fraction, e.g. 0.1825)", col))
        .when(_decimals(c) > 8)
        .then(pl.format("{} has more than 8 decimals", col))
        .when(_scaled(c, pl.lit(8, pl.Int64), RATE_PATTERN) > RATE_SCALE)
        .then(pl.format("{} is above 1: rates are yearly fractions (0.1825 means 18.25%)", col))
    )


def _unknown_ref(c: str, what: str, state: str, rows: str) -> pl.Expr:
    """Reason for a reference to a parent that neither the store nor this import (accepted) holds."""
    return (
        pl.when(pl.col(c).is_null())
        .then(pl.lit(None, pl.String))
        .when(pl.col(state) == "rejected")
        .then(pl.format(f"{what} '{{}}' was rejected ({{}})", pl.col(c), pl.col(rows)))
        .when(pl.col(state).is_null())
        .then(pl.format(f"unknown {what} '{{}}' (neither in the store nor in this import)", pl.col(c)))
    )


def _any_failure(checks: Sequence[tuple[str, pl.Expr]]) -> pl.Expr:
    return pl.any_horizontal([expr.is_not_null() for _, expr in checks]) if checks else pl.lit(False)


def _failures(
    frame: pl.DataFrame, checks: Sequence[tuple[str, pl.Expr]], order_from: int = 0, failing: pl.Series | None = None
) -> pl.DataFrame:
    """Every (row, field, reason) for which a (field, reason-or-null) check gives a reason.

    Only the failing rows (`failing`, or found by a first pass that keeps one boolean per row) get
    their reasons written out: a million good rows must not cost a million strings per check.
    """
    if frame.is_empty() or not checks:
        return pl.DataFrame(schema=ERRORS_SCHEMA)
    if failing is None:
        failing = frame.lazy().select(_any_failure(checks)).collect().to_series()
    frame = frame.filter(failing)
    if frame.is_empty():
        return pl.DataFrame(schema=ERRORS_SCHEMA)
    # Lazy, so the parsing shared by several checks (dates, amounts) is computed once (common subexpressions).
    wide = (
        frame.lazy()
        .select(pl.col("_row"), *[expr.cast(pl.String).alias(str(i)) for i, (_, expr) in enumerate(checks)])
        .collect()
    )
    names = pl.DataFrame(
        {
            "_check": [str(i) for i in range(len(checks))],
            "field": [f for f, _ in checks],
            "_order": [order_from + i for i in range(len(checks))],
        },
        schema={"_check": pl.String, "field": pl.String, "_order": pl.Int64},
    )
    long = wide.unpivot(index="_row", variable_name="_check", value_name="reason").drop_nulls("reason")
    return long.join(names, on="_check").select(ERRORS_SCHEMA.names())


def _without(frame: pl.DataFrame, errors: pl.DataFrame) -> pl.DataFrame:
    if errors.is_empty():
        return frame  # the usual case, and an anti-join of a million rows is not free
    return frame.join(errors.select("_row").unique(), on="_row", how="anti")


def _row_list(frame: pl.DataFrame, by: str | list[str], file: str | None, alias: str = "_rows") -> pl.DataFrame:
    """Per key, where its rows are: "borrowers.csv row 3", "instalments.csv rows 4, 5" (or without the file)."""
    prefix = f"{file} " if file else ""
    return (
        frame.group_by(by)
        .agg(pl.col("_row").sort().cast(pl.String).str.join(", ").alias("_r"), pl.len().alias("_n"))
        .select(
            by,
            pl.format(
                f"{prefix}{{}} {{}}",
                pl.when(pl.col("_n") > 1).then(pl.lit("rows")).otherwise(pl.lit("row")),
                pl.col("_r"),
            ).alias(alias),
        )
    )


def _duplicates(frame: pl.DataFrame, keys: Sequence[str], label: str) -> pl.DataFrame:
    """Every row whose key appears more than once in the file: which one is right cannot be known."""
    present = frame.drop_nulls(list(keys))
    # A cheap first pass over one joined text (exact for valid ids; the group-by below confirms on the keys).
    key = (
        pl.concat_str([pl.col(k).cast(pl.String) for k in keys], separator="\x00") if len(keys) > 1 else pl.col(keys[0])
    )
    present = present.filter(key.is_duplicated())
    groups = (
        present.group_by(list(keys))
        .agg(pl.col("_row").sort().cast(pl.String).str.join(", ").alias("_dup_rows"), pl.len().alias("_n"))
        .filter(pl.col("_n") > 1)
    )
    dup = present.join(groups, on=list(keys))
    return _failures(
        dup, [(keys[-1], pl.format(f"duplicate {label} in this file (rows {{}})", pl.col("_dup_rows")))], order_from=-1
    )


def _references(store_ids: pl.Series, accepted_ids: pl.Series, rejected: pl.DataFrame, id_col: str) -> pl.DataFrame:
    """Per referenced id: `_state` store | import | rejected (in this import) | null (unknown), `_rows` if rejected."""
    store = pl.DataFrame({id_col: store_ids.unique()}, schema={id_col: pl.String}).with_columns(_state=pl.lit("store"))
    imported = pl.DataFrame({id_col: accepted_ids.unique()}, schema={id_col: pl.String}).with_columns(
        _state=pl.lit("import")
    )
    bad = rejected.with_columns(_state=pl.lit("rejected"))
    known = pl.concat([store, imported.join(store, on=id_col, how="anti")], how="diagonal")
    bad = bad.join(known, on=id_col, how="anti")
    return pl.concat(
        [known.with_columns(_rows=pl.lit(None, pl.String)), bad.select(id_col, "_state", "_rows")],
        how="diagonal_relaxed",
    )


def _compare(
    valid: pl.DataFrame, store: pl.DataFrame, id_col: str, key_col: str | None, fields: Sequence[str]
) -> pl.DataFrame:
    """Join each valid row to the stored row with its id: `_status` new | same | changed, `_changed` field list."""
    key = key_col or "_stored"
    if store.is_empty():  # a first import: everything is new, nothing to compare
        return valid.with_columns(
            pl.lit(None, pl.Int64 if key_col else pl.Boolean).alias(key),
            *[pl.lit(None, store.schema[f]).alias("_old_" + f) for f in fields],
            _changed=pl.lit(""),
            _status=pl.lit("new"),
        )
    old = store.select(
        pl.col(id_col),
        (pl.col(key_col) if key_col else pl.lit(True)).alias(key),
        *[pl.col(f).alias("_old_" + f) for f in fields],
    )
    joined = valid.join(old, on=id_col, how="left")
    diff = [pl.when(pl.col(f).ne_missing(pl.col("_old_" + f))).then(pl.lit(f)) for f in fields]
    changed = pl.concat_str(diff, separator=", ", ignore_nulls=True) if diff else pl.lit("")
    return joined.with_columns(_changed=changed).with_columns(
        _status=pl.when(pl.col(key).is_null())
        .then(pl.lit("new"))
        .when(pl.col("_changed") == "")
        .then(pl.lit("same"))
        .otherwise(pl.lit("changed"))
    )


def _immutable_changes(compared: pl.DataFrame, table: str, id_col: str, fields: Sequence[str]) -> pl.DataFrame:
    """A stored row differing in a field that an import may not update is rejected, once per such field."""
    fixed = [f for f in fields if f not in UPDATABLE[table]]
    rows = compared.filter(pl.col("_status") == "changed")
    checks = [
        (
            f,
            pl.when(pl.col(f).ne_missing(pl.col("_old_" + f))).then(
                pl.format(IMMUTABLE_REASON[table], pl.col(id_col), pl.lit(f))
            ),
        )
        for f in fixed
    ]
    return _failures(rows, checks, order_from=900)


def _parse(
    frame: pl.DataFrame,
    table: str,
    checks: Sequence[tuple[str, pl.Expr]],
    exprs: dict[str, pl.Expr],
    carry: Sequence[str] = (),
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Type the rows (TYPED[table]) and find the rows failing a check in one lazy pass (parsing shared by both is
    done once); the reasons are then written for the failing rows only."""
    schema = TYPED[table]
    typed = (
        frame.lazy()
        .select(
            pl.col("_row"),
            *[exprs.get(c, pl.col(c)).cast(t).alias(c) for c, t in schema.items()],
            *[pl.col(c) for c in carry],
            _any_failure(checks).alias("_failing"),
        )
        .collect()
    )
    errors = _failures(frame, checks, failing=typed["_failing"])
    return errors, typed.drop("_failing")


# ---------------------------------------------------------------------------------------------- the files


def check_book(book: Book, store: StoreView, now: datetime) -> CheckedBook:
    """Validate every file of `book` (in dependency order) against itself and `store`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    checked: dict[str, CheckedFile] = {}
    products = _check_products(book.products, store)
    if products is not None:
        checked["products"] = products
    files = book.files
    product_refs = _refs_for(products, store.products, "product")
    borrowers = _maybe(files, "borrowers", lambda f: _check_borrowers(f, store, now))
    borrower_refs = _refs_for(borrowers, store.borrowers, "borrower_id")
    contacts = _maybe(files, "contact_points", lambda f: _check_contacts(f, store, borrower_refs))
    loans = _maybe(files, "loans", lambda f: _check_loans(f, store, borrower_refs, product_refs, products))
    loan_info = _loan_info(loans, store)
    instalments = _maybe(files, "instalments", lambda f: _check_instalments(f, store, loan_info))
    if loans is not None and instalments is not None:
        loans = _reject_loans_with_bad_schedule(loans, instalments, files["loans"])
        loan_info = _loan_info(loans, store)
    payments = _maybe(files, "payments", lambda f: _check_payments(f, store, loan_info, now))
    holds = _maybe(files, "holds", lambda f: _check_holds(f, store, borrower_refs, loan_info))
    for name, result in (
        ("borrowers", borrowers),
        ("contact_points", contacts),
        ("loans", loans),
        ("instalments", instalments),
        ("payments", payments),
        ("holds", holds),
    ):
        if result is not None:
            checked[name] = result
    return CheckedBook(checked)


def _maybe(files: dict[str, BookFile], table: str, check: Callable[[BookFile], CheckedFile]) -> CheckedFile | None:
    return check(files[table]) if table in files else None


def _raw(f: BookFile) -> pl.DataFrame:
    return f.frame.with_row_index("_row", offset=1).with_columns(pl.col("_row").cast(pl.Int64))


def _finish(f: BookFile, raw: pl.DataFrame, typed_ok: pl.DataFrame, errors: Sequence[pl.DataFrame]) -> CheckedFile:
    all_errors = (
        pl.concat([e.select(ERRORS_SCHEMA.names()) for e in errors]) if errors else pl.DataFrame(schema=ERRORS_SCHEMA)
    )
    all_errors = all_errors.unique(["_row", "field", "reason"], keep="first", maintain_order=True).sort(
        "_row", "_order"
    )
    rejected_raw = raw.join(all_errors.select("_row").unique(), on="_row", how="semi").select("_row", *f.frame.columns)
    # Only what the writer needs: helper columns would cost memory on every accepted row until the write.
    key = KEY_COLUMN.get(f.table)
    keep = ["_row", *TYPED[f.table].names(), "_status", "_changed", *([key] if key in typed_ok.columns else [])]
    accepted = _without(typed_ok, all_errors).select(keep)
    return CheckedFile(f.table, f.name, f.sha256, raw.height, rejected_raw, accepted, all_errors)


def _refs_for(result: CheckedFile | None, stored: pl.DataFrame, id_col: str) -> pl.DataFrame:
    accepted = result.accepted[id_col] if result is not None else pl.Series(id_col, [], pl.String)
    rejected = (
        _row_list(_rejected_raw(result).drop_nulls(id_col), id_col, result.file)
        if result is not None
        else pl.DataFrame(schema={id_col: pl.String, "_rows": pl.String})
    )
    return _references(stored[id_col], accepted, rejected, id_col)


def _rejected_raw(result: CheckedFile) -> pl.DataFrame:
    return result.raw


def _attach(frame: pl.DataFrame, refs: pl.DataFrame, on: str, prefix: str) -> pl.DataFrame:
    renamed = refs.select(
        pl.col(on), pl.col("_state").alias(f"{prefix}_state"), pl.col("_rows").alias(f"{prefix}_rows")
    )
    return frame.join(renamed, on=on, how="left")


def _check_products(pf: ProductsFile | None, store: StoreView) -> CheckedFile | None:
    if pf is None:
        return None
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    raw_rows: list[dict[str, Any]] = []
    for e in pf.entries:
        raw_rows.append(
            {
                "_row": e.row,
                "product": e.code,
                "currency": _str_or_none(e.raw.get("currency")),
                "description": _str_or_none(e.raw.get("description")),
                "conventions": json.dumps(e.raw.get("conventions"), ensure_ascii=False, default=str),
            }
        )
        problems: list[tuple[str, str]] = []
        for key in sorted(set(e.raw) - {"currency", "description", "conventions"}):
            problems.append((key, "unknown key; expected currency, description, conventions"))
        if not _matches(ID_PATTERN, e.code):
            problems.append(("product", f"not a valid product code ({ID_HELP})"))
        currency = e.raw.get("currency")
        if currency is None:
            problems.append(("currency", "required"))
        elif currency not in MINOR_UNIT_EXPONENT:
            known = ", ".join(sorted(MINOR_UNIT_EXPONENT))
            problems.append(("currency", f"unknown currency '{currency}'; known: {known}"))
        conventions = e.raw.get("conventions") or {}
        canonical = ""
        if not isinstance(conventions, dict):
            problems.append(("conventions", "must be a mapping of convention: value"))
        else:
            try:
                canonical = canonical_conventions(ProductConventions.from_dict(conventions))
            except ConventionError as exc:
                problems.append((f"conventions.{exc.key}", exc.reason))
        errors.extend({"_row": e.row, "field": f, "reason": r, "_order": i} for i, (f, r) in enumerate(problems))
        rows.append(
            {
                "_row": e.row,
                "product": e.code,
                "currency": _str_or_none(currency),
                "conventions": canonical,
                "description": _str_or_none(e.raw.get("description")),
            }
        )
    typed = pl.DataFrame(rows, schema={"_row": pl.Int64, **TYPED["products"]})
    error_frame = pl.DataFrame(errors, schema=ERRORS_SCHEMA)
    ok = _without(typed, error_frame)
    compared = _compare(ok, store.products, "product", None, ["currency", "conventions", "description"])
    changed = _immutable_changes(compared, "products", "product", ["currency", "conventions", "description"])
    raw = pl.DataFrame(
        raw_rows,
        schema={
            "_row": pl.Int64,
            "product": pl.String,
            "currency": pl.String,
            "description": pl.String,
            "conventions": pl.String,
        },
    )
    fake = BookFile("products", pf.name, pf.sha256, raw.drop("_row"))
    return _finish(fake, raw, compared.drop("_stored"), [error_frame, changed])


def canonical_conventions(conventions: ProductConventions) -> str:
    """One text per set of conventions, so a product's stored conventions compare exactly."""
    return json.dumps(conventions.to_dict(), sort_keys=True, separators=(",", ":"))


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _matches(pattern: str, value: str) -> bool:
    return re.match(pattern, value) is not None


def _check_borrowers(f: BookFile, store: StoreView, now: datetime) -> CheckedFile:
    raw = _raw(f)
    flags = pl.col("flags").str.split(";").list.eval(pl.element().str.strip_chars().str.to_lowercase())
    flags = flags.list.eval(pl.element().filter(pl.element() != ""))
    unknown_flags = flags.list.eval(pl.element().filter(~pl.element().is_in(list(FLAGS)))).list.join(", ")
    today = now.astimezone(UTC).date()
    checks = [
        ("borrower_id", _id_reason("borrower_id")),
        (
            "name",
            pl.when(pl.col("name").is_null())
            .then(pl.lit("required"))
            .when(pl.col("name").str.len_chars() > 200)
            .then(pl.lit("longer than 200 characters")),
        ),
        (
            "national_id",
            pl.when(pl.col("national_id").is_null())
            .then(pl.lit("required"))
            .when(pl.col("national_id").str.len_chars() > 64)
            .then(pl.lit("longer than 64 characters")),
        ),
        ("birth_date", _date_reason("birth_date", required=False)),
        (
            "birth_date",
            pl.when(_date("birth_date") > today)
            .then(pl.format("{} is in the future", pl.col("birth_date")))
            .when(_date("birth_date") < EARLIEST_BIRTH)
            .then(pl.format("{} is before 1900", pl.col("birth_date"))),
        ),
        (
            "language",
            pl.when(pl.col("language").is_null())
            .then(pl.lit("required"))
            .when(~pl.col("language").str.contains(LANGUAGE_PATTERN) | (pl.col("language").str.len_chars() > 16))
            .then(pl.format("not a language tag '{}' (e.g. zh-CN, en)", pl.col("language"))),
        ),
        (
            "flags",
            pl.when(unknown_flags != "").then(
                pl.format(f"unknown flag(s) {{}}; known: {', '.join(FLAGS)}", unknown_flags)
            ),
        ),
        (
            "region",
            pl.when(pl.col("region").is_not_null() & ~pl.col("region").str.contains(REGION_PATTERN)).then(
                pl.format("not a region '{}' (ISO 3166: CN, CN-31, US-CA, GB-ENG)", pl.col("region"))
            ),
        ),
    ]
    row_errors, typed = _parse(
        raw,
        "borrowers",
        checks,
        {
            "birth_date": _date("birth_date"),
            "flags": flags.list.unique().list.sort().list.join(",").fill_null(""),
        },
    )
    errors = [row_errors, _duplicates(raw, ["borrower_id"], "borrower_id")]
    fields = list(TYPED["borrowers"].names()[1:])
    compared = _compare(_without(typed, pl.concat(errors)), store.borrowers, "borrower_id", "borrower_key", fields)
    return _finish(f, raw, compared, errors)


def _check_contacts(f: BookFile, store: StoreView, borrower_refs: pl.DataFrame) -> CheckedFile:
    raw = _attach(_raw(f), borrower_refs, "borrower_id", "_b")
    phone = pl.col("value").str.replace_all(PHONE_SEPARATORS, "")
    value_ok = (
        pl.when(pl.col("kind") == "phone")
        .then(phone.str.contains(PHONE_PATTERN))
        .when(pl.col("kind") == "email")
        .then(pl.col("value").str.contains(EMAIL_PATTERN))
        .otherwise(pl.col("value").str.len_chars() <= 500)
    )
    value_help = {
        "phone": "not a phone number (6-15 digits, optionally starting with +, e.g. +8613800138000)",
        "email": "not an e-mail address",
        "address": "longer than 500 characters",
        "app": "longer than 500 characters",
    }
    lat = pl.col("latitude").cast(pl.Float64, strict=False)
    lon = pl.col("longitude").cast(pl.Float64, strict=False)
    checks = [
        ("contact_id", _id_reason("contact_id")),
        ("borrower_id", _id_reason("borrower_id")),
        ("borrower_id", _unknown_ref("borrower_id", "borrower", "_b_state", "_b_rows")),
        ("kind", _one_of_reason("kind", CONTACT_KINDS)),
        ("owner", _one_of_reason("owner", CONTACT_OWNERS)),
        (
            "value",
            pl.when(pl.col("value").is_null())
            .then(pl.lit("required"))
            .when(pl.col("kind").is_in(list(CONTACT_KINDS)) & ~value_ok)
            .then(pl.col("kind").replace_strict(value_help, default=None, return_dtype=pl.String)),
        ),
        (
            "latitude",
            pl.when(pl.col("latitude").is_not_null() & (lat.is_null() | ~lat.is_between(-90, 90)))
            .then(pl.format("not a latitude between -90 and 90: '{}'", pl.col("latitude")))
            .when(pl.col("latitude").is_null() & pl.col("longitude").is_not_null())
            .then(pl.lit("required when longitude is given")),
        ),
        (
            "longitude",
            pl.when(pl.col("longitude").is_not_null() & (lon.is_null() | ~lon.is_between(-180, 180)))
            .then(pl.format("not a longitude between -180 and 180: '{}'", pl.col("longitude")))
            .when(pl.col("longitude").is_null() & pl.col("latitude").is_not_null())
            .then(pl.lit("required when latitude is given")),
        ),
        (
            "time_zone",
            pl.when(pl.col("time_zone").is_null())
            .then(pl.lit("required"))
            .when(~pl.col("time_zone").is_in(TIME_ZONES))
            .then(pl.format("unknown time zone '{}' (an IANA name such as Asia/Shanghai)", pl.col("time_zone"))),
        ),
        ("valid", _bool_reason("valid")),
        ("consent", _bool_reason("consent")),
    ]
    row_errors, typed = _parse(
        raw,
        "contact_points",
        checks,
        {
            "value": pl.when(pl.col("kind") == "phone").then(phone).otherwise(pl.col("value")),
            "latitude": lat,
            "longitude": lon,
            "valid": _bool("valid"),
            "consent": _bool("consent"),
        },
    )
    errors = [row_errors, _duplicates(raw, ["contact_id"], "contact_id")]
    fields = list(TYPED["contact_points"].names()[1:])
    compared = _compare(_without(typed, pl.concat(errors)), store.contact_points, "contact_id", "contact_key", fields)
    errors.append(_immutable_changes(compared, "contact_points", "contact_id", fields))
    return _finish(f, raw, compared, errors)


def _check_loans(
    f: BookFile, store: StoreView, borrower_refs: pl.DataFrame, product_refs: pl.DataFrame, products: CheckedFile | None
) -> CheckedFile:
    currencies = pl.concat(
        [
            store.products.select("product", "currency"),
            products.accepted.select("product", "currency")
            if products is not None
            else pl.DataFrame(schema={"product": pl.String, "currency": pl.String}),
        ]
    ).unique("product", keep="last")
    raw = _attach(_raw(f), borrower_refs, "borrower_id", "_b")
    raw = _attach(raw, product_refs, "product", "_p")
    raw = raw.join(currencies.rename({"currency": "_product_currency"}), on="product", how="left").with_columns(
        _exp=_exponent(pl.col("currency"))
    )
    currency = pl.col("currency")
    checks = [
        ("loan_id", _id_reason("loan_id")),
        ("borrower_id", _id_reason("borrower_id")),
        ("borrower_id", _unknown_ref("borrower_id", "borrower", "_b_state", "_b_rows")),
        ("product", _required("product")),
        ("product", _unknown_ref("product", "product", "_p_state", "_p_rows")),
        (
            "currency",
            pl.when(currency.is_null())
            .then(pl.lit("required"))
            .when(_exponent(currency).is_null())
            .then(pl.format(f"unknown currency '{{}}'; known: {', '.join(sorted(MINOR_UNIT_EXPONENT))}", currency))
            .when(pl.col("_product_currency").is_not_null() & (currency != pl.col("_product_currency")))
            .then(
                pl.format(
                    "currency {} differs from product {}'s currency {}",
                    currency,
                    pl.col("product"),
                    pl.col("_product_currency"),
                )
            ),
        ),
        ("principal", _amount_reason("principal", currency, pl.col("_exp"), positive=True)),
        ("annual_rate", _rate_reason("annual_rate")),
        ("penalty_rate", _rate_reason("penalty_rate")),
        ("term", _int_reason("term", 1, MAX_TERM)),
        ("start_date", _date_reason("start_date")),
        ("method", _one_of_reason("method", METHODS)),
    ]
    row_errors, typed = _parse(
        raw,
        "loans",
        checks,
        {
            "principal": _scaled("principal", pl.col("_exp")),
            "annual_rate": _scaled("annual_rate", pl.lit(8, pl.Int64), RATE_PATTERN),
            "penalty_rate": _scaled("penalty_rate", pl.lit(8, pl.Int64), RATE_PATTERN),
            "term": _int("term"),
            "start_date": _date("start_date"),
        },
    )
    errors = [row_errors, _duplicates(raw, ["loan_id"], "loan_id")]
    fields = list(TYPED["loans"].names()[1:])
    compared = _compare(_without(typed, pl.concat(errors)), store.loans, "loan_id", "loan_key", fields)
    errors.append(_immutable_changes(compared, "loans", "loan_id", fields))
    return _finish(f, raw, compared, errors)


def _loan_info(loans: CheckedFile | None, store: StoreView) -> pl.DataFrame:
    """Per loan id the book may reference: where it comes from and what its children are checked against."""
    cols = ["loan_id", "borrower_id", "currency", "principal", "term", "start_date"]
    stored = store.loans.select(cols).with_columns(_state=pl.lit("store"), _rows=pl.lit(None, pl.String))
    if loans is None:
        return stored
    new = (
        loans.accepted.filter(pl.col("_status") == "new")
        .select(cols)
        .with_columns(_state=pl.lit("import"), _rows=pl.lit(None, pl.String))
    )
    bad = _row_list(_rejected_raw(loans).drop_nulls("loan_id"), "loan_id", loans.file)
    bad = (
        bad.join(stored, on="loan_id", how="anti")
        .join(new, on="loan_id", how="anti")
        .with_columns(_state=pl.lit("rejected"))
    )
    return pl.concat([stored, new, bad], how="diagonal_relaxed")


def _with_loan(raw: pl.DataFrame, loan_info: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """`raw` with `_l_state`, `_l_rows` and the loan's `columns` as `_l_<column>` (only those: a column costs
    memory on every row of a twelve-million-row schedule); `_l_exp` is the currency's minor-unit exponent."""
    wanted = ["_state", "_rows", *columns]
    info = loan_info.select("loan_id", *[pl.col(c).alias(f"_l_{c.lstrip('_')}") for c in wanted])
    if "currency" in columns:
        info = info.with_columns(_l_exp=_exponent(pl.col("_l_currency")))
    return raw.join(info, on="loan_id", how="left")


def _check_instalments(f: BookFile, store: StoreView, loan_info: pl.DataFrame) -> CheckedFile:
    raw = _with_loan(_raw(f), loan_info, ["currency", "principal", "term", "start_date"])
    currency, exp = pl.col("_l_currency"), pl.col("_l_exp")
    usable_loan = pl.col("_l_state").is_in(["store", "import"])
    checks = [
        ("loan_id", _id_reason("loan_id")),
        ("loan_id", _unknown_ref("loan_id", "loan", "_l_state", "_l_rows")),
        ("seq", _int_reason("seq", 1, MAX_TERM)),
        ("due_date", _date_reason("due_date")),
        (
            "due_date",
            pl.when(usable_loan & (_date("due_date") <= pl.col("_l_start_date"))).then(
                pl.format("{} is not after the loan's start_date {}", pl.col("due_date"), pl.col("_l_start_date"))
            ),
        ),
        ("principal", pl.when(usable_loan).then(_amount_reason("principal", currency, exp, positive=False))),
        ("interest", pl.when(usable_loan).then(_amount_reason("interest", currency, exp, positive=False))),
        ("fee", pl.when(usable_loan).then(_amount_reason("fee", currency, exp, positive=False, required=False))),
    ]
    row_errors, typed = _parse(
        raw,
        "instalments",
        checks,
        {
            "seq": _int("seq"),
            "due_date": _date("due_date"),
            "principal": _scaled("principal", exp),
            "interest": _scaled("interest", exp),
            "fee": _scaled("fee", exp).fill_null(0),
        },
        carry=("_l_state", "_l_principal", "_l_term", "_l_currency", "_l_exp"),
    )
    errors = [row_errors, _duplicates(raw, ["loan_id", "seq"], "instalment (loan_id, seq)")]
    ok = _without(typed, pl.concat(errors))

    # Schedules of loans already stored are never changed by an import: each row must equal the stored one.
    stored_rows = ok.filter(pl.col("_l_state") == "store")
    fields = ["due_date", "principal", "interest", "fee"]
    old = store.instalments.select(
        "loan_id", "seq", *[pl.col(c).alias("_old_" + c) for c in fields], _stored=pl.lit(True)
    )
    cmp = stored_rows.join(old, on=["loan_id", "seq"], how="left").with_columns(
        _changed=pl.concat_str(
            [pl.when(pl.col(c).ne_missing(pl.col("_old_" + c))).then(pl.lit(c)) for c in fields],
            separator=", ",
            ignore_nulls=True,
        )
    )
    errors.append(
        _failures(
            cmp,
            [
                (
                    "seq",
                    pl.when(pl.col("_stored").is_null())
                    .then(
                        pl.format(
                            "loan {}'s stored schedule has no instalment {}; schedules are not changed by an import",
                            pl.col("loan_id"),
                            pl.col("seq"),
                        )
                    )
                    .when(pl.col("_changed") != "")
                    .then(
                        pl.format(
                            "instalment {} of loan {} already imported with different values ({});"
                            " schedules are not changed by an import",
                            pl.col("seq"),
                            pl.col("loan_id"),
                            pl.col("_changed"),
                        )
                    ),
                )
            ],
            order_from=900,
        )
    )

    # A new loan's schedule is checked whole: seq 1..term, due dates rising, principal summing to the loan's.
    # (Only loans whose every row passed the row checks: a loan with a bad row is rejected whole below anyway.)
    row_bad = raw.join(pl.concat(errors).select("_row").unique(), on="_row").select("loan_id").unique()
    new_rows = ok.filter(pl.col("_l_state") == "import").join(row_bad, on="loan_id", how="anti").sort("loan_id", "seq")
    # Sorted by loan and seq, so "the previous instalment" is the previous row of the same loan (no window needed).
    same_loan = pl.col("loan_id") == pl.col("loan_id").shift(1)
    whole = new_rows.with_columns(
        _n=pl.len().over("loan_id"),
        _max_seq=pl.col("seq").max().over("loan_id"),
        _sum=pl.col("principal").sum().over("loan_id"),
        _prev_due=pl.when(same_loan).then(pl.col("due_date").shift(1)),
    )
    scale = pl.col("_l_exp")
    errors.append(
        _failures(
            whole,
            [
                (
                    "seq",
                    pl.when((pl.col("_n") != pl.col("_l_term")) | (pl.col("_max_seq") != pl.col("_l_term"))).then(
                        pl.format(
                            "loan {}'s schedule must number its instalments 1..{} (its term);"
                            " found {} rows up to seq {}",
                            pl.col("loan_id"),
                            pl.col("_l_term"),
                            pl.col("_n"),
                            pl.col("_max_seq"),
                        )
                    ),
                ),
                (
                    "due_date",
                    pl.when(pl.col("_prev_due").is_not_null() & (pl.col("due_date") <= pl.col("_prev_due"))).then(
                        pl.format(
                            "{} is not after the previous instalment's due_date {}",
                            pl.col("due_date"),
                            pl.col("_prev_due"),
                        )
                    ),
                ),
                (
                    "principal",
                    pl.when(pl.col("_sum") != pl.col("_l_principal")).then(
                        pl.format(
                            "instalment principals of loan {} sum to {}, not the loan principal {}",
                            pl.col("loan_id"),
                            _major(pl.col("_sum"), scale),
                            _major(pl.col("_l_principal"), scale),
                        )
                    ),
                ),
            ],
            order_from=800,
        )
    )

    # One bad row rejects the whole schedule of a new loan (a partial schedule cannot be booked).
    first = pl.concat(errors)
    bad_loans = _row_list(
        raw.join(first.select("_row").unique(), on="_row").filter(pl.col("_l_state") == "import"),
        "loan_id",
        None,
        "_bad_rows",
    )
    companions = _without(raw, first).join(bad_loans, on="loan_id")
    errors.append(
        _failures(
            companions,
            [
                (
                    "loan_id",
                    pl.format(
                        "the schedule of loan {} is rejected as a whole: see {}", pl.col("loan_id"), pl.col("_bad_rows")
                    ),
                )
            ],
            order_from=COMPANION_ORDER,
        )
    )
    accepted = ok.with_columns(
        _status=pl.when(pl.col("_l_state") == "store").then(pl.lit("same")).otherwise(pl.lit("new")),
        _changed=pl.lit(""),
    )
    return _finish(f, raw, accepted, errors)


def _major(minor: pl.Expr, exponent: pl.Expr) -> pl.Expr:
    """Non-negative integer minor units as exact major-unit text ("12000.00") for reasons, without floats."""
    ten = pl.lit(10, pl.Int64).pow(exponent)
    whole = (minor // ten).cast(pl.String)
    frac = (minor % ten + ten).cast(pl.String).str.slice(1)  # 5 fen at 2 decimals: 105 -> "05"
    return pl.when(exponent == 0).then(whole).otherwise(pl.concat_str([whole, pl.lit("."), frac]))


def _reject_loans_with_bad_schedule(loans: CheckedFile, instalments: CheckedFile, loans_file: BookFile) -> CheckedFile:
    # Point at the rows that caused the rejection, not at the rows rejected only as their companions.
    causes = instalments.errors.filter(pl.col("_order") < COMPANION_ORDER).select("_row").unique()
    bad = _row_list(
        instalments.raw.join(causes, on="_row").drop_nulls("loan_id"), "loan_id", instalments.file, "_bad_rows"
    )
    hit = loans.accepted.filter(pl.col("_status") == "new").join(bad, on="loan_id")
    if hit.is_empty():
        return loans
    extra = _failures(
        hit, [("loan_id", pl.format("its schedule was rejected ({})", pl.col("_bad_rows")))], order_from=1100
    )
    errors = pl.concat([loans.errors, extra]).sort("_row", "_order")
    newly = _raw(loans_file).join(extra.select("_row"), on="_row", how="semi")
    rejected_raw = pl.concat([loans.raw, newly.join(loans.raw.select("_row"), on="_row", how="anti")]).sort("_row")
    return CheckedFile(
        loans.table, loans.file, loans.sha256, loans.rows, rejected_raw, _without(loans.accepted, extra), errors
    )


def _check_payments(f: BookFile, store: StoreView, loan_info: pl.DataFrame, now: datetime) -> CheckedFile:
    raw = _with_loan(_raw(f), loan_info, ["currency", "start_date"])
    currency = pl.col("_l_currency")
    usable_loan = pl.col("_l_state").is_in(["store", "import"])
    booked_text = pl.col("booked_at").str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T")
    booked = booked_text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_unit="us", time_zone="UTC")
    checks = [
        ("payment_id", _id_reason("payment_id")),
        ("loan_id", _id_reason("loan_id")),
        ("loan_id", _unknown_ref("loan_id", "loan", "_l_state", "_l_rows")),
        ("value_date", _date_reason("value_date")),
        (
            "value_date",
            pl.when(usable_loan & (_date("value_date") < pl.col("_l_start_date"))).then(
                pl.format("{} is before the loan's start_date {}", pl.col("value_date"), pl.col("_l_start_date"))
            ),
        ),
        ("amount", pl.when(usable_loan).then(_amount_reason("amount", currency, pl.col("_l_exp"), positive=True))),
        ("reverses_payment_id", _id_reason("reverses_payment_id", required=False)),
        (
            "reverses_payment_id",
            pl.when(pl.col("reverses_payment_id") == pl.col("payment_id")).then(
                pl.lit("a payment cannot reverse itself")
            ),
        ),
        (
            "booked_at",
            pl.when(pl.col("booked_at").is_not_null() & booked.is_null()).then(
                pl.format("not an instant with a UTC offset '{}' (e.g. 2025-03-01T10:15:00+08:00)", pl.col("booked_at"))
            ),
        ),
    ]
    row_errors, typed = _parse(
        raw,
        "payments",
        checks,
        {
            "value_date": _date("value_date"),
            "amount": _scaled("amount", pl.col("_l_exp")),
            "booked_at": booked,
        },
    )
    errors = [row_errors, _duplicates(raw, ["payment_id"], "payment_id")]
    fields = list(TYPED["payments"].names()[1:])
    old_booked = store.payments.select("payment_id", pl.col("booked_at").alias("_was_booked"))
    # A blank booked_at means "when imported": it is not a difference from the stored instant.
    typed = (
        typed.join(old_booked, on="payment_id", how="left")
        .with_columns(booked_at=pl.coalesce("booked_at", "_was_booked", pl.lit(now).cast(pl.Datetime("us", "UTC"))))
        .drop("_was_booked")
    )

    # Plain payments first; reversals are then checked against what is stored or accepted.
    plain = _without(typed, pl.concat(errors)).filter(pl.col("reverses_payment_id").is_null())
    plain_cmp = _compare(plain, store.payments, "payment_id", "payment_key", fields)
    errors.append(_immutable_changes(plain_cmp, "payments", "payment_id", fields))
    plain_ok = _without(plain_cmp, pl.concat(errors))

    targets = _payment_targets(store, plain_ok, raw, pl.concat(errors), f.name)
    rev = _without(typed, pl.concat(errors)).filter(pl.col("reverses_payment_id").is_not_null())
    rev_cmp = _compare(rev, store.payments, "payment_id", "payment_key", fields)
    rev_cmp = rev_cmp.join(targets, on="reverses_payment_id", how="left")
    exp = _exponent(pl.col("_t_currency"))
    errors.append(
        _failures(
            rev_cmp,
            [
                (
                    "reverses_payment_id",
                    pl.when(pl.col("_t_state") == "rejected")
                    .then(pl.format("payment '{}' was rejected ({})", pl.col("reverses_payment_id"), pl.col("_t_rows")))
                    .when(pl.col("_t_state").is_null())
                    .then(
                        pl.format(
                            "unknown payment '{}' (neither in the store nor in this import)",
                            pl.col("reverses_payment_id"),
                        )
                    )
                    .when(pl.col("_t_is_reversal"))
                    .then(
                        pl.format(
                            "payment {} is itself a reversal: book a new payment instead of reversing a reversal",
                            pl.col("reverses_payment_id"),
                        )
                    )
                    .when(pl.col("_t_reversed_by").is_not_null() & (pl.col("_t_reversed_by") != pl.col("payment_id")))
                    .then(
                        pl.format(
                            "payment {} is already reversed by {}",
                            pl.col("reverses_payment_id"),
                            pl.col("_t_reversed_by"),
                        )
                    ),
                ),
                (
                    "loan_id",
                    pl.when(pl.col("_t_loan_id").is_not_null() & (pl.col("_t_loan_id") != pl.col("loan_id"))).then(
                        pl.format(
                            "reverses payment {} of loan {}: a reversal must be on the same loan",
                            pl.col("reverses_payment_id"),
                            pl.col("_t_loan_id"),
                        )
                    ),
                ),
                (
                    "amount",
                    pl.when(pl.col("_t_amount").is_not_null() & (pl.col("_t_amount") != pl.col("amount"))).then(
                        pl.format(
                            "{} differs from the reversed payment {}'s amount {}",
                            _major(pl.col("amount"), exp),
                            pl.col("reverses_payment_id"),
                            _major(pl.col("_t_amount"), exp),
                        )
                    ),
                ),
                (
                    "value_date",
                    pl.when(
                        pl.col("_t_value_date").is_not_null() & (pl.col("value_date") < pl.col("_t_value_date"))
                    ).then(
                        pl.format(
                            "{} is before the reversed payment {}'s value_date {}",
                            pl.col("value_date"),
                            pl.col("reverses_payment_id"),
                            pl.col("_t_value_date"),
                        )
                    ),
                ),
            ],
            order_from=500,
        )
    )
    errors.append(_immutable_changes(rev_cmp, "payments", "payment_id", fields))
    # Of several good reversals of one payment in this file, the first (in row order) counts; the rest reverse twice.
    good_rev = _without(rev_cmp, pl.concat(errors)).with_columns(
        _first=pl.col("payment_id").first().over("reverses_payment_id", order_by="_row"),
        _first_row=pl.col("_row").first().over("reverses_payment_id", order_by="_row"),
    )
    errors.append(
        _failures(
            good_rev,
            [
                (
                    "reverses_payment_id",
                    pl.when(pl.col("_first_row") != pl.col("_row")).then(
                        pl.format(
                            "payment {} is already reversed by {} (row {})",
                            pl.col("reverses_payment_id"),
                            pl.col("_first"),
                            pl.col("_first_row"),
                        )
                    ),
                )
            ],
            order_from=600,
        )
    )
    columns = plain_ok.select(pl.all().exclude("^_old_.*$")).columns
    accepted = pl.concat([plain_ok.select(columns), rev_cmp.select(columns)], how="vertical")
    return _finish(f, raw, accepted, errors)


def _payment_targets(
    store: StoreView, plain_ok: pl.DataFrame, raw: pl.DataFrame, errors: pl.DataFrame, file: str
) -> pl.DataFrame:
    """What a reversal may point at: stored payments and this file's accepted plain payments (`_t_*` columns)."""
    stored = store.payments
    reversed_by = (
        stored.filter(pl.col("reverses_payment_id").is_not_null())
        .group_by("reverses_payment_id")
        .agg(pl.col("payment_id").first().alias("_t_reversed_by"))
        .rename({"reverses_payment_id": "payment_id"})
    )
    base = stored.join(store.loans.select("loan_id", "currency"), on="loan_id", how="left").select(
        "payment_id",
        "loan_id",
        "amount",
        "value_date",
        "currency",
        pl.col("reverses_payment_id").is_not_null().alias("is_reversal"),
        pl.lit("store").alias("state"),
    )
    new = (
        plain_ok.filter(pl.col("_status") == "new")
        .join(raw.select("_row", pl.col("_l_currency").alias("currency")), on="_row")
        .select(
            "payment_id",
            "loan_id",
            "amount",
            "value_date",
            "currency",
            pl.lit(False).alias("is_reversal"),
            pl.lit("import").alias("state"),
        )
    )
    # A reversal in this file is a known target too, so reversing it is refused as such, not as unknown.
    in_file_reversals = (
        raw.filter(pl.col("reverses_payment_id").is_not_null())
        .select("payment_id", pl.lit(True).alias("is_reversal"), pl.lit("import").alias("state"))
        .drop_nulls("payment_id")
        .unique("payment_id")
    )
    new = pl.concat([new, in_file_reversals.join(new, on="payment_id", how="anti")], how="diagonal_relaxed")
    rejected = _row_list(
        raw.join(errors.select("_row").unique(), on="_row").drop_nulls("payment_id"), "payment_id", file, "rows"
    ).with_columns(state=pl.lit("rejected"))
    known = pl.concat([base, new.join(base, on="payment_id", how="anti")], how="diagonal_relaxed")
    rejected = rejected.join(known, on="payment_id", how="anti")
    everything = pl.concat([known, rejected], how="diagonal_relaxed").join(reversed_by, on="payment_id", how="left")
    return everything.select(
        pl.col("payment_id").alias("reverses_payment_id"),
        *[
            pl.col(c).alias("_t_" + c)
            for c in ("loan_id", "amount", "value_date", "currency", "is_reversal", "state", "rows")
        ],
        pl.col("_t_reversed_by"),
    )


def _check_holds(f: BookFile, store: StoreView, borrower_refs: pl.DataFrame, loan_info: pl.DataFrame) -> CheckedFile:
    raw = _attach(_raw(f), borrower_refs, "borrower_id", "_b")
    raw = _with_loan(raw, loan_info, ["borrower_id"])
    checks = [
        ("hold_id", _id_reason("hold_id")),
        ("borrower_id", _id_reason("borrower_id")),
        ("borrower_id", _unknown_ref("borrower_id", "borrower", "_b_state", "_b_rows")),
        ("loan_id", _id_reason("loan_id", required=False)),
        ("loan_id", _unknown_ref("loan_id", "loan", "_l_state", "_l_rows")),
        (
            "loan_id",
            pl.when(pl.col("_l_borrower_id").is_not_null() & (pl.col("_l_borrower_id") != pl.col("borrower_id"))).then(
                pl.format(
                    "loan {} belongs to borrower {}, not {}",
                    pl.col("loan_id"),
                    pl.col("_l_borrower_id"),
                    pl.col("borrower_id"),
                )
            ),
        ),
        ("kind", _one_of_reason("kind", HOLD_KINDS)),
        ("start_date", _date_reason("start_date")),
        ("end_date", _date_reason("end_date", required=False)),
        (
            "end_date",
            pl.when(_date("end_date") < _date("start_date")).then(
                pl.format("{} is before start_date {}", pl.col("end_date"), pl.col("start_date"))
            ),
        ),
        ("pauses_clock", _bool_reason("pauses_clock")),
        ("pauses_outreach", _bool_reason("pauses_outreach")),
    ]
    row_errors, typed = _parse(
        raw,
        "holds",
        checks,
        {
            "start_date": _date("start_date"),
            "end_date": _date("end_date"),
            "pauses_clock": _bool("pauses_clock"),
            "pauses_outreach": _bool("pauses_outreach"),
        },
    )
    errors = [row_errors, _duplicates(raw, ["hold_id"], "hold_id")]
    fields = list(TYPED["holds"].names()[1:])
    compared = _compare(_without(typed, pl.concat(errors)), store.holds, "hold_id", "hold_key", fields)
    errors.append(_immutable_changes(compared, "holds", "hold_id", fields))
    return _finish(f, raw, compared, errors)
