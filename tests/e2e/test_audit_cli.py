"""`duecourse audit verify` proves an untouched chain and names the first entry that was tampered with."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.e2e.conftest import Cli


@pytest.fixture
def audited(cli: Cli) -> Cli:
    cli("import", "examples/book")
    cli("cycle", "run", "--as-of", "2026-11-20")
    cli("cycle", "run", "--as-of", "2026-11-21")
    return cli


def _count(cli: Cli) -> int:
    with sqlite3.connect(cli.db) as con:
        return int(con.execute("select count(*) from audit_entry").fetchone()[0])


def test_an_untouched_chain_verifies(audited: Cli) -> None:
    out = audited("audit", "verify").stdout
    assert "verified" in out and f"{_count(audited):,} entries" in out


def _tamper(cli: Cli, sql: str) -> str:
    with sqlite3.connect(cli.db) as con:
        con.execute(sql)
    proc = cli("audit", "verify", expect=1)
    return proc.stderr


def test_an_edited_entry_is_named(audited: Cli) -> None:
    err = _tamper(audited, "update audit_entry set reason = 'nothing to see' where seq = 3")
    assert "BROKEN at entry 3" in err and "altered" in err


def test_an_edited_payload_is_named(audited: Cli) -> None:
    err = _tamper(audited, "update audit_entry set payload = payload || ' ' where seq = 2")
    assert "entry 2" in err and "altered" in err


def test_a_deleted_entry_is_named(audited: Cli) -> None:
    err = _tamper(audited, "delete from audit_entry where seq = 4")
    assert "BROKEN at entry 4" in err


def test_deleting_the_newest_entry_is_caught(audited: Cli) -> None:
    n = _count(audited)
    err = _tamper(audited, f"delete from audit_entry where seq = {n}")
    assert f"BROKEN at entry {n}" in err


def test_reordered_entries_are_caught(audited: Cli) -> None:
    with sqlite3.connect(audited.db) as con:
        con.execute("update audit_entry set seq = -1 where seq = 2")
        con.execute("update audit_entry set seq = 2 where seq = 3")
        con.execute("update audit_entry set seq = 3 where seq = -1")
    err = audited("audit", "verify", expect=1).stderr
    assert "BROKEN at entry 2" in err


def test_export_writes_every_entry_as_json_lines(audited: Cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "audit.jsonl"
    audited("audit", "export", "--out", str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == _count(audited)
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    assert {"case.opened", "action.proposed", "cycle.completed"} <= {e["action"] for e in lines}
