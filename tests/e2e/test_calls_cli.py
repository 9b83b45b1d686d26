"""`duecourse calls` end to end in a subprocess, at the real clock: the book's debtors live in a time zone where
it is midday now, so the rules allow the call whatever time the test runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from duecourse.adapters.db import tables as t
from duecourse.adapters.db.engine import make_engine
from duecourse.demo.book import generate_book, write_book
from duecourse.services.calls import create_call_tasks
from tests.e2e.conftest import Cli


def _midday_zone(now: datetime) -> ZoneInfo:
    """A fixed-offset zone where `now` is about noon (Etc/GMT-N is N hours ahead of UTC)."""
    ahead = 12 - now.hour
    return ZoneInfo("Etc/UTC" if ahead == 0 else f"Etc/GMT{-ahead:+d}")


def test_an_agent_works_a_call_from_the_terminal(cli: Cli, tmp_path: Path) -> None:
    zone = _midday_zone(datetime.now(UTC))
    today = datetime.now(zone).date()
    book = write_book(generate_book(120, today, seed=11, days_ahead=1), tmp_path / "book", "csv")
    points = book / "contact_points.csv"
    points.write_text(points.read_text(encoding="utf-8").replace("Asia/Shanghai", zone.key), encoding="utf-8")
    cli("import", str(book))
    cli("cycle", "run", "--as-of", today.isoformat(), "--json")
    engine = make_engine(f"sqlite:///{cli.db}")
    a = t.proposed_action.c
    with engine.begin() as conn:
        calls = (
            conn.execute(select(a.action_key).where(a.channel == "call", a.compliance_status == "allowed"))
            .scalars()
            .all()
        )
        assert calls and create_call_tasks(conn, calls, datetime.now(UTC)) == len(calls)
    engine.dispose()

    queue = cli.json("calls", "queue")
    assert len(queue) == len(calls) and queue[0]["due"]
    claimed = cli.json("calls", "next", "--agent", "A1")
    script = claimed["script"]
    assert script["task_key"] == queue[0]["task_key"] and len(script["code"]) == 19
    task = str(script["task_key"])
    human = cli("calls", "show", task).stdout
    assert script["phone"] in human and "claimed" in human

    assert "not claimed by A2" in cli("calls", "reveal", task, "--agent", "A2", expect=1).stderr
    number = cli("calls", "reveal", task, "--agent", "A1").stdout.strip()
    assert number.endswith(script["phone"][-4:]) and number != script["phone"]

    promised = (today + timedelta(days=7)).isoformat()
    refused = cli(
        "calls",
        "outcome",
        task,
        "--agent",
        "A1",
        "--result",
        "promise_to_pay",
        "--amount",
        "0.001",
        "--date",
        promised,
        expect=1,
    )
    assert "more decimals" in refused.stderr
    done = cli.json(
        "calls",
        "outcome",
        task,
        "--agent",
        "A1",
        "--result",
        "promise_to_pay",
        "--amount",
        "1200.00",
        "--date",
        promised,
        "--note",
        "payday",
    )
    assert (done["state"], done["result"]) == ("closed", "promise_to_pay")
    shown = cli.json("calls", "show", task)
    assert shown["promises"] == [
        {"promise_id": done["promise_id"], "amount": 120000, "currency": "CNY", "due_date": promised, "state": "open"}
    ]
    assert cli("calls", "show", "999999", expect=2).returncode == 2
    assert "intact" in cli("audit", "verify").stdout
    exported = [json.loads(line) for line in cli("audit", "export").stdout.splitlines()]
    mine = [(e["action"], e["actor"]) for e in exported if e["entity_id"] == task and e["entity"] == "call_task"]
    assert mine == [
        ("call.queued", "system:dispatch"),
        ("call.claimed", "A1"),
        ("call.cleared", "A1"),
        ("call.number_revealed", "A1"),
        ("call.outcome", "A1"),
    ]
    assert all(number not in line for line in cli("audit", "export").stdout.splitlines())
