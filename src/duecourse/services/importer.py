"""Import a loan-book directory into the store: good rows written, bad rows reported, all in one transaction.

`import_book` reads every file first (an unreadable file raises `BookFormatError` before anything is
written), looks up what the store already holds for the ids the book mentions, validates set-based
(services/importer_validation.py), then writes in one transaction: new rows in bulk (executemany of
tuples on SQLite, COPY on PostgreSQL), allowed updates row by row with an audit entry each, the
rejected rows (to `rejected_row` and a rejects CSV) and one audit entry per file. External ids are the
keys, so importing the same file twice adds nothing.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    cast,
    func,
    insert,
    literal,
    select,
    update,
)

from duecourse.adapters.bookfiles import Book, read_book
from duecourse.adapters.crypto import FieldCipher
from duecourse.adapters.db import tables as t
from duecourse.adapters.db.bulk import write_frame
from duecourse.audit.chain import AuditRecord
from duecourse.audit.log import append
from duecourse.domain.conventions import ProductConventions
from duecourse.domain.errors import RowError
from duecourse.domain.money import RATE_SCALE
from duecourse.domain.verification import CodeSigner
from duecourse.services.importer_validation import (
    ID_COLUMN,
    TYPED,
    CheckedBook,
    CheckedFile,
    StoreView,
    canonical_conventions,
    check_book,
    schema_of,
    stored_schema,
)
from duecourse.services.verification import index_identities

ORIGIN = "import"
CHUNK = 100_000
# Personal data in a rejected row's raw copy is stored encrypted too (file table -> columns).
PII_COLUMNS: dict[str, tuple[str, ...]] = {"borrowers": ("name", "national_id"), "contact_points": ("value",)}
ENTITY = {
    "products": "product",
    "borrowers": "borrower",
    "contact_points": "contact_point",
    "loans": "loan",
    "instalments": "instalment",
    "payments": "payment",
    "holds": "hold",
}


@dataclass(frozen=True)
class FileReport:
    file: str
    sha256: str
    rows: int
    accepted: int  # valid rows: inserted + updated + unchanged
    rejected: int  # rows with at least one error
    inserted: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class ImportReport:
    import_key: int
    files: list[FileReport]
    errors: list[RowError]
    rejects_path: Path | None
    generated_schedules: int = 0  # new loans given a schedule by the ledger because the book had none
    updated_ids: dict[str, list[str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, for benchmarks

    @property
    def accepted(self) -> int:
        return sum(f.accepted for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    @property
    def exit_status(self) -> int:
        """0: every row accepted; 1: some rejected (see `rejects_path`). Unusable input raises instead (status 2)."""
        return 0 if self.rejected == 0 else 1


def import_book(
    engine: Engine,
    book_dir: Path,
    rejects_dir: Path,
    cipher: FieldCipher,
    actor: str,
    now: datetime,
    signer: CodeSigner | None = None,
) -> ImportReport:
    """Import the book in `book_dir`; raises BookFormatError (nothing written) if a file cannot be used at all.

    With the verification `signer`, the identity index the /verify page's scam alerts name debtors by is
    rebuilt for every borrower whose details or contact points the import wrote, in the same transaction.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    marks = [("read", time.perf_counter())]
    book = read_book(Path(book_dir))
    rejects_path: Path | None = None
    try:
        with engine.begin() as conn:
            marks.append(("look up", time.perf_counter()))
            store = load_store_view(conn, book, cipher)
            marks.append(("validate", time.perf_counter()))
            checked = check_book(book, store, now)
            source = str(book.directory)
            del book  # the strings as read are no longer needed (rejected rows keep their own): free them
            marks.append(("write", time.perf_counter()))
            errors = checked.row_errors()
            rejects_path = _rejects_path(Path(rejects_dir), now) if errors else None
            accepted = sum(f.accepted.height for f in checked.files.values())
            rejected = sum(f.rejected_rows for f in checked.files.values())
            import_key = int(
                conn.execute(
                    insert(t.import_run)
                    .values(
                        started_at=now,
                        source=source,
                        accepted=accepted,
                        rejected=rejected,
                        rejects_path=None if rejects_path is None else str(rejects_path),
                    )
                    .returning(t.import_run.c.import_key)
                ).scalar_one()
            )
            writer = _Writer(conn, cipher, store, now)
            generated = writer.write(checked)
            if signer is not None:
                index_identities(conn, cipher, signer, _written_borrowers(conn, checked))
            marks.append(("rejects and audit", time.perf_counter()))
            _record_rejects(conn, checked, import_key, cipher)
            if rejects_path is not None:
                _write_rejects_csv(checked, rejects_path)
            reports = [_file_report(f) for f in checked.files.values()]
            append(conn, _audit_records(actor, import_key, reports, writer.updated, checked), now)
            marks.append(("commit", time.perf_counter()))
    except BaseException:
        if rejects_path is not None:  # the rows it lists were never imported: it must not suggest otherwise
            rejects_path.unlink(missing_ok=True)
        raise
    marks.append(("done", time.perf_counter()))
    timings = {name: round(b - a, 3) for (name, a), (_, b) in itertools.pairwise(marks)}
    return ImportReport(
        import_key, reports, errors, rejects_path, generated, {k: v for k, v in writer.updated.items() if v}, timings
    )


def _written_borrowers(conn: Connection, checked: CheckedBook) -> list[int]:
    """Keys of the borrowers whose own row or contact points this import added or changed."""
    written = [
        f.accepted.filter(pl.col("_status") != "same").get_column("borrower_id")
        for name, f in checked.files.items()
        if name in ("borrowers", "contact_points")
    ]
    ids = pl.concat(written).unique().sort().to_list() if written else []
    b = t.borrower
    return [
        key
        for i in range(0, len(ids), 10_000)
        for key in conn.execute(select(b.c.borrower_key).where(b.c.borrower_id.in_(ids[i : i + 10_000]))).scalars()
    ]


# ---------------------------------------------------------------------------------------------- reading the store


def load_store_view(conn: Connection, book: Book, cipher: FieldCipher) -> StoreView:
    """What the store holds for the ids `book` mentions, shaped like the validated frames.

    A table with no rows (a first import) is not looked up at all.
    """
    files = book.files

    def ids(*pairs: tuple[str, str], extra: pl.Series | None = None) -> list[str]:
        columns = [files[table].frame[column].rename("id") for table, column in pairs if table in files]
        if extra is not None:
            columns.append(extra.rename("id"))
        return pl.concat(columns).drop_nulls().unique().sort().to_list() if columns else []

    def empty(table: str) -> pl.DataFrame:
        return pl.DataFrame(schema=stored_schema(table))

    products = pl.DataFrame(
        [
            (r[0], r[1], _canonical(r[2]), r[3])
            for r in conn.execute(
                select(t.product.c.code, t.product.c.currency, t.product.c.conventions, t.product.c.description)
            )
        ],
        schema=TYPED["products"],
        orient="row",
    )
    payments = empty("payments")
    if "payments" in files and _has_rows(conn, t.payment):
        payments = _payments(
            conn,
            ids(("payments", "payment_id"), ("payments", "reverses_payment_id")),
            ids(("payments", "reverses_payment_id")),
        )
    loans, instalments = empty("loans"), empty("instalments")
    if _has_rows(conn, t.loan):
        loans = _loans(
            conn,
            ids(
                ("loans", "loan_id"),
                ("instalments", "loan_id"),
                ("payments", "loan_id"),
                ("holds", "loan_id"),
                extra=payments["loan_id"],
            ),
        )
        if "instalments" in files:
            instalments = _instalments(
                conn, loans.join(files["instalments"].frame.select("loan_id").unique(), on="loan_id")
            )
    borrowers = empty("borrowers")
    if _has_rows(conn, t.borrower):
        in_file = set(ids(("borrowers", "borrower_id")))
        borrowers = _borrowers(
            conn,
            ids(
                ("borrowers", "borrower_id"),
                ("contact_points", "borrower_id"),
                ("loans", "borrower_id"),
                ("holds", "borrower_id"),
                extra=loans["borrower_id"],
            ),
            in_file,
            cipher,
        )
    contacts = empty("contact_points")
    if "contact_points" in files and _has_rows(conn, t.contact_point):
        contacts = _contacts(conn, ids(("contact_points", "contact_id")), cipher)
    holds = empty("holds")
    if "holds" in files and _has_rows(conn, t.hold):
        holds = _holds(conn, ids(("holds", "hold_id")))
    return StoreView(
        products=products,
        borrowers=borrowers,
        contact_points=contacts,
        loans=loans,
        instalments=instalments,
        payments=payments,
        holds=holds,
    )


def _canonical(conventions: Any) -> str:
    return canonical_conventions(ProductConventions.from_dict(conventions))


def _has_rows(conn: Connection, table: Table) -> bool:
    return conn.execute(select(literal(1)).select_from(table).limit(1)).first() is not None


def _rows_where_in(conn: Connection, stmt_for: Any, column: Column[Any], values: Sequence[Any]) -> list[Any]:
    """Rows whose `column` is in `values`, as plain tuples, by a join with a temporary table of the values.

    The values never enter the SQL text, and the driver's tuples are taken as they come: building a SQLAlchemy
    row per stored instalment would dominate the time of a re-import.
    """
    if not values:
        return []  # an empty table (a first import) needs no look-up at all
    ids = Table("import_lookup", MetaData(), Column("id", column.type), prefixes=["TEMPORARY"])
    ids.create(conn)
    try:
        write_frame(conn, ids, pl.DataFrame({"id": list(values)}))
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"ANALYZE {ids.name}")  # without statistics it plans a nested loop: 3x slower
        stmt = stmt_for().where(column.in_(select(ids.c.id)))
        sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql)
            return list(cursor.fetchall())
        finally:
            cursor.close()
    finally:
        ids.drop(conn)


def _wire(columns: dict[str, Any]) -> list[Any]:
    """Select dates, instants and booleans as text/integers: Polars parses them in bulk, far faster than per value."""
    out: list[Any] = []
    for name, col in columns.items():
        if isinstance(col.type, Date | DateTime):
            out.append(cast(col, String).label(name))
        elif isinstance(col.type, Boolean):
            out.append(cast(col, Integer).label(name))
        else:
            out.append(col.label(name))
    return out


def _typed_frame(rows: list[Any], schema: pl.Schema) -> pl.DataFrame:
    """Rows selected through `_wire` -> a frame of `schema` (instants in UTC; SQLite stores them naive in UTC)."""
    wire = {
        n: pl.String if d in (pl.Date,) or isinstance(d, pl.Datetime) else (pl.Int64 if d == pl.Boolean else d)
        for n, d in schema.items()
    }
    frame = pl.DataFrame(rows, schema=wire, orient="row")
    exprs = []
    for name, dtype in schema.items():
        col = pl.col(name)
        if dtype == pl.Date:
            exprs.append(col.str.slice(0, 10).str.to_date("%Y-%m-%d"))
        elif isinstance(dtype, pl.Datetime):
            exprs.append(
                pl.coalesce(
                    col.str.to_datetime("%Y-%m-%d %H:%M:%S%.f%#z", strict=False, time_zone="UTC", time_unit="us"),
                    col.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="us").dt.replace_time_zone(
                        "UTC"
                    ),
                ).alias(name)
            )
        elif dtype == pl.Boolean:
            exprs.append(col != 0)
        else:
            exprs.append(col)
    return frame.select(exprs)


def _borrowers(conn: Connection, ids: list[str], decrypt_for: set[str], cipher: FieldCipher) -> pl.DataFrame:
    b = t.borrower
    cols = {
        "borrower_key": b.c.borrower_key,
        "borrower_id": b.c.borrower_id,
        "name_enc": b.c.name_enc,
        "national_id_enc": b.c.national_id_enc,
        "birth_date": b.c.birth_date,
        "language": b.c.language,
        "flags": b.c.flags,
        "region": b.c.region,
    }
    rows = _rows_where_in(conn, lambda: select(*_wire(cols)), b.c.borrower_id, ids)
    # Only rows the book may update are decrypted: the others are needed as references alone.
    clear = [r[1] in decrypt_for for r in rows]
    names = [cipher.decrypt(bytes(r[2]), "borrower.name_enc") if c else None for r, c in zip(rows, clear, strict=True)]
    nids = [
        cipher.decrypt(bytes(r[3]), "borrower.national_id_enc") if c else None for r, c in zip(rows, clear, strict=True)
    ]
    schema = stored_schema("borrowers")
    plain = [(r[0], r[1], None, None, *r[4:]) for r in rows]
    return _typed_frame(plain, schema).with_columns(
        pl.Series("name", names, pl.String), pl.Series("national_id", nids, pl.String)
    )


def _contacts(conn: Connection, ids: list[str], cipher: FieldCipher) -> pl.DataFrame:
    c, b = t.contact_point, t.borrower
    cols = {
        "contact_key": c.c.contact_key,
        "contact_id": c.c.contact_id,
        "borrower_id": b.c.borrower_id,
        "kind": c.c.kind,
        "owner": c.c.owner,
        "value": c.c.value_enc,
        "latitude": c.c.latitude,
        "longitude": c.c.longitude,
        "time_zone": c.c.time_zone,
        "valid": c.c.valid,
        "consent": c.c.consent,
    }
    rows = _rows_where_in(conn, lambda: select(*_wire(cols)).join_from(c, b), c.c.contact_id, ids)
    plain = [(*r[:5], cipher.decrypt(bytes(r[5]), "contact_point.value_enc"), *r[6:]) for r in rows]
    return _typed_frame(plain, stored_schema("contact_points"))


def _loans(conn: Connection, ids: list[str]) -> pl.DataFrame:
    lo, b = t.loan, t.borrower
    cols = {
        "loan_key": lo.c.loan_key,
        "loan_id": lo.c.loan_id,
        "borrower_id": b.c.borrower_id,
        **{
            n: lo.c[n]
            for n in ("product", "currency", "principal", "annual_rate", "penalty_rate", "term", "start_date", "method")
        },
    }
    rows = _rows_where_in(conn, lambda: select(*_wire(cols)).join_from(lo, b), lo.c.loan_id, ids)
    return _typed_frame(rows, stored_schema("loans"))


def _instalments(conn: Connection, loans: pl.DataFrame) -> pl.DataFrame:
    i = t.instalment
    cols = {"loan_key": i.c.loan_key, **{n: i.c[n] for n in ("seq", "due_date", "principal", "interest", "fee")}}
    rows = _rows_where_in(conn, lambda: select(*_wire(cols)), i.c.loan_key, loans["loan_key"].to_list())
    schema = schema_of({"loan_key": pl.Int64, **{k: v for k, v in TYPED["instalments"].items() if k != "loan_id"}})
    frame = _typed_frame(rows, schema)
    return frame.join(loans.select("loan_key", "loan_id"), on="loan_key").select(TYPED["instalments"].names())


def _payments(conn: Connection, ids: list[str], reversed_ids: list[str]) -> pl.DataFrame:
    """Stored payments by id, and every stored reversal of those the book reverses (so "reversed twice" is seen).

    Looked up by keys without joins: on SQLite the joins would cost more than the rows themselves.
    """
    p = t.payment
    cols = {
        n: p.c[n]
        for n in ("payment_key", "payment_id", "loan_key", "value_date", "amount", "reverses_payment_key", "booked_at")
    }
    schema = schema_of(
        {
            "payment_key": pl.Int64,
            "payment_id": pl.String,
            "loan_key": pl.Int64,
            "value_date": pl.Date,
            "amount": pl.Int64,
            "reverses_payment_key": pl.Int64,
            "booked_at": pl.Datetime("us", "UTC"),
        }
    )
    found = _typed_frame(_rows_where_in(conn, lambda: select(*_wire(cols)), p.c.payment_id, ids), schema)
    targets = found.filter(pl.col("payment_id").is_in(reversed_ids))["payment_key"].to_list()
    reversals = _typed_frame(
        _rows_where_in(conn, lambda: select(*_wire(cols)), p.c.reverses_payment_key, targets), schema
    )
    rows = pl.concat([found, reversals.join(found, on="payment_key", how="anti")])
    missing = rows.select(pl.col("reverses_payment_key").drop_nulls()).join(
        rows.select(pl.col("payment_key").alias("reverses_payment_key")), on="reverses_payment_key", how="anti"
    )
    known = pl.concat(
        [
            rows.select("payment_key", "payment_id"),
            _typed_frame(
                _rows_where_in(
                    conn,
                    lambda: select(p.c.payment_key, p.c.payment_id),
                    p.c.payment_key,
                    missing["reverses_payment_key"].to_list(),
                ),
                schema_of({"payment_key": pl.Int64, "payment_id": pl.String}),
            ),
        ]
    )
    loans = _typed_frame(
        _rows_where_in(
            conn,
            lambda: select(t.loan.c.loan_key, t.loan.c.loan_id),
            t.loan.c.loan_key,
            rows["loan_key"].unique().to_list(),
        ),
        schema_of({"loan_key": pl.Int64, "loan_id": pl.String}),
    )
    return (
        rows.join(loans, on="loan_key", how="left")
        .join(
            known.rename({"payment_key": "reverses_payment_key", "payment_id": "reverses_payment_id"}),
            on="reverses_payment_key",
            how="left",
        )
        .select("payment_key", *TYPED["payments"].names())
    )


def _holds(conn: Connection, ids: list[str]) -> pl.DataFrame:
    h, b, lo = t.hold, t.borrower, t.loan
    cols = {
        "hold_key": h.c.hold_key,
        "hold_id": h.c.hold_id,
        "borrower_id": b.c.borrower_id,
        "loan_id": lo.c.loan_id,
        **{n: h.c[n] for n in ("kind", "start_date", "end_date", "pauses_clock", "pauses_outreach")},
    }
    rows = _rows_where_in(
        conn,
        lambda: select(*_wire(cols)).join_from(h, b).outerjoin(lo, h.c.loan_key == lo.c.loan_key),
        h.c.hold_id,
        ids,
    )
    return _typed_frame(rows, stored_schema("holds"))


# ---------------------------------------------------------------------------------------------- writing


class _Writer:
    """Writes one checked book inside the caller's transaction, keeping id -> key maps for the children."""

    def __init__(self, conn: Connection, cipher: FieldCipher, store: StoreView, now: datetime) -> None:
        self.conn, self.cipher, self.store, self.now = conn, cipher, store, now
        self.updated: dict[str, list[str]] = {}
        self.keys: dict[str, pl.DataFrame] = {
            "borrowers": store.borrowers.select("borrower_id", "borrower_key"),
            "loans": store.loans.select("loan_id", "loan_key"),
            "payments": store.payments.select("payment_id", "payment_key"),
        }

    def write(self, book: CheckedBook) -> int:
        files = book.files
        if "products" in files:
            self._products(files["products"])
        if "borrowers" in files:
            self._borrowers(files["borrowers"])
        if "contact_points" in files:
            self._contacts(files["contact_points"])
        generated = 0
        if "loans" in files:
            self._loans(files["loans"])
            generated = self._instalments(files["loans"], files.get("instalments"))
        elif "instalments" in files:
            generated = self._instalments(None, files["instalments"])
        if "payments" in files:
            self._payments(files["payments"])
        if "holds" in files:
            self._holds(files["holds"])
        return generated

    def _new(self, f: CheckedFile) -> pl.DataFrame:
        return f.accepted.filter(pl.col("_status") == "new").sort("_row")

    def _changed(self, f: CheckedFile) -> pl.DataFrame:
        changed = f.accepted.filter(pl.col("_status") == "changed").sort("_row")
        self.updated[f.table] = changed[ID_COLUMN[f.table]].to_list()
        return changed

    def _with_key(
        self,
        frame: pl.DataFrame,
        table: str,
        id_col: str,
        key_col: str,
        alias: str | None = None,
        on: str | None = None,
    ) -> pl.DataFrame:
        keys = self.keys[table].rename({id_col: on or id_col, key_col: alias or key_col})
        return frame.join(keys, on=on or id_col, how="left")

    def _products(self, f: CheckedFile) -> None:
        new = self._new(f)
        rows = [
            {
                "code": r["product"],
                "currency": r["currency"],
                "conventions": json.loads(r["conventions"]),
                "description": r["description"],
            }
            for r in new.iter_rows(named=True)
        ]
        if rows:
            self.conn.execute(insert(t.product), rows)
        changed = self._changed(f)
        if changed.height:
            self.conn.execute(
                update(t.product).where(t.product.c.code == bindparam("k")).values(description=bindparam("d")),
                [{"k": c, "d": d} for c, d in changed.select("product", "description").iter_rows()],
            )

    def _borrowers(self, f: CheckedFile) -> None:
        new = self._new(f)
        keyed = new.with_columns(borrower_key=_reserve_keys(self.conn, t.borrower, new.height))
        frame = keyed.select(
            "borrower_key",
            "borrower_id",
            pl.Series("name_enc", self.cipher.encrypt_many(keyed["name"], "borrower.name_enc"), pl.Binary),
            pl.Series(
                "national_id_enc", self.cipher.encrypt_many(keyed["national_id"], "borrower.national_id_enc"), pl.Binary
            ),
            "birth_date",
            "language",
            "flags",
            "region",
        )
        write_frame(self.conn, t.borrower, frame)
        self.keys["borrowers"] = pl.concat([self.keys["borrowers"], keyed.select("borrower_id", "borrower_key")])
        changed = self._changed(f)
        if changed.height:
            b = t.borrower
            self.conn.execute(
                update(b)
                .where(b.c.borrower_key == bindparam("k"))
                .values(
                    name_enc=bindparam("n"),
                    national_id_enc=bindparam("i"),
                    birth_date=bindparam("bd"),
                    language=bindparam("la"),
                    flags=bindparam("fl"),
                    region=bindparam("re"),
                ),
                [
                    {
                        "k": r["borrower_key"],
                        "n": self.cipher.encrypt(r["name"], "borrower.name_enc"),
                        "i": self.cipher.encrypt(r["national_id"], "borrower.national_id_enc"),
                        "bd": r["birth_date"],
                        "la": r["language"],
                        "fl": r["flags"],
                        "re": r["region"],
                    }
                    for r in changed.iter_rows(named=True)
                ],
            )

    def _contacts(self, f: CheckedFile) -> None:
        new = self._with_key(self._new(f), "borrowers", "borrower_id", "borrower_key")
        keyed = new.with_columns(contact_key=_reserve_keys(self.conn, t.contact_point, new.height))
        frame = keyed.select(
            "contact_key",
            "contact_id",
            "borrower_key",
            "kind",
            "owner",
            pl.Series("value_enc", self.cipher.encrypt_many(keyed["value"], "contact_point.value_enc"), pl.Binary),
            "latitude",
            "longitude",
            "time_zone",
            "valid",
            "consent",
        )
        write_frame(self.conn, t.contact_point, frame)
        changed = self._changed(f)
        if changed.height:
            c = t.contact_point
            self.conn.execute(
                update(c)
                .where(c.c.contact_key == bindparam("k"))
                .values(
                    kind=bindparam("ki"),
                    owner=bindparam("ow"),
                    value_enc=bindparam("v"),
                    latitude=bindparam("la"),
                    longitude=bindparam("lo"),
                    time_zone=bindparam("tz"),
                    valid=bindparam("va"),
                    consent=bindparam("co"),
                ),
                [
                    {
                        "k": r["contact_key"],
                        "ki": r["kind"],
                        "ow": r["owner"],
                        "v": self.cipher.encrypt(r["value"], "contact_point.value_enc"),
                        "la": r["latitude"],
                        "lo": r["longitude"],
                        "tz": r["time_zone"],
                        "va": r["valid"],
                        "co": r["consent"],
                    }
                    for r in changed.iter_rows(named=True)
                ],
            )

    def _loans(self, f: CheckedFile) -> None:
        new = self._with_key(self._new(f), "borrowers", "borrower_id", "borrower_key")
        keyed = new.with_columns(loan_key=_reserve_keys(self.conn, t.loan, new.height))
        write_frame(
            self.conn,
            t.loan,
            keyed.select(
                "loan_key",
                "loan_id",
                "borrower_key",
                "product",
                "currency",
                "principal",
                "annual_rate",
                "penalty_rate",
                "term",
                "start_date",
                "method",
            ),
        )
        self.keys["loans"] = pl.concat([self.keys["loans"], keyed.select("loan_id", "loan_key")])

    def _instalments(self, loans: CheckedFile | None, f: CheckedFile | None) -> int:
        given = (
            self._new(f).select(TYPED["instalments"].names())
            if f is not None
            else pl.DataFrame(schema=TYPED["instalments"])
        )
        generated = pl.DataFrame(schema=TYPED["instalments"])
        if loans is not None:
            need = self._new(loans).join(given.select("loan_id").unique(), on="loan_id", how="anti")
            generated = self._generate(need)
        rows = pl.concat([given, generated]) if generated.height else given
        frame = self._with_key(rows, "loans", "loan_id", "loan_key").select(
            "loan_key", "seq", "due_date", "principal", "interest", "fee"
        )
        write_frame(self.conn, t.instalment, frame)
        return int(generated["loan_id"].n_unique())

    def _generate(self, loans: pl.DataFrame) -> pl.DataFrame:
        """Schedules for new loans the book gave none: the ledger's amortisation, one loan at a time."""
        if loans.is_empty():
            return pl.DataFrame(schema=TYPED["instalments"])
        from duecourse.ledger.schedule import generate_schedule

        conventions = self._conventions()
        out: list[tuple[Any, ...]] = []
        for loan_id, principal, rate, term, start, method, product in loans.select(
            "loan_id", "principal", "annual_rate", "term", "start_date", "method", "product"
        ).iter_rows():
            for i in generate_schedule(
                principal, Decimal(rate) / RATE_SCALE, term, start, method, conventions[product]
            ):
                out.append((loan_id, i.seq, i.due_date, i.principal, i.interest, i.fee))
        return pl.DataFrame(out, schema=TYPED["instalments"], orient="row")

    def _conventions(self) -> dict[str, ProductConventions]:
        rows = self.conn.execute(select(t.product.c.code, t.product.c.conventions)).all()
        return {code: ProductConventions.from_dict(conv) for code, conv in rows}

    def _payments(self, f: CheckedFile) -> None:
        new = self._with_key(self._new(f), "loans", "loan_id", "loan_key")
        keyed = new.with_columns(payment_key=_reserve_keys(self.conn, t.payment, new.height))
        self.keys["payments"] = pl.concat([self.keys["payments"], keyed.select("payment_id", "payment_key")])
        keyed = self._with_key(
            keyed, "payments", "payment_id", "payment_key", alias="reverses_payment_key", on="reverses_payment_id"
        )
        columns = ["payment_key", "payment_id", "loan_key", "value_date", "amount", "reverses_payment_key", "booked_at"]
        # A reversal's foreign key needs the reversed payment in place first.
        write_frame(self.conn, t.payment, keyed.filter(pl.col("reverses_payment_id").is_null()).select(columns))
        write_frame(self.conn, t.payment, keyed.filter(pl.col("reverses_payment_id").is_not_null()).select(columns))

    def _holds(self, f: CheckedFile) -> None:
        new = self._with_key(self._new(f), "borrowers", "borrower_id", "borrower_key")
        new = self._with_key(new, "loans", "loan_id", "loan_key")
        keyed = new.with_columns(hold_key=_reserve_keys(self.conn, t.hold, new.height))
        write_frame(
            self.conn,
            t.hold,
            keyed.select(
                "hold_key",
                "hold_id",
                "borrower_key",
                "loan_key",
                "kind",
                "start_date",
                "end_date",
                "pauses_clock",
                "pauses_outreach",
            ),
        )
        changed = self._changed(f)
        if changed.height:
            h = t.hold
            self.conn.execute(
                update(h)
                .where(h.c.hold_key == bindparam("k"))
                .values(
                    kind=bindparam("ki"),
                    start_date=bindparam("sd"),
                    end_date=bindparam("ed"),
                    pauses_clock=bindparam("pc"),
                    pauses_outreach=bindparam("po"),
                ),
                [
                    {
                        "k": r["hold_key"],
                        "ki": r["kind"],
                        "sd": r["start_date"],
                        "ed": r["end_date"],
                        "pc": r["pauses_clock"],
                        "po": r["pauses_outreach"],
                    }
                    for r in changed.iter_rows(named=True)
                ],
            )


def _reserve_keys(conn: Connection, table: Table, n: int) -> pl.Series:
    """`n` fresh surrogate keys, taken before the insert so children can refer to them without reading back."""
    key = next(c for c in table.primary_key.columns)
    if n == 0:
        return pl.Series(key.name, [], pl.Int64)
    if conn.dialect.name == "postgresql":
        rows = (
            conn.exec_driver_sql(
                f"SELECT nextval(pg_get_serial_sequence('{table.name}', '{key.name}')) FROM generate_series(1, {n})"
            )
            .scalars()
            .all()
        )
        return pl.Series(key.name, rows, pl.Int64)
    # SQLite: the transaction began IMMEDIATE, so no other writer can take keys past MAX meanwhile.
    start = int(conn.execute(select(func.coalesce(func.max(key), 0))).scalar_one())
    return pl.int_range(start + 1, start + n + 1, dtype=pl.Int64, eager=True).alias(key.name)


def _rejects_path(directory: Path, now: datetime) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    path, n = directory / f"rejects-{stamp}.csv", 1
    while path.exists():
        n += 1
        path = directory / f"rejects-{stamp}-{n}.csv"
    return path


def _rejected_lines(f: CheckedFile) -> pl.DataFrame:
    """One line per (row, field, reason) with the row as read: file, row, field, reason, then the raw columns."""
    raw_columns = [c for c in f.raw.columns if not c.startswith("_")]
    return (
        f.errors.sort("_row", "_order")
        .join(f.raw.select("_row", *raw_columns), on="_row", how="left")
        .select(pl.lit(f.file).alias("file"), pl.col("_row").alias("row"), "field", "reason", *raw_columns)
    )


def _write_rejects_csv(book: CheckedBook, path: Path) -> None:
    lines = pl.concat([_rejected_lines(f) for f in book.files.values() if f.errors.height], how="diagonal_relaxed")
    # The rejects carry personal data in clear (as the book did): readable by the owner only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        lines.write_csv(fh)


def _record_rejects(conn: Connection, book: CheckedBook, import_key: int, cipher: FieldCipher) -> None:
    rows: list[dict[str, Any]] = []
    for f in book.files.values():
        if not f.errors.height:
            continue
        pii = PII_COLUMNS.get(f.table, ())
        for line in _rejected_lines(f).iter_rows(named=True):
            raw = {k: v for k, v in line.items() if k not in ("file", "row", "field", "reason") and v is not None}
            for column in pii:
                if column in raw:
                    token = cipher.encrypt(raw[column], f"rejected_row.raw.{column}")
                    raw[column] = "enc:" + base64.b64encode(token).decode("ascii")
            rows.append(
                {
                    "import_key": import_key,
                    "file": line["file"],
                    "row": line["row"],
                    "field": line["field"],
                    "reason": line["reason"],
                    "raw": raw,
                }
            )
    for i in range(0, len(rows), CHUNK):
        conn.execute(insert(t.rejected_row), rows[i : i + CHUNK])


def _file_report(f: CheckedFile) -> FileReport:
    status = f.accepted["_status"].value_counts()
    counts = dict(status.select("_status", "count").iter_rows())
    return FileReport(
        f.file,
        f.sha256,
        f.rows,
        f.accepted.height,
        f.rejected_rows,
        counts.get("new", 0),
        counts.get("changed", 0),
        counts.get("same", 0),
    )


def _audit_records(
    actor: str, import_key: int, reports: list[FileReport], updated: dict[str, list[str]], book: CheckedBook
) -> list[AuditRecord]:
    records = []
    for r in reports:
        action = "import.accepted" if r.rejected == 0 else "import.rejected"
        records.append(
            AuditRecord(
                actor,
                ORIGIN,
                action,
                "import_run",
                f"{import_key}:{r.file}",
                f"{r.accepted} of {r.rows} rows of {r.file} accepted, {r.rejected} rejected",
                {
                    "file": r.file,
                    "sha256": r.sha256,
                    "rows": r.rows,
                    "accepted": r.accepted,
                    "rejected": r.rejected,
                    "inserted": r.inserted,
                    "updated": r.updated,
                    "unchanged": r.unchanged,
                    "import_key": import_key,
                },
            )
        )
    for table, ids in updated.items():
        f = book.files[table]
        fields = dict(
            f.accepted.filter(pl.col("_status") == "changed").select(ID_COLUMN[table], "_changed").iter_rows()
        )
        for entity_id in ids:
            # Field names only: the values may be personal data, which never enters the audit log in clear.
            records.append(
                AuditRecord(
                    actor,
                    ORIGIN,
                    f"{ENTITY[table]}.updated",
                    ENTITY[table],
                    entity_id,
                    f"changed by {f.file}",
                    {"fields": fields[entity_id].split(", "), "import_key": import_key},
                )
            )
    return records
