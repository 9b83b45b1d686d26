"""Appending to and reading the stored audit chain, inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator, Sequence

from sqlalchemy import Connection, insert, select, update

from duecourse.adapters.db import tables as t
from duecourse.audit.chain import GENESIS_HASH, AuditRecord, chain, first_break


def append(conn: Connection, records: Sequence[AuditRecord], at: datetime) -> int:
    """Chain `records` after the current head and insert them in the caller's transaction.

    The head row is read with FOR UPDATE (PostgreSQL) / under SQLite's write lock, so concurrent
    writers serialise and the chain never forks. Returns the new head seq.
    """
    if not records:
        return _head(conn)[0]
    at = at.astimezone(timezone.utc)
    head_seq, head_hash = _head(conn, lock=True)
    rows = [e.as_row() for e in chain(records, at, head_seq, head_hash)]
    for i in range(0, len(rows), 20_000):
        conn.execute(insert(t.audit_entry), rows[i : i + 20_000])
    last = rows[-1]
    if head_seq == 0 and head_hash == GENESIS_HASH and not _head_exists(conn):
        conn.execute(insert(t.audit_head).values(id=1, seq=last["seq"], hash=last["hash"]))
    else:
        conn.execute(update(t.audit_head).where(t.audit_head.c.id == 1).values(seq=last["seq"], hash=last["hash"]))
    return int(last["seq"])


def _head_exists(conn: Connection) -> bool:
    return conn.execute(select(t.audit_head.c.id).where(t.audit_head.c.id == 1)).first() is not None


def _head(conn: Connection, lock: bool = False) -> tuple[int, str]:
    q = select(t.audit_head.c.seq, t.audit_head.c.hash).where(t.audit_head.c.id == 1)
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).first()
    return (0, GENESIS_HASH) if row is None else (int(row.seq), str(row.hash))


def entries(conn: Connection, start: datetime | None = None, end: datetime | None = None) -> Iterator[dict[str, Any]]:
    q = select(t.audit_entry).order_by(t.audit_entry.c.seq)
    if start is not None:
        q = q.where(t.audit_entry.c.at >= start)
    if end is not None:
        q = q.where(t.audit_entry.c.at < end)
    for row in conn.execution_options(yield_per=10_000).execute(q).mappings():
        yield dict(row)


def verify(conn: Connection) -> tuple[int, tuple[int, str] | None]:
    """(number of entries checked, first break or None)."""
    count = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal count
        for e in entries(conn):
            count += 1
            yield e

    head = conn.execute(select(t.audit_head.c.seq, t.audit_head.c.hash).where(t.audit_head.c.id == 1)).first()
    brk = first_break(counted(), None if head is None else (int(head.seq), str(head.hash)))
    return count, brk
