"""The stored audit chain on both backends: it commits with the data, verifies, names the first tampered entry,
never forks under concurrent writers, and its JSON Lines export verifies offline.
"""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, delete, func, insert, select, update

from duecourse.adapters.db import tables as t
from duecourse.audit.chain import AuditRecord, entry_hash
from duecourse.audit.export import export_jsonl, verify_jsonl
from duecourse.audit.log import append, verify

DAY1 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _record(i: int, **payload: object) -> AuditRecord:
    return AuditRecord(actor="user:li.na", origin="cli", action="loan.viewed", entity="loan", entity_id=f"L-{i}",
                       reason="customer called", payload={"i": i, **payload})


def _chain_of(engine: Engine, n: int, at: datetime = DAY1) -> None:
    with engine.begin() as conn:
        append(conn, [_record(i) for i in range(1, n + 1)], at)


def _verify(engine: Engine) -> tuple[int, tuple[int, str] | None]:
    with engine.connect() as conn:
        return verify(conn)


def _tamper(engine: Engine, *statements: object) -> None:
    with engine.begin() as conn:
        for s in statements:
            conn.execute(s)  # type: ignore[call-overload]


def _entry(engine: Engine, seq: int) -> dict[str, object]:
    with engine.connect() as conn:
        return dict(conn.execute(select(t.audit_entry).where(t.audit_entry.c.seq == seq)).mappings().one())


E = t.audit_entry


# --- appending ----------------------------------------------------------------------------------------------------


def test_an_entry_commits_with_the_data_change_it_records(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(t.product).values(code="cash", currency="CNY", conventions={}))
        assert append(conn, [_record(1)], DAY1) == 1
    assert _verify(engine) == (1, None)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.product)).scalar_one() == 1


def test_a_rollback_removes_both_the_data_and_its_entry(engine: Engine) -> None:
    _chain_of(engine, 2)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(insert(t.product).values(code="cash", currency="CNY", conventions={}))
        append(conn, [_record(3)], DAY1)
        raise RuntimeError("the caller fails after both writes")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.product)).scalar_one() == 0
    assert _verify(engine) == (2, None)
    _chain_of(engine, 1)  # the next append continues from the surviving head
    assert _verify(engine) == (3, None)


def test_an_instant_without_a_time_zone_is_refused(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(ValueError, match="timezone-aware"):
        append(conn, [_record(1)], datetime(2026, 3, 1, 8, 0))


def test_an_intact_chain_verifies_across_many_appends(engine: Engine) -> None:
    for day in range(3):
        _chain_of(engine, 4, DAY1 + timedelta(days=day))
    assert _verify(engine) == (12, None)


def test_an_empty_log_verifies(engine: Engine) -> None:
    assert _verify(engine) == (0, None)


# --- tampering: the first bad entry is named ----------------------------------------------------------------------


def test_an_edited_field_is_named(engine: Engine) -> None:
    _chain_of(engine, 5)
    _tamper(engine, update(E).where(E.c.seq == 3).values(actor="user:someone.else"))
    assert _verify(engine)[1] == (3, "content does not match its hash (altered)")


def test_an_edited_payload_is_named(engine: Engine) -> None:
    _chain_of(engine, 5)
    _tamper(engine, update(E).where(E.c.seq == 2).values(payload=json.dumps({"i": 2, "amount": 1})))
    assert _verify(engine)[1] == (2, "content does not match its hash (altered)")


def test_an_edited_instant_is_named(engine: Engine) -> None:
    _chain_of(engine, 5)
    _tamper(engine, update(E).where(E.c.seq == 4).values(at=DAY1 + timedelta(microseconds=1)))
    assert _verify(engine)[1] == (4, "content does not match its hash (altered)")


def test_a_deleted_middle_entry_is_named(engine: Engine) -> None:
    _chain_of(engine, 5)
    _tamper(engine, delete(E).where(E.c.seq == 3))
    brk = _verify(engine)[1]
    assert brk is not None and brk[0] == 3 and "missing" in brk[1]


def test_a_deleted_newest_entry_is_caught_by_the_head(engine: Engine) -> None:
    _chain_of(engine, 5)
    _tamper(engine, delete(E).where(E.c.seq == 5))
    brk = _verify(engine)[1]
    assert brk is not None and brk[0] == 5 and "newest entries removed" in brk[1]


def test_swapped_entries_are_caught_at_the_first_of_them(engine: Engine) -> None:
    _chain_of(engine, 5)
    _tamper(engine, update(E).where(E.c.seq == 2).values(seq=-2), update(E).where(E.c.seq == 3).values(seq=2),
            update(E).where(E.c.seq == -2).values(seq=3))
    brk = _verify(engine)[1]
    assert brk is not None and brk[0] == 2 and "does not link" in brk[1]


def test_a_well_forged_entry_after_the_head_is_caught(engine: Engine) -> None:
    """A forger who knows the hash recipe can link a new entry perfectly; only the separate head gives it away."""
    _chain_of(engine, 5)
    last = _entry(engine, 5)
    at = DAY1 + timedelta(hours=1)
    forged = {"seq": 6, "at": at, "actor": "user:li.na", "origin": "cli", "action": "loan.viewed", "entity": "loan",
              "entity_id": "L-6", "reason": "forged", "payload": "{}", "prev_hash": last["hash"]}
    forged["hash"] = entry_hash(**forged)  # type: ignore[arg-type]
    _tamper(engine, insert(E).values(**forged))
    brk = _verify(engine)[1]
    assert brk is not None and brk[0] == 6 and "beyond the recorded head" in brk[1]


def test_a_forged_entry_inserted_mid_chain_is_caught_where_the_chain_stops_verifying(engine: Engine) -> None:
    """Making room at seq 3 renumbers the real entries after it; the first renumbered one no longer verifies."""
    _chain_of(engine, 5)
    for seq in (5, 4, 3):
        _tamper(engine, update(E).where(E.c.seq == seq).values(seq=seq + 1))
    second = _entry(engine, 2)
    forged = {"seq": 3, "at": DAY1, "actor": "user:li.na", "origin": "cli", "action": "loan.viewed", "entity": "loan",
              "entity_id": "L-X", "reason": "forged", "payload": "{}", "prev_hash": second["hash"]}
    forged["hash"] = entry_hash(**forged)  # type: ignore[arg-type]
    _tamper(engine, insert(E).values(**forged))
    brk = _verify(engine)[1]
    assert brk is not None and brk[0] == 4


def test_recomputing_every_later_hash_is_caught_by_the_head(engine: Engine) -> None:
    """Edit entry 3 and re-hash 3..5 consistently: every link holds, but entry 5 no longer matches the head."""
    _chain_of(engine, 5)
    prev = str(_entry(engine, 2)["hash"])
    for seq in (3, 4, 5):
        e = _entry(engine, seq)
        e["reason"] = "rewritten" if seq == 3 else e["reason"]
        e["prev_hash"] = prev
        fields = {k: e[k] for k in ("seq", "at", "actor", "origin", "action", "entity", "entity_id", "reason",
                                    "payload", "prev_hash")}
        fields["at"] = e["at"] if e["at"].tzinfo else e["at"].replace(tzinfo=UTC)  # type: ignore[attr-defined]
        prev = entry_hash(**fields)  # type: ignore[arg-type]
        _tamper(engine, update(E).where(E.c.seq == seq).values(reason=e["reason"], prev_hash=e["prev_hash"], hash=prev))
    brk = _verify(engine)[1]
    assert brk is not None and brk[0] == 5 and "recorded head" in brk[1]


# --- concurrency ----------------------------------------------------------------------------------------------------


def test_concurrent_appends_from_two_connections_never_fork_the_chain(engine: Engine) -> None:
    """Two writers race from an empty log (no head row yet) and keep racing; every entry lands on one chain."""
    per_writer, errors = 25, []
    barrier = threading.Barrier(2)

    def writer(name: str) -> None:
        try:
            barrier.wait()
            for i in range(per_writer):
                with engine.begin() as conn:
                    append(conn, [_record(i, writer=name), _record(i, writer=name, part=2)], DAY1)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b")]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert errors == []
    assert _verify(engine) == (4 * per_writer, None)
    with engine.connect() as conn:
        rows = conn.execute(select(E.c.seq, E.c.payload).order_by(E.c.seq)).all()
    assert [r.seq for r in rows] == list(range(1, 4 * per_writer + 1))
    # Each append's two records stay adjacent: no writer slipped in between them.
    parts = [json.loads(r.payload) for r in rows]
    for first, second in zip(parts[::2], parts[1::2], strict=True):
        assert (first["writer"], first["i"], second.get("part")) == (second["writer"], second["i"], 2)


# --- export and offline verification --------------------------------------------------------------------------------


def _export(engine: Engine, start: datetime | None = None, end: datetime | None = None) -> list[str]:
    out = io.StringIO()
    with engine.connect() as conn:
        n = export_jsonl(conn, out, start, end)
    lines = out.getvalue().splitlines()
    assert n == len(lines)
    return lines


def _three_days(engine: Engine) -> None:
    for day in range(3):
        with engine.begin() as conn:
            append(conn, [_record(10 * day + i, note="逾期提醒", amount=12.5, day=day) for i in range(3)],
                   DAY1 + timedelta(days=day))


def test_a_full_export_verifies_offline(engine: Engine) -> None:
    _three_days(engine)
    lines = _export(engine)
    assert [json.loads(line)["seq"] for line in lines] == list(range(1, 10))
    assert json.loads(lines[0])["payload"] == {"i": 0, "note": "逾期提醒", "amount": 12.5, "day": 0}
    assert verify_jsonl(lines) == (9, None)
    last = json.loads(lines[-1])
    assert verify_jsonl(lines, head=(last["seq"], last["hash"])) == (9, None)


def test_a_window_export_starts_mid_chain_and_verifies(engine: Engine) -> None:
    _three_days(engine)
    # The middle day, with bounds given in another time zone: the same instants.
    cst = timezone(timedelta(hours=8))
    lines = _export(engine, (DAY1 + timedelta(days=1)).astimezone(cst), (DAY1 + timedelta(days=2)).astimezone(cst))
    assert [json.loads(line)["seq"] for line in lines] == [4, 5, 6]
    assert verify_jsonl(lines) == (3, None)


def test_an_export_of_an_empty_window_is_empty(engine: Engine) -> None:
    _three_days(engine)
    assert _export(engine, DAY1 + timedelta(days=5)) == []
    assert verify_jsonl([]) == (0, None)


def test_a_tampered_export_line_is_named(engine: Engine) -> None:
    _three_days(engine)
    lines = _export(engine)
    entry = json.loads(lines[4])
    entry["payload"]["amount"] = 1.25
    lines[4] = json.dumps(entry, ensure_ascii=False)
    assert verify_jsonl(lines) == (5, (5, "content does not match its hash (altered)"))


def test_a_line_removed_from_an_export_is_named(engine: Engine) -> None:
    _three_days(engine)
    lines = _export(engine)
    del lines[6]
    _, brk = verify_jsonl(lines)
    assert brk is not None and brk[0] == 7 and "missing" in brk[1]


def test_the_end_of_an_export_cut_off_is_caught_against_a_published_head(engine: Engine) -> None:
    _three_days(engine)
    lines = _export(engine)
    last = json.loads(lines[-1])
    _, brk = verify_jsonl(lines[:-2], head=(last["seq"], last["hash"]))
    assert brk is not None and brk[0] == 8 and "newest entries removed" in brk[1]


def test_a_garbled_export_line_is_named(engine: Engine) -> None:
    _three_days(engine)
    lines = _export(engine)
    lines[2] = lines[2][:40]
    count, brk = verify_jsonl(lines)
    assert count == 2 and brk is not None and brk[0] == 3 and "line 3" in brk[1]
