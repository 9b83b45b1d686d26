"""Appending to and reading the stored audit chain, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from duecourse.adapters.db import tables as t
from duecourse.audit.chain import GENESIS_HASH, AuditRecord, as_utc, chain, first_break


def append(conn: Connection, records: Sequence[AuditRecord], at: datetime) -> int:
    """Chain `records` after the current head and insert them in the caller's transaction.

    The head row is read with FOR UPDATE (PostgreSQL) / under SQLite's write lock (make_engine begins
    IMMEDIATE), so concurrent writers serialise and the chain never forks. Returns the new head seq.
    """
    if at.tzinfo is None:
        raise ValueError("audit instants must be timezone-aware")
    if not records:
        return _head(conn)[0]
    head_seq, head_hash = _locked_head(conn)
    rows = [e.as_row() for e in chain(records, as_utc(at), head_seq, head_hash)]
    for i in range(0, len(rows), 20_000):
        conn.execute(insert(t.audit_entry), rows[i : i + 20_000])
    last = rows[-1]
    conn.execute(update(t.audit_head).where(t.audit_head.c.id == 1).values(seq=last["seq"], hash=last["hash"]))
    return int(last["seq"])


def _locked_head(conn: Connection) -> tuple[int, str]:
    head = _head_row(conn, lock=True)
    if head is None:
        # The first append creates the head row. ON CONFLICT DO NOTHING makes a concurrent first append
        # wait for this one and then lock the row it made, instead of starting a second chain.
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(dialect_insert(t.audit_head).values(id=1, seq=0, hash=GENESIS_HASH).on_conflict_do_nothing())
        head = _head_row(conn, lock=True)
        assert head is not None
    return head


def _head_row(conn: Connection, lock: bool = False) -> tuple[int, str] | None:
    q = select(t.audit_head.c.seq, t.audit_head.c.hash).where(t.audit_head.c.id == 1)
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).first()
    return None if row is None else (int(row.seq), str(row.hash))


def _head(conn: Connection) -> tuple[int, str]:
    return _head_row(conn) or (0, GENESIS_HASH)


def entries(
    conn: Connection, start: datetime | None = None, end: datetime | None = None
) -> Generator[dict[str, Any], None, None]:
    """Stored entries in seq order, `at` as aware UTC; `start` inclusive, `end` exclusive."""
    q = select(t.audit_entry).order_by(t.audit_entry.c.seq)
    # SQLite compares instants as naive UTC text, so bounds must be UTC too.
    if start is not None:
        q = q.where(t.audit_entry.c.at >= _bound(start))
    if end is not None:
        q = q.where(t.audit_entry.c.at < _bound(end))
    result = conn.execution_options(yield_per=10_000).execute(q)
    try:
        for row in result.mappings():
            entry = dict(row)
            entry["at"] = as_utc(entry["at"])
            yield entry
    finally:
        result.close()  # a reader that stops early must not leave PostgreSQL's server-side cursor open


def _bound(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("audit time bounds must be timezone-aware")
    return as_utc(at)


def verify(conn: Connection) -> tuple[int, tuple[int, str] | None]:
    """(number of entries checked, first break or None)."""
    count = 0

    def counted(stream: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        nonlocal count
        for e in stream:
            count += 1
            yield e

    head = _head_row(conn)
    with closing(entries(conn)) as stream:
        brk = first_break(counted(stream), head)
    return count, brk
