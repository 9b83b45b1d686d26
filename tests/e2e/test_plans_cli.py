"""`duecourse plans …` in a subprocess against a fresh data directory: finances, options, an offer beyond an
agent's limits refused until a supervisor approves it, acceptance, a promise and the report, the audit intact.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.e2e.conftest import Cli
from tests.integration.test_plans import BOOK


def test_a_plan_beyond_an_agents_limits_waits_for_a_supervisor_then_takes_effect(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    book = tmp_path / "book"
    book.mkdir()
    for name, text in BOOK.items():
        (book / name).write_text(text, encoding="utf-8")
    cli("import", str(book))

    def plans(*args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        return cli("plans", *args, expect=expect)

    def js(*args: str) -> Any:
        return json.loads(plans(*args, "--json").stdout)

    finances = ("finances", "record", "PB1", "--essentials", "4000.00", "--essentials-source", "evidenced")
    finances += ("--other-debts", "1000", "--savings", "2000", "--household", "2", "--dependants", "1")
    finances += ("--region", "CN-11", "--by", "agent-7")
    assert "is not an amount" in plans(*finances, "--income", "1.5e4", expect=2).stderr  # no exponents, no floats
    recorded = js(*finances, "--income", "15000.00")
    assert recorded["assessment"]["disposable"] == "10000.00"
    shown = js("finances", "show", "PB1", "--payment", "2500")
    assert shown["proposed"]["share_of_disposable"] == "0.2500"

    options = js("options", "P1", "--as-of", "2026-04-20")
    assert options["outstanding"]["total"] == "6188.00" and options["options"][0]["reason"].startswith("best:")
    assert "restructure" in plans("options", "P1", "--as-of", "2026-04-20").stdout  # the table renders

    offered = js("offer", "P1", "--kind", "restructure", "--months", "36", "--by", "agent-7", "--role", "agent",
                 "--as-of", "2026-04-20")  # fmt: skip
    plan_id = offered["plan_id"]
    assert offered["state"] == "pending_approval"
    refused = plans("accept", plan_id, "--effective", "2026-04-20", "--by", "PB1", expect=1)
    assert "waits for a supervisor" in refused.stderr
    assert (
        js("approve", plan_id, "--by", "sup-1", "--role", "supervisor", "--reason", "income evidenced")["state"]
        == "approved"
    )
    accepted = js("accept", plan_id, "--effective", "2026-04-20", "--by", "PB1")
    assert (accepted["state"], accepted["credit_amount"], len(accepted["schedule"])) == ("active", "4158.00", 36)
    assert [p["state"] for p in js("list", "--borrower", "PB1")] == ["active"]
    assert plan_id in plans("show", plan_id).stdout

    promised_on = (datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=7)).isoformat()
    taken = js("promises", "take", "P2", "--amount", "500.00", "--on", promised_on, "--channel", "call",
               "--by", "agent-7")  # fmt: skip
    assert (taken["amount"], taken["state"]) == ("500.00", "open")
    assert [p["promise_id"] for p in js("promises", "list", "--loan", "P2")] == [taken["promise_id"]]
    report = js("promises", "report")
    assert (report["total"]["promises"], report["total"]["open"], report["total"]["kept_rate"]) == (1, 1, None)
    assert "verified" in cli("audit", "verify").stdout.lower()
