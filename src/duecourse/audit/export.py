"""Audit export as JSON Lines, and its offline verification: a regulator needs only the file and this code."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, Any

from sqlalchemy import Connection

from duecourse.audit.chain import GENESIS_HASH, ChainedEntry, first_break
from duecourse.audit.log import entries


def export_jsonl(conn: Connection, out: IO[str], start: datetime | None = None, end: datetime | None = None) -> int:
    """Write entries with `start <= at < end` (aware instants; None = open) one per line; return how many."""
    n = 0
    for row in entries(conn, start, end):
        out.write(json.dumps(ChainedEntry(**row).as_export(), ensure_ascii=False, sort_keys=True) + "\n")
        n += 1
    return n


def verify_jsonl(lines: Iterable[str], head: tuple[int, str] | None = None) -> tuple[int, tuple[int, str] | None]:
    """(entries read up to the first break, first break or None) for an exported file.

    An export of a time window starts mid-chain, so the first entry's `prev_hash` is taken as the
    anchor (its own hash is still checked) and every later entry must link to the one before. `head`
    (seq, hash), when published separately, also proves that nothing after the last entry was cut off.
    """
    count = 0
    problem: str | None = None

    def parsed() -> Iterator[dict[str, Any]]:
        nonlocal count, problem
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as err:
                entry = err.msg
            if not isinstance(entry, dict):
                problem = f"line {n} is not an audit entry ({entry!r:.60})"
                return
            count += 1
            yield entry

    stream = parsed()
    first = next(stream, None)
    if first is None:
        return 0, None if problem is None else (1, problem)
    try:
        start = (int(first["seq"]) - 1, str(first["prev_hash"]))
    except (KeyError, TypeError, ValueError):
        start = (0, GENESIS_HASH)  # first_break names the malformed first entry
    brk = first_break(itertools.chain([first], stream), head, start)
    if brk is None and problem is not None:
        brk = (start[0] + count + 1, problem)  # the unreadable line stands where the next entry should be
    return count, brk
