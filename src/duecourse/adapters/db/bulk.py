"""Bulk frame I/O for the set-based batch path: ADBC reads straight to Arrow, writes inside the caller's transaction.

Reads open their own ADBC connection, so they see committed data only (the cycle reads before it
writes). Writes go through the DB-API connection under the caller's SQLAlchemy transaction, so data
and its audit entries commit or roll back together (docs/adr/0003-bulk-io-adbc.md).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import adbc_driver_postgresql.dbapi as adbc_pg
import adbc_driver_sqlite.dbapi as adbc_sqlite
import polars as pl
from sqlalchemy import JSON, Boolean, Connection, Date, DateTime, Engine, Integer, LargeBinary, Table, exc, text
from sqlalchemy.engine import URL

# Rows converted at a time (CSV text for COPY, tuples for executemany): bounds memory on big frames.
_CHUNK = 250_000
_SQLITE_BUSY_MS = 60_000  # the same wait as make_engine's SQLite timeout
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S%.6f"  # SQLAlchemy's storage format for DateTime on SQLite (naive UTC)


def adbc_uri(url: URL) -> str:
    """The ADBC connection string for a SQLAlchemy URL (a file path for SQLite, a libpq URI for PostgreSQL)."""
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("bulk reads need a SQLite file: an in-memory database is private to its connection")
        # Read-only URI: a mistyped path fails instead of creating an empty database.
        return f"file:{quote(url.database)}?mode=ro"
    if url.get_backend_name() == "postgresql":
        return url.set(drivername="postgresql").render_as_string(hide_password=False)
    raise ValueError(f"no bulk reader for {url.get_backend_name()!r}")


def read_frame(source: Engine | Connection, sql: str, schema: pl.Schema) -> pl.DataFrame:
    """Run `sql` and return its rows as a frame with exactly `schema` (columns picked by name, cast to type).

    Given a Connection, the rows come through it, inside the caller's transaction, one Python row at a time:
    for a few loans read while the caller writes (where ADBC must not open a SQLite file, below). Given an
    Engine, they come through ADBC straight to Arrow: the batch path.

    SQLite keeps dates as ISO text and booleans as 0/1; both become `pl.Date` / `pl.Boolean` here. The
    driver delivers rows in batches of about a thousand; the frame is made contiguous once here, since
    every later step (casts, joins, `to_numpy`) is much slower over thousands of small chunks.
    Never call it for a SQLite file while this process holds a write transaction on it: ADBC bundles its
    own SQLite library, whose file locks the sqlite3 module's connections do not see, so opening the file
    can reset the write-ahead log index under the writer (a bus error, or worse).
    """
    if isinstance(source, Connection):
        result = source.execute(text(sql))
        rows = [tuple(r) for r in result]
        return _conform(pl.DataFrame(rows, schema=list(result.keys()), orient="row", infer_schema_length=None), schema)
    engine = source
    uri = adbc_uri(engine.url)
    if engine.dialect.name == "sqlite":
        with adbc_sqlite.connect(uri) as con, con.cursor() as cur:
            # Readers side by side may briefly contend for the WAL index: wait as SQLAlchemy's connections do.
            cur.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_MS}")
            cur.execute(f"SELECT * FROM ({sql}) LIMIT 0")
            _check_columns(schema, [d[0] for d in cur.description or ()])
            cur.execute(_sqlite_typed(sql, schema))
            raw = pl.from_arrow(cur.fetch_arrow_table(), rechunk=True)
        assert isinstance(raw, pl.DataFrame)
        raw = raw.slice(1)  # drop the type-setting first row, see _sqlite_typed
    else:
        with adbc_pg.connect(uri) as con, con.cursor() as cur:
            cur.execute(sql)
            raw = pl.from_arrow(cur.fetch_arrow_table(), rechunk=True)
        assert isinstance(raw, pl.DataFrame)
    return _conform(raw, schema)


def _sqlite_typed(sql: str, schema: pl.Schema) -> str:
    """Prefix the result with one row of typed placeholders.

    The ADBC SQLite driver infers each column's type from the first batch of rows and fails when a
    later batch disagrees (a column NULL for the first 1,024 rows, text after). A first row of the
    right storage class fixes the inferred type; picking columns by name guards against a SELECT
    whose column order differs from the schema.
    """
    placeholders = ", ".join(f"{_sqlite_placeholder(t)} AS {_quote(c)}" for c, t in schema.items())
    names = ", ".join(_quote(c) for c in schema.names())
    return f"SELECT {placeholders} UNION ALL SELECT {names} FROM ({sql})"


def _sqlite_placeholder(dtype: pl.DataType) -> str:
    if dtype.is_integer() or dtype == pl.Boolean:
        return "0"
    if dtype.is_float():
        return "0.0"
    if dtype == pl.Binary:
        return "x''"
    return "''"  # text: strings, ISO dates and instants, comma-separated lists


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check_columns(schema: pl.Schema, columns: list[str]) -> None:
    missing = [c for c in schema.names() if c not in columns]
    if missing:
        raise KeyError(f"query result lacks columns {missing}")


def _conform(raw: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    _check_columns(schema, raw.columns)
    if raw.height == 0:
        return pl.DataFrame(schema=schema)
    return raw.select([_cast(pl.col(c), raw.schema[c], t).alias(c) for c, t in schema.items()])


def _cast(col: pl.Expr, source: pl.DataType, target: pl.DataType) -> pl.Expr:
    if isinstance(source, pl.BaseExtension):
        # PostgreSQL json/jsonb arrive as Arrow's JSON extension over text: continue with the text.
        storage = source.ext_storage()
        return _cast(col.ext.storage(), storage() if isinstance(storage, type) else storage, target)
    if source == target:
        return col
    if source == pl.String:
        if target == pl.Date:
            return col.str.to_date("%Y-%m-%d")
        if isinstance(target, pl.Datetime):
            # SQLite holds instants as naive UTC text.
            parsed = col.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit=target.time_unit)
            if target.time_zone is None:
                return parsed
            return parsed.dt.replace_time_zone("UTC").dt.convert_time_zone(target.time_zone)
        if target == pl.List(pl.String):
            return pl.when(col == "").then(pl.lit([], dtype=target)).otherwise(col.str.split(","))
    if target == pl.Boolean and source.is_integer():
        return col != 0
    if target == pl.Date and isinstance(source, pl.Datetime):
        return col.dt.date()
    if isinstance(target, pl.Datetime) and isinstance(source, pl.Datetime) and target.time_zone and source.time_zone:
        return col.dt.convert_time_zone(target.time_zone).dt.cast_time_unit(target.time_unit)
    return col.cast(target)


def write_frame(conn: Connection, table: Table, frame: pl.DataFrame, on_conflict_do_nothing: bool = False) -> int:
    """Insert the rows of `frame` into `table` inside `conn`'s transaction; return the number inserted.

    Only the frame's columns are written (the rest take their defaults). `on_conflict_do_nothing`
    skips rows that collide with a unique key, so a replay inserts nothing twice. A frame column of
    `pl.List(pl.String)` into a text column is stored comma-separated and sorted; JSON columns get
    `json.dumps` of each value, as SQLAlchemy would write them; nulls are SQL NULL.
    """
    unknown = [c for c in frame.columns if c not in table.c]
    if unknown:
        raise KeyError(f"{table.name} has no columns {unknown}")
    if frame.height == 0:
        return 0
    if not conn.in_transaction():
        conn.begin()  # the caller commits, exactly as SQLAlchemy's autobegin would have it
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    target = conn.dialect.identifier_preparer.format_table(table)
    columns = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in frame.columns)
    try:
        if conn.dialect.name == "sqlite":
            return _write_sqlite(dbapi_conn, target, columns, _for_sqlite(table, frame), on_conflict_do_nothing)
        if conn.dialect.name == "postgresql":
            pg_frame = _for_postgresql(table, frame)
            inserted = _write_postgresql(dbapi_conn, target, columns, pg_frame, on_conflict_do_nothing)
            _advance_key_sequence(dbapi_conn, table, frame)
            return inserted
    except conn.dialect.loaded_dbapi.Error as e:
        # The same exception classes (IntegrityError, ...) as a SQLAlchemy execute would raise.
        raise exc.DBAPIError.instance(f"bulk insert into {table.name}", None, e, conn.dialect.loaded_dbapi.Error) from e
    raise ValueError(f"no bulk writer for {conn.dialect.name!r}")


def _write_sqlite(dbapi_conn: Any, target: str, columns: str, frame: pl.DataFrame, on_conflict_do_nothing: bool) -> int:
    marks = ", ".join("?" * frame.width)
    # ON CONFLICT DO NOTHING (not INSERT OR IGNORE): only uniqueness conflicts are skipped; a NOT NULL
    # violation still fails, as it does on PostgreSQL.
    tail = " ON CONFLICT DO NOTHING" if on_conflict_do_nothing else ""
    cur = dbapi_conn.cursor()
    try:
        rows = (row for chunk in _chunks(frame) for row in chunk.rows())  # chunked: bounded memory, fast rows()
        cur.executemany(f"INSERT INTO {target} ({columns}) VALUES ({marks}){tail}", rows)
        return int(cur.rowcount)
    finally:
        cur.close()


def _write_postgresql(
    dbapi_conn: Any, target: str, columns: str, frame: pl.DataFrame, on_conflict_do_nothing: bool
) -> int:
    with dbapi_conn.cursor() as cur:
        if not on_conflict_do_nothing:
            _copy(cur, target, columns, frame)
            return frame.height
        # COPY cannot skip conflicts: stage the rows in a temporary table, then INSERT ... ON CONFLICT.
        staging = f"_bulk_{uuid.uuid4().hex[:12]}"
        cur.execute(f"CREATE TEMPORARY TABLE {staging} ON COMMIT DROP AS SELECT {columns} FROM {target} WITH NO DATA")
        _copy(cur, staging, columns, frame)
        cur.execute(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {staging} ON CONFLICT DO NOTHING")
        inserted = int(cur.rowcount)
        cur.execute(f"DROP TABLE {staging}")
        return inserted


def _copy(cur: Any, target: str, columns: str, frame: pl.DataFrame) -> None:
    # CSV with every text value quoted: an unquoted empty field is NULL, a quoted one the empty string.
    with cur.copy(f"COPY {target} ({columns}) FROM STDIN (FORMAT csv)") as copy:
        for chunk in _chunks(frame):
            copy.write(chunk.write_csv(include_header=False, quote_style="non_numeric"))


def _chunks(frame: pl.DataFrame) -> Iterator[pl.DataFrame]:
    for offset in range(0, frame.height, _CHUNK):
        yield frame.slice(offset, _CHUNK)


def _advance_key_sequence(dbapi_conn: Any, table: Table, frame: pl.DataFrame) -> None:
    """Explicit surrogate keys bypass PostgreSQL's sequence; move it past them so later inserts don't collide."""
    key = table.autoincrement_column
    if key is None or key.name not in frame.columns:
        return
    with dbapi_conn.cursor() as cur:
        cur.execute("SELECT pg_get_serial_sequence(%s, %s)", (table.name, key.name))
        sequence = cur.fetchone()[0]
        # Only ever forward: keys another transaction reserved with nextval must never be handed out again.
        highest = f"SELECT max({_quote(key.name)}) AS m FROM {_quote(table.name)}"
        cur.execute(
            f"SELECT setval(%s, GREATEST(m, (SELECT last_value FROM {sequence})))"
            f" FROM ({highest}) s WHERE m IS NOT NULL",
            (sequence,),
        )


def _for_sqlite(table: Table, frame: pl.DataFrame) -> pl.DataFrame:
    """Values the sqlite3 module binds the way SQLAlchemy stores them: ISO text dates, naive UTC instants."""
    out: list[pl.Expr | pl.Series] = []
    for name, dtype in frame.schema.items():
        kind = table.c[name].type
        col = pl.col(name)
        expr: pl.Expr | pl.Series
        if isinstance(kind, JSON):
            expr = _json_text(frame, name)
        elif isinstance(kind, DateTime) and isinstance(dtype, pl.Datetime):
            expr = _utc(col, dtype).dt.strftime(_SQLITE_DATETIME)
        elif isinstance(kind, Date) and dtype in (pl.Date, pl.Datetime):
            expr = col.cast(pl.Date).dt.strftime("%Y-%m-%d")
        elif isinstance(kind, Boolean) and dtype == pl.Boolean:
            expr = col.cast(pl.Int8)
        else:
            expr = _common(col, dtype, kind)
        out.append(expr.alias(name))
    return frame.select(out)


def _for_postgresql(table: Table, frame: pl.DataFrame) -> pl.DataFrame:
    """Values whose CSV text PostgreSQL reads back exactly."""
    out: list[pl.Expr | pl.Series] = []
    for name, dtype in frame.schema.items():
        kind = table.c[name].type
        col = pl.col(name)
        expr: pl.Expr | pl.Series
        if isinstance(kind, JSON):
            expr = _json_text(frame, name)
        elif isinstance(dtype, pl.Datetime):
            expr = _utc(col, dtype).dt.strftime("%Y-%m-%d %H:%M:%S%.6f+00")
        elif dtype == pl.Binary or isinstance(kind, LargeBinary):
            expr = pl.lit("\\x") + col.cast(pl.Binary).bin.encode("hex")
        elif isinstance(kind, Integer) and dtype == pl.Boolean:
            expr = col.cast(pl.Int8)
        else:
            expr = _common(col, dtype, kind)
        out.append(expr.alias(name))
    return frame.select(out)


def _common(col: pl.Expr, dtype: pl.DataType, kind: Any) -> pl.Expr:
    if dtype == pl.List(pl.String):
        return col.list.sort().list.join(",")
    return col


def _utc(col: pl.Expr, dtype: pl.Datetime) -> pl.Expr:
    # A naive instant in a frame is taken as UTC, the only zone the store keeps.
    return col.dt.convert_time_zone("UTC") if dtype.time_zone else col


def _json_text(frame: pl.DataFrame, name: str) -> pl.Series:
    return pl.Series(name, [None if v is None else json.dumps(v) for v in frame[name].to_list()], dtype=pl.String)
