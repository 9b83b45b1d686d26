"""Pure hash-chain arithmetic: the canonical encoding of an entry and the hash that links it to the previous one.

An entry's hash is SHA-256 over `prev_hash` and the canonical JSON of its fields (sorted keys, no
spaces, UTF-8, instants as ISO-8601 UTC). Because `seq` and `prev_hash` are inside the hashed text,
editing, deleting, inserting or reordering any entry breaks every hash after it. Verification is
offline: it needs only the exported entries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)


def _default(value: Any) -> str:
    if isinstance(value, datetime):
        return utc_iso(value)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def as_utc(at: datetime) -> datetime:
    """Stored instants come back naive from SQLite (which keeps them in UTC) and aware from PostgreSQL."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def utc_iso(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("audit instants must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class AuditRecord:
    """What happened, before it is given a place in the chain."""

    actor: str  # who: a user id, or "system:<job>"
    origin: str  # through what: cli, api, cycle, import, web
    action: str  # verb in the field's language: import.accepted, cycle.proposed, loan.viewed ...
    entity: str  # loan, borrower, proposed_action, cycle_run ...
    entity_id: str
    reason: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class ChainedEntry:
    seq: int
    at: datetime
    actor: str
    origin: str
    action: str
    entity: str
    entity_id: str
    reason: str
    payload: str  # canonical JSON
    prev_hash: str
    hash: str

    def as_row(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def as_export(self) -> dict[str, Any]:
        row = self.as_row()
        row["at"] = utc_iso(self.at)
        row["payload"] = json.loads(self.payload)
        return row


def entry_hash(
    seq: int,
    at: datetime,
    actor: str,
    origin: str,
    action: str,
    entity: str,
    entity_id: str,
    reason: str,
    payload: str,
    prev_hash: str,
) -> str:
    body = canonical_json(
        {
            "seq": seq,
            "at": utc_iso(at),
            "actor": actor,
            "origin": origin,
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "reason": reason,
            "payload": payload,
            "prev_hash": prev_hash,
        }
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def chain(records: Iterable[AuditRecord], at: datetime, head_seq: int, head_hash: str) -> Iterator[ChainedEntry]:
    """Give each record its place after (head_seq, head_hash)."""
    seq, prev = head_seq, head_hash
    for r in records:
        seq += 1
        payload = canonical_json(dict(r.payload))
        h = entry_hash(seq, at, r.actor, r.origin, r.action, r.entity, r.entity_id, r.reason, payload, prev)
        yield ChainedEntry(seq, at, r.actor, r.origin, r.action, r.entity, r.entity_id, r.reason, payload, prev, h)
        prev = h


def first_break(
    entries: Iterable[Mapping[str, Any]],
    expected_head: tuple[int, str] | None = None,
    start: tuple[int, str] = (0, GENESIS_HASH),
) -> tuple[int, str] | None:
    """Walk entries in seq order; return (seq, reason) for the first one that does not verify, else None.

    `start` is the (seq, hash) the first entry must follow: the genesis for a whole chain, the entry
    before the window for an export that starts mid-chain. `expected_head` (seq, hash) is the
    separately stored head of the chain: it catches removal of the newest entries and entries added
    after it, which no link inside the chain can reveal.
    """
    prev_seq, prev_hash = start
    for e in entries:
        try:
            seq = int(e["seq"])
            if seq != prev_seq + 1:
                return (prev_seq + 1, f"entry {prev_seq + 1} is missing or out of order (found {seq} next)")
            if expected_head is not None and seq > expected_head[0]:
                return (seq, f"lies beyond the recorded head (entry {expected_head[0]}): added outside the log")
            if e["prev_hash"] != prev_hash:
                return (seq, "does not link to the entry before it (removed, inserted or reordered)")
            at = e["at"] if isinstance(e["at"], datetime) else datetime.fromisoformat(str(e["at"]))
            payload = e["payload"] if isinstance(e["payload"], str) else canonical_json(e["payload"])
            h = entry_hash(
                seq,
                as_utc(at),
                e["actor"],
                e["origin"],
                e["action"],
                e["entity"],
                e["entity_id"],
                e["reason"],
                payload,
                prev_hash,
            )
            stored = e["hash"]
        except (KeyError, TypeError, ValueError) as err:
            return (prev_seq + 1, f"entry {prev_seq + 1} is malformed ({type(err).__name__}: {err})")
        if h != stored:
            return (seq, "content does not match its hash (altered)")
        if expected_head is not None and seq == expected_head[0] and h != expected_head[1]:
            return (seq, "does not match the recorded head of the chain (altered, later hashes recomputed)")
        prev_seq, prev_hash = seq, h
    if expected_head is not None and prev_seq < expected_head[0]:
        return (
            prev_seq + 1,
            f"chain ends at entry {prev_seq} but the head records entry {expected_head[0]} (newest entries removed)",
        )
    return None
