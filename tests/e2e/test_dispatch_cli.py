"""`duecourse dispatch run` killed with SIGKILL in the middle of a run and started again: every message reaches the
SMS gateway (the local Infobip fake) exactly once, none is lost, and the audit chain still verifies. Dead letters
listed and replayed through the command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from duecourse.adapters.db import tables as t
from duecourse.demo.book import generate_book, write_book
from duecourse.services.dispatch import message_id
from tests.e2e.conftest import ROOT, Cli
from tests.fakes.infobip import FakeInfobip

DAY = date(2026, 9, 28)  # contacts planned for 10:00 in Shanghai = 02:00 UTC
FIRST_RUN = datetime(2026, 9, 28, 2, 30, tzinfo=UTC)
SECOND_RUN = datetime(2026, 9, 28, 2, 40, tzinfo=UTC)  # after the first run's 5-minute lease ran out


@pytest.fixture
def gateway() -> FakeInfobip:
    fake = FakeInfobip(delay=1.0).start()  # each send waits a second before answering: time to kill the sender
    yield fake  # type: ignore[misc]
    fake.stop()


def _sms_actions(cli: Cli) -> set[str]:
    engine = create_engine(f"sqlite:///{cli.db}")
    a = t.proposed_action
    with engine.connect() as conn:
        keys = set(
            conn.execute(
                select(a.c.idempotency_key).where(
                    a.c.channel == "sms", a.c.compliance_status == "allowed", a.c.scheduled_at <= SECOND_RUN
                )
            ).scalars()
        )
    engine.dispose()
    return keys


def _states(cli: Cli) -> dict[str, tuple[str, str | None]]:
    engine = create_engine(f"sqlite:///{cli.db}")
    o = t.dispatch_outbox
    with engine.connect() as conn:
        rows = conn.execute(select(o.c.idempotency_key, o.c.state, o.c.reason).where(o.c.channel == "sms")).all()
    engine.dispose()
    return {str(k): (str(s), r) for k, s, r in rows}


@pytest.mark.e2e
def test_a_dispatcher_killed_mid_run_and_restarted_sends_every_message_exactly_once(
    cli: Cli, gateway: FakeInfobip, tmp_path: Path
) -> None:
    book = write_book(generate_book(600, DAY, seed=11, days_ahead=1), tmp_path / "book", "csv")
    cli.env.update(
        {
            "DUECOURSE_SMS_URL": gateway.url,
            "DUECOURSE_SMS_API_KEY": gateway.api_key,
            "DUECOURSE_PUBLIC_URL": "http://127.0.0.1:9",  # nobody listens: reports wait for the pull
        }
    )
    cli("import", str(book))
    cli("cycle", "run", "--as-of", DAY.isoformat())
    planned = _sms_actions(cli)
    assert len(planned) >= 6, "enough messages for several batches"

    run = [sys.executable, "-m", "duecourse", "dispatch", "run", "--batch", "2", "--json"]
    first = subprocess.Popen(
        [*run, "--now", FIRST_RUN.isoformat()],
        cwd=ROOT,
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while len(gateway.messages) < 4 and time.monotonic() < deadline:  # the second batch is at the gateway,
        time.sleep(0.01)  # and its answer is a second away
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    assert first.returncode == -signal.SIGKILL
    states = {s for s, _ in _states(cli).values()}
    at_gateway = len(gateway.messages)
    assert 4 <= at_gateway < len(planned), "killed in the middle: some sent, some not"
    assert "sending" in states, "a batch was on the wire when the dispatcher died"
    assert "queued" in states, "later batches never started"

    # Started again after the dead dispatcher's lease (5 minutes) ran out.
    again = cli("dispatch", "run", "--now", SECOND_RUN.isoformat(), "--json")
    summary = json.loads(again.stdout)
    assert summary["by_channel"]["sms"].get("reconciled_sent", 0) >= 1, "found at the gateway, not sent again"

    final = _states(cli)
    assert final.keys() == planned
    delivered = {k for k, (s, _) in final.items() if s == "delivered"}
    # The only other end: the borrower has no usable number, so nothing could be sent (said so, with a reason).
    unreachable = {k for k, (s, r) in final.items() if s == "cancelled" and str(r).startswith("no address")}
    assert delivered | unreachable == planned and len(delivered) >= len(planned) - 2
    assert set(gateway.submissions) == {message_id(k) for k in delivered}, "none lost"
    assert set(gateway.submissions.values()) == {1}, "none sent twice"
    cli("audit", "verify")
    status = json.loads(cli("dispatch", "status", "--json").stdout)
    assert status["sms"]["delivered"] == len(delivered)


@pytest.mark.e2e
def test_dead_letters_are_listed_and_a_replay_sends_them(cli: Cli, tmp_path: Path) -> None:
    book = write_book(generate_book(300, DAY, seed=11, days_ahead=1), tmp_path / "book", "csv")
    cli("import", str(book))
    cli("cycle", "run", "--as-of", DAY.isoformat())
    fake = FakeInfobip().start()
    try:
        cli.env.update(
            {
                "DUECOURSE_SMS_URL": fake.url,
                "DUECOURSE_SMS_API_KEY": "a-revoked-key",  # the gateway answers 401 to every request
                "DUECOURSE_PUBLIC_URL": "http://127.0.0.1:9",
            }
        )
        cli("dispatch", "run", "--now", FIRST_RUN.isoformat(), "--max-attempts", "1")
        dead = json.loads(cli("dispatch", "dead-letters", "--json").stdout)
        assert dead and all(d["channel"] == "sms" and "HTTP 401" in d["reason"] for d in dead)
        assert not fake.messages
        listing = cli("dispatch", "dead-letters").stdout
        assert f"{len(dead)} dead letters" in listing
        cli("dispatch", "replay", expect=2)  # neither ids nor --all
        cli.env["DUECOURSE_SMS_API_KEY"] = fake.api_key
        cli("dispatch", "replay", str(dead[0]["id"]), "--reason", "key rotated", "--actor", "ops:alice")
        assert "back in the queue" in cli("dispatch", "replay", "--all").stdout
        summary = json.loads(cli("dispatch", "run", "--now", SECOND_RUN.isoformat(), "--json").stdout)
        assert summary["by_channel"]["sms"]["sent"] == len(dead)
        assert set(fake.submissions) == {message_id(d["key"]) for d in dead}
        assert json.loads(cli("dispatch", "dead-letters", "--json").stdout) == []
        cli("audit", "verify")
    finally:
        fake.stop()
