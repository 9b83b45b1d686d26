"""Dispatch on both backends, against real channel servers on loopback: the Infobip fake, an aiosmtpd SMTP server
and a push endpoint. Enqueue, the send-time re-check (paid, hold, compliance), codes, retries and dead letters,
receipts by pull and by webhook, and recovery from a dispatcher that stopped in the middle of a send."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from functools import partial
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from sqlalchemy import Engine, func, insert, select, update

from duecourse.adapters.channels.push import PushWebhook
from duecourse.adapters.channels.sms_gateway import WEBHOOK_PATH, InfobipSms, report_token
from duecourse.adapters.channels.smtp import SmtpMailer
from duecourse.adapters.crypto import FieldCipher
from duecourse.adapters.db import tables as t
from duecourse.audit import log as audit_log
from duecourse.bootstrap import Container, helper_dispatcher
from duecourse.compliance.calendar import HolidayCalendar
from duecourse.compliance.checks.base import CheckContext
from duecourse.compliance.rulebook import load_rulebook
from duecourse.demo.book import generate_book, write_book
from duecourse.domain.dispatch import Outgoing, Result
from duecourse.domain.verification import CodeSigner, canonical, digest
from duecourse.services import dispatch as d
from duecourse.services.compliance_gate import RulebookGate
from duecourse.services.cycle import run_cycle
from duecourse.services.importer import import_book
from duecourse.services.messages import MessageCatalogue
from duecourse.settings import Settings
from duecourse.strategy import load_strategy
from duecourse.web import webhooks
from tests.fakes.infobip import FakeInfobip
from tests.fakes.push_receiver import PushReceiver

ROOT = Path(__file__).resolve().parents[2]
STRATEGY = load_strategy(ROOT / "strategies" / "default.yaml")
RULES = load_rulebook(ROOT / "rules")
CTX = CheckContext(calendar=HolidayCalendar.load(ROOT / "rules" / "calendars"))
MESSAGES = MessageCatalogue.load(ROOT / "templates" / "messages.yaml")
DAY = date(2026, 9, 28)  # a Monday: the cycle plans contacts at 10:00 in Shanghai = 02:00 UTC
NOW = datetime(2026, 9, 28, 2, 30, tzinfo=UTC)
CODE = re.compile(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}")


@dataclass
class World:
    engine: Engine
    cipher: FieldCipher
    signer: CodeSigner
    tmp: Path
    gate: RulebookGate = field(init=False)

    def __post_init__(self) -> None:
        self.gate = RulebookGate(self.engine, RULES, CTX, MESSAGES)

    def dispatcher(self, channels: dict[str, d.Channel], **policy: Any) -> d.Dispatcher:
        return d.Dispatcher(
            self.engine, self.cipher, self.signer, MESSAGES, self.gate, channels, policy=d.Policy(**policy)
        )

    def rows(self, channel: str | None = None) -> list[Any]:
        o = t.dispatch_outbox
        q = select(o).order_by(o.c.outbox_key)
        if channel is not None:
            q = q.where(o.c.channel == channel)
        with self.engine.connect() as conn:
            return list(conn.execute(q).all())

    def allowed(self, channel: str, by: datetime = NOW) -> list[Any]:
        a = t.proposed_action
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(a.c.action_key, a.c.idempotency_key, a.c.loan_key).where(
                        a.c.channel == channel,
                        a.c.compliance_status.in_(["allowed", "rescheduled"]),
                        a.c.scheduled_at <= by,
                    )
                ).all()
            )

    def events(self, **where: Any) -> list[Any]:
        e = t.contact_event
        with self.engine.connect() as conn:
            return list(conn.execute(select(e).filter_by(**where).order_by(e.c.event_key)).all())

    def audit(self, action: str) -> list[Any]:
        a = t.audit_entry
        with self.engine.connect() as conn:
            return list(conn.execute(select(a).where(a.c.action == action)).all())


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> World:
    generated = generate_book(300, DAY, seed=11, days_ahead=1)
    folder = write_book(generated, tmp_path / "book", "csv")
    cipher = FieldCipher.from_key_file(tmp_path / "data.key")
    report = import_book(engine, folder, tmp_path / "rejects", cipher, "test", datetime(2026, 9, 27, 20, tzinfo=UTC))
    assert report.rejected == 0
    w = World(engine, cipher, CodeSigner(b"v" * 32), tmp_path)
    run_cycle(engine, STRATEGY, w.gate, DAY, now=datetime(2026, 9, 28, 1, tzinfo=UTC))
    assert w.allowed("sms") and w.allowed("email") and w.allowed("app"), "the demo day plans every message channel"
    return w


@pytest.fixture
def gateway() -> Iterator[FakeInfobip]:
    fake = FakeInfobip(push_reports=False).start()
    yield fake
    fake.stop()


def sms(fake: FakeInfobip, notify_url: str | None = None) -> InfobipSms:
    return InfobipSms(fake.url, fake.api_key, "DueCourse", notify_url=notify_url)


def verify_ok(w: World) -> None:
    with w.engine.connect() as conn:
        checked, broken = audit_log.verify(conn)
    assert checked > 0 and broken is None


# --- enqueue -------------------------------------------------------------------------------------------


def test_enqueue_takes_each_due_allowed_action_once(world: World) -> None:
    disp = world.dispatcher({})
    due = sum(len(world.allowed(ch)) for ch in d.MESSAGE_CHANNELS + d.HAND_OFF_CHANNELS)
    assert disp.enqueue(NOW) == due
    assert disp.enqueue(NOW) == 0, "a second enqueue finds nothing new"
    rows = world.rows()
    assert {r.state for r in rows} == {"queued"} and all(r.attempts == 0 for r in rows)
    keys = {r.idempotency_key for r in rows}
    assert keys == {a.idempotency_key for ch in ("sms", "email", "app", "call") for a in world.allowed(ch)}
    later = [a for a in world.allowed("app", by=NOW + timedelta(days=1)) if a.idempotency_key not in keys]
    assert later, "an action planned for a later moment of the day waits"
    [entry] = world.audit("dispatch.enqueued")
    assert f'"count":{due}' in entry.payload


# --- SMS, codes, receipts --------------------------------------------------------------------------------


def test_sms_leave_once_with_a_verifiable_code_and_their_receipts_are_pulled(
    world: World, gateway: FakeInfobip
) -> None:
    planned = world.allowed("sms")
    gateway.undeliverable = set()
    summary = world.dispatcher({"sms": sms(gateway)}).run(NOW)
    assert summary.counts[("sms", "sent")] == len(planned) == len(gateway.messages)
    assert set(gateway.submissions.values()) == {1}
    assert {m.message_id for m in gateway.messages.values()} == {d.message_id(a.idempotency_key) for a in planned}
    assert summary.counts[("sms", "delivered")] == len(planned), "receipts pulled in the same run"
    for row in world.rows("sms"):
        assert row.state == "delivered" and row.provider == "infobip" and row.attempts == 1
        text = gateway.messages[row.provider_message_id].text
        [shown] = CODE.findall(text)
        code = canonical(shown)
        assert code is not None and world.signer.is_signed(code) and digest(code) == row.code_digest
        assert "/verify" in text and ("示例消费金融" in text or "Example Consumer Finance" in text)
        with world.engine.connect() as conn:
            issued = conn.execute(
                select(t.verification_code).where(t.verification_code.c.code_digest == row.code_digest)
            ).one()
        assert issued.action_key == row.action_key and issued.purpose == "message" and issued.channel == "sms"
        kinds = [(e.outcome, e.details["status"]) for e in world.events(action_key=row.action_key)]
        assert kinds == [("connected", "sent"), ("delivered", "DELIVERED/DELIVERED_TO_HANDSET")]
    again = world.dispatcher({"sms": sms(gateway)}).run(NOW + timedelta(minutes=10))
    assert again.total("sent") == 0 and set(gateway.submissions.values()) == {1}, "nothing is sent twice"
    verify_ok(world)


def test_an_undeliverable_number_ends_failed_with_a_failed_contact_event(world: World, gateway: FakeInfobip) -> None:
    first = world.allowed("sms")[0]
    with world.engine.connect() as conn:
        borrower = conn.execute(select(t.loan.c.borrower_key).where(t.loan.c.loan_key == first.loan_key)).scalar_one()
        points = conn.execute(
            select(t.contact_point.c.value_enc).where(
                t.contact_point.c.borrower_key == borrower, t.contact_point.c.kind == "phone"
            )
        ).scalars()
        gateway.undeliverable = {world.cipher.decrypt(v, "contact_point.value_enc") for v in points}
    world.dispatcher({"sms": sms(gateway)}).run(NOW)
    [row] = [r for r in world.rows("sms") if r.action_key == first.action_key]
    assert row.state == "failed" and "EC_ABSENT_SUBSCRIBER" in str(row.last_error)
    assert [e.outcome for e in world.events(action_key=first.action_key)] == ["connected", "failed"]


class _App:
    """The webhook router served by uvicorn on a loopback port, with a container on the test database."""

    def __init__(self, engine: Engine, tmp: Path, api_key: str) -> None:
        env = {
            "DUECOURSE_HOME": str(tmp / "home"),
            "DUECOURSE_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "DUECOURSE_SMS_API_KEY": api_key,
            "DUECOURSE_SMS_URL": "http://127.0.0.1:9",
        }
        self.container = Container(Settings.from_env(env), clock=lambda: NOW + timedelta(minutes=1))
        app = FastAPI()
        app.state.container = self.container
        app.include_router(webhooks.router)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _App:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.container.engine.dispose()

    def url(self, token: str) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}?token={token}"


def test_receipts_pushed_to_the_webhook_are_recorded_once(world: World) -> None:
    fake = FakeInfobip(push_reports=True).start()
    try:
        with _App(world.engine, world.tmp, fake.api_key) as app:
            channel = sms(fake, notify_url=app.url(report_token(fake.api_key)))
            planned = world.allowed("sms")
            world.dispatcher({"sms": channel}).run(NOW)
            fake.wait_pushed(1)
            deadline = time.monotonic() + 20
            while {r.state for r in world.rows("sms")} != {"delivered"} and time.monotonic() < deadline:
                time.sleep(0.05)
            assert {r.state for r in world.rows("sms")} == {"delivered"}
            assert all(p["status"] == 200 for p in fake.pushed)
            receipts = [e for e in world.events(outcome="delivered") if e.channel == "sms"]
            assert len(receipts) == len(planned)
            assert all(e.agent == "provider:infobip" for e in receipts)
            # Infobip repeats a report it is unsure we took: nothing new is recorded.
            body = fake.logs(world.rows("sms")[0].provider_message_id)
            again = httpx2.post(app.url(report_token(fake.api_key)), json=body)
            assert again.status_code == 200 and again.json()["recorded"] == {}
            forged = httpx2.post(app.url("0" * 64), json=body)
            assert forged.status_code == 401
            junk = httpx2.post(app.url(report_token(fake.api_key)), content=b'{"results": 3}')
            assert junk.status_code == 400
            assert len([e for e in world.events(outcome="delivered") if e.channel == "sms"]) == len(planned)
    finally:
        fake.stop()


# --- the send-time re-check ------------------------------------------------------------------------------


def test_paid_held_and_no_longer_allowed_messages_are_cancelled_with_their_reasons(
    world: World, gateway: FakeInfobip
) -> None:
    planned = world.allowed("sms")
    assert len(planned) >= 3
    paid, held, flagged = planned[0], planned[1], planned[2]
    with world.engine.begin() as conn:
        owed = conn.execute(
            select(t.delinquency_snapshot.c.outstanding_total).where(
                t.delinquency_snapshot.c.loan_key == paid.loan_key, t.delinquency_snapshot.c.as_of == DAY
            )
        ).scalar_one()
        conn.execute(
            insert(t.payment).values(
                payment_id="P-TEST-PAID", loan_key=paid.loan_key, value_date=DAY, amount=owed, booked_at=NOW
            )
        )
        held_borrower = conn.execute(
            select(t.loan.c.borrower_key).where(t.loan.c.loan_key == held.loan_key)
        ).scalar_one()
        conn.execute(
            insert(t.hold).values(
                hold_id="H-TEST",
                borrower_key=held_borrower,
                loan_key=None,
                kind="hardship",
                start_date=DAY,
                end_date=None,
                pauses_clock=False,
                pauses_outreach=True,
            )
        )
        flagged_borrower = conn.execute(
            select(t.loan.c.borrower_key).where(t.loan.c.loan_key == flagged.loan_key)
        ).scalar_one()
        conn.execute(update(t.borrower).where(t.borrower.c.borrower_key == flagged_borrower).values(flags="disabled"))
    summary = world.dispatcher({"sms": sms(gateway)}).run(NOW)
    by_action = {r.action_key: r for r in world.rows("sms")}
    assert by_action[paid.action_key].state == "cancelled"
    assert str(by_action[paid.action_key].reason).startswith("paid:")
    assert by_action[held.action_key].state == "cancelled"
    assert str(by_action[held.action_key].reason).startswith("hold:")
    flagged_row = by_action[flagged.action_key]
    assert flagged_row.state == "cancelled" and flagged_row.rules and "HOUSE.VULNERABLE" in flagged_row.rules
    assert "HOUSE.VULNERABLE" in str(flagged_row.reason)
    cancelled = {d.message_id(a.idempotency_key) for a in (paid, held, flagged)}
    assert not cancelled & set(gateway.submissions), "a cancelled message never reaches the gateway"
    assert len(gateway.messages) == len(planned) - 3
    assert summary.counts[("sms", "cancelled")] == 3
    assert summary.cancelled["HOUSE.VULNERABLE"] == 1 and summary.cancelled["paid"] == 1
    audited = {e.entity_id: e.reason for e in world.audit("dispatch.cancelled")}
    assert audited.keys() == {paid.idempotency_key, held.idempotency_key, flagged.idempotency_key}
    verify_ok(world)


def test_out_of_hours_the_message_waits_for_the_next_allowed_moment(world: World, gateway: FakeInfobip) -> None:
    night = datetime(2026, 9, 28, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
    summary = world.dispatcher({"sms": sms(gateway)}).run(night)
    assert not gateway.submissions
    rows = world.rows("sms")
    assert summary.counts[("sms", "rescheduled")] == len(rows) > 0
    for r in rows:
        assert r.state == "queued" and r.attempts == 0 and r.reason and "compliance at" in r.reason
        morning = d._utc(r.next_attempt_at)
        assert morning is not None and night < morning <= night + timedelta(hours=12)
    summary = world.dispatcher({"sms": sms(gateway)}).run(max(d._utc(r.next_attempt_at) for r in rows))  # type: ignore[type-var]
    assert summary.counts[("sms", "sent")] == len(rows)


# --- retries, dead letters, lost answers -------------------------------------------------------------------


def test_failures_back_off_then_die_and_a_replay_sends_them_once(world: World, gateway: FakeInfobip) -> None:
    planned = world.allowed("sms")
    gateway.fail_next("500")
    disp = world.dispatcher({"sms": sms(gateway)}, max_attempts=2)
    summary = disp.run(NOW)
    assert summary.counts[("sms", "retried")] == len(planned) and not gateway.messages
    rows = world.rows("sms")
    for r in rows:
        wait = d._utc(r.next_attempt_at) - NOW  # type: ignore[operator]
        assert r.state == "queued" and r.attempts == 1 and "HTTP 500" in str(r.last_error)
        assert timedelta(seconds=15) <= wait <= timedelta(seconds=30), "first delay: 30 s with jitter in [0.5, 1)"
    assert disp.run(NOW + timedelta(seconds=5)).total("sent") == 0, "not before the back-off has passed"
    gateway.fail_next("429")
    summary = disp.run(NOW + timedelta(seconds=31))
    assert summary.counts[("sms", "dead")] == len(planned)
    dead = d.dead_letters(world.engine)
    assert len(dead) == len(planned)
    assert all(x["attempts"] == 2 and "retries exhausted" in x["reason"] and not x["in_doubt"] for x in dead)
    assert d.replay(world.engine, [dead[0]["id"]], NOW + timedelta(minutes=1), "ops:alice", "gateway fixed") == 1
    assert d.replay(world.engine, None, NOW + timedelta(minutes=1), "ops:alice", "gateway fixed") == len(planned) - 1
    assert len(world.audit("dispatch.replayed")) == len(planned)
    summary = disp.run(NOW + timedelta(minutes=2))
    assert summary.counts[("sms", "sent")] == len(planned)
    assert set(gateway.submissions.values()) == {1} and len(gateway.messages) == len(planned)
    assert not d.dead_letters(world.engine)
    verify_ok(world)


def test_an_answer_lost_after_the_gateway_took_the_messages_is_not_sent_again(
    world: World, gateway: FakeInfobip
) -> None:
    gateway.fail_next("drop_after")
    summary = world.dispatcher({"sms": sms(gateway)}).run(NOW)
    planned = world.allowed("sms")
    assert summary.counts[("sms", "sent")] == len(planned)
    assert set(gateway.submissions.values()) == {1}
    assert gateway.requests["GET /sms/1/logs"] >= len(planned), "the adapter asked before deciding"


# --- a dispatcher that stops in the middle ------------------------------------------------------------------


class Stop(BaseException):
    """The process dies: nothing after this point runs (BaseException, so no handler swallows it)."""


@dataclass
class StopsAround:
    """A real channel whose dispatcher dies just before or just after the channel sends."""

    inner: Any
    after: bool

    @property
    def provider(self) -> str:
        return str(self.inner.provider)

    def send(self, messages: Sequence[Outgoing]) -> list[Result]:
        if self.after:
            self.inner.send(messages)
        raise Stop

    def look_up(self, message_ids: Sequence[str]) -> set[str] | None:
        return self.inner.look_up(message_ids)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.inner.close()


def test_several_dispatching_processes_send_each_message_once_each_its_own_debtors(
    world: World, gateway: FakeInfobip
) -> None:
    policy = d.Policy(batch=1)  # the demo day plans a few messages a channel: a batch each
    url = world.engine.url.render_as_string(hide_password=False)
    recipe = partial(
        helper_dispatcher,
        url,
        world.tmp / "data.key",
        world.signer,
        RULES,
        CTX,
        MESSAGES,
        {"sms": sms(gateway)},
        policy,
    )
    parent = world.dispatcher({"sms": sms(gateway)})
    if world.engine.dialect.name == "sqlite":
        with pytest.raises(ValueError, match="one process"):
            replace(parent, workers=2, recipe=recipe)
        return
    summary = replace(parent, policy=policy, workers=2, recipe=recipe).run(NOW)
    rows = world.rows("sms")
    assert {r.state for r in rows} <= {"sent", "delivered", "cancelled"}, "nothing left queued or sending"
    sent = [r for r in rows if r.state != "cancelled"]
    assert len(sent) == len(gateway.messages) == summary.counts[("sms", "sent")] > 2
    assert set(gateway.submissions.values()) == {1}, "each message reached the gateway once"
    assert {d.message_id(r.idempotency_key) for r in sent} == set(gateway.messages)
    with world.engine.connect() as conn:
        debtor = {k: b for k, b in conn.execute(select(t.loan.c.loan_key, t.loan.c.borrower_key))}
    # Each debtor's messages went through one process: the starting one the even borrower keys, the helper the odd.
    assert {(debtor[r.loan_key] % 2, r.lease_owner) for r in sent} == {(0, parent.owner), (1, f"{parent.owner}/1")}
    assert len(world.events(outcome="connected")) == len(sent)
    verify_ok(world)


@pytest.mark.parametrize("after", [True, False], ids=["died-after-send", "died-before-send"])
def test_a_stopped_sms_dispatcher_is_reconciled_without_sending_twice(
    world: World, gateway: FakeInfobip, after: bool
) -> None:
    planned = world.allowed("sms")
    with pytest.raises(Stop):
        world.dispatcher({"sms": StopsAround(sms(gateway), after)}).run(NOW)
    assert {r.state for r in world.rows("sms")} == {"sending"}
    assert len(gateway.messages) == (len(planned) if after else 0)
    disp = world.dispatcher({"sms": sms(gateway)})
    disp.reconcile(NOW + timedelta(minutes=1), d.Summary())
    assert {r.state for r in world.rows("sms")} == {"sending"}, "the lease still holds"
    summary = disp.run(NOW + timedelta(minutes=6))
    outcome = "reconciled_sent" if after else "reconciled_resend"
    assert summary.counts[("sms", outcome)] == len(planned)
    assert {r.state for r in world.rows("sms")} == {"delivered"}
    assert set(gateway.submissions.values()) == {1} and len(gateway.messages) == len(planned)
    for a in planned:
        assert [e.details["status"] for e in world.events(action_key=a.action_key)] == [
            "sent",
            "DELIVERED/DELIVERED_TO_HANDSET",
        ]
    verify_ok(world)


# --- e-mail over a real SMTP server -------------------------------------------------------------------------


class _Inbox:
    def __init__(self, refuse: str | None = None) -> None:
        self.mails: list[Message] = []
        self.peers: set[Any] = set()  # the client end of each connection a mail came over
        self.refuse = refuse  # an SMTP reply for every RCPT (e.g. "451 4.3.0 try later")

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(message_from_bytes(envelope.original_content))
        self.peers.add(session.peer)
        return "250 Message accepted for delivery"


@pytest.fixture
def inbox() -> Iterator[tuple[_Inbox, str]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = _Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, f"smtp://127.0.0.1:{port}"
    controller.stop()


def test_email_is_sent_over_smtp_once_with_its_message_id_and_code(world: World, inbox: tuple[_Inbox, str]) -> None:
    handler, url = inbox
    mailer = SmtpMailer(url, "collections@example.com")
    summary = world.dispatcher({"email": mailer}).run(NOW)
    rows = world.rows("email")
    sent = [r for r in rows if r.state == "sent"]
    unreachable = [r for r in rows if r.state == "cancelled"]
    assert len(sent) + len(unreachable) == len(rows) == len(world.allowed("email"))
    assert all(str(r.reason).startswith("no address: no valid, consented email") for r in unreachable)
    assert summary.counts[("email", "sent")] == len(sent) == len(handler.mails) > 0
    ids = {m["Message-ID"] for m in handler.mails}
    assert ids == {f"<{d.message_id(r.idempotency_key)}@example.com>" for r in sent}
    assert {r.provider_message_id for r in sent} == ids
    for mail in handler.mails:
        body = mail.get_payload(decode=True).decode("utf-8")  # type: ignore[union-attr]
        [shown] = CODE.findall(body)
        assert world.signer.is_signed(canonical(shown) or "")
        subject = str(make_header(decode_header(mail["Subject"])))
        assert mail["From"] == "collections@example.com" and "L0" in subject
        assert mail["Content-Type"] == 'text/plain; charset="utf-8"' and mail["Content-Language"] in ("zh", "en")
    assert world.dispatcher({"email": mailer}).run(NOW + timedelta(hours=1)).total("sent") == 0
    assert len(handler.mails) == len(sent)


def test_a_large_email_batch_goes_over_several_connections_each_message_once_in_order(
    inbox: tuple[_Inbox, str],
) -> None:
    handler, url = inbox
    batch = [Outgoing(f"m-{i}", f"debtor{i}@example.com", f"text {i}", f"subject {i}", "en") for i in range(230)]
    batch[117] = Outgoing("m-117", "not an address", "text", "subject", "en")
    results = SmtpMailer(url, "collections@example.com", connections=3).send(batch)
    assert [r.message_id for r in results] == [m.message_id for m in batch]
    assert [r.status for r in results] == ["sent"] * 117 + ["failed"] + ["sent"] * 112
    assert sorted(m["Message-ID"] for m in handler.mails) == sorted(
        f"<m-{i}@example.com>" for i in range(230) if i != 117
    )
    assert len(handler.peers) == 3
    assert len(SmtpMailer(url, "collections@example.com", connections=3).send(batch[:60])) == 60
    assert len(handler.peers) == 4, "a batch too small for several connections takes one"


def test_an_smtp_server_that_says_try_later_is_retried(world: World, inbox: tuple[_Inbox, str]) -> None:
    handler, url = inbox
    handler.refuse = "451 4.3.0 mailbox busy, try later"
    world.dispatcher({"email": SmtpMailer(url, "collections@example.com")}).run(NOW)
    rows = [r for r in world.rows("email") if r.state != "cancelled"]
    assert rows and all(r.state == "queued" and r.attempts == 1 and "451" in str(r.last_error) for r in rows)
    handler.refuse = None
    summary = world.dispatcher({"email": SmtpMailer(url, "collections@example.com")}).run(NOW + timedelta(minutes=5))
    assert summary.counts[("email", "sent")] == len(rows) == len(handler.mails)


def test_an_email_dispatcher_that_stopped_mid_send_leaves_dead_letters_in_doubt(
    world: World, inbox: tuple[_Inbox, str]
) -> None:
    handler, url = inbox
    mailer = SmtpMailer(url, "collections@example.com")
    with pytest.raises(Stop):
        world.dispatcher({"email": StopsAround(mailer, after=True)}).run(NOW)
    sent_before = len(handler.mails)
    summary = world.dispatcher({"email": mailer}).run(NOW + timedelta(minutes=6))
    assert summary.counts[("email", "dead")] == sent_before > 0
    dead = d.dead_letters(world.engine)
    assert all(x["in_doubt"] and x["reason"].startswith("in doubt: may have been sent") for x in dead)
    assert len(handler.mails) == sent_before, "never resent automatically"


@dataclass(frozen=True)
class StopsReviewing:
    """A compliance gate whose dispatcher dies while re-checking its batch, before anything is handed over."""

    def review(self, proposals: Any, as_of: date, at: datetime | None = None) -> Any:
        raise Stop


def test_an_email_dispatcher_that_stopped_before_sending_leaves_nothing_in_doubt(
    world: World, inbox: tuple[_Inbox, str]
) -> None:
    handler, url = inbox
    mailer = SmtpMailer(url, "collections@example.com")
    with pytest.raises(Stop):
        replace(world.dispatcher({"email": mailer}), gate=StopsReviewing()).run(NOW)
    stopped = world.rows("email")
    assert {r.state for r in stopped} == {"sending"} and {r.provider_message_id for r in stopped} == {None}
    summary = world.dispatcher({"email": mailer}).run(NOW + timedelta(minutes=6))
    assert summary.counts[("email", "reconciled_resend")] == len(stopped)
    assert d.dead_letters(world.engine) == []
    sent = [r for r in world.rows("email") if r.state == "sent"]
    assert len(sent) == len(handler.mails) == summary.counts[("email", "sent")] > 0
    assert len({m["Message-ID"] for m in handler.mails}) == len(handler.mails), "each sent once"
    assert len(world.audit("dispatch.reconciled_unsent")) == len(stopped)
    verify_ok(world)


# --- app push ---------------------------------------------------------------------------------------------------


def test_app_push_is_signed_and_carries_its_idempotency_key(world: World) -> None:
    receiver = PushReceiver().start()
    try:
        summary = world.dispatcher({"app": PushWebhook(receiver.url, receiver.secret)}).run(NOW)
        sent = [r for r in world.rows("app") if r.state == "sent"]
        assert summary.counts[("app", "sent")] == len(sent) == len(receiver.received) > 0
        assert receiver.bad_signatures == 0 and set(receiver.arrivals.values()) == {1}
        assert set(receiver.received) == {d.message_id(r.idempotency_key) for r in sent}
        assert all(str(r.reason).startswith("no address") for r in world.rows("app") if r.state != "sent")
        assert all(CODE.search(b["text"]) for b in receiver.received.values())
        forged = PushWebhook(receiver.url, "not-the-secret")
        assert [r.status for r in forged.send([Outgoing("x", "y", "z", "s", "en")])] == ["failed"]
        assert receiver.bad_signatures == 1
    finally:
        receiver.stop()


def test_channels_without_settings_stay_queued(world: World) -> None:
    summary = world.dispatcher({}).run(NOW)
    assert summary.total("sent") == 0
    assert summary.waiting == {ch: len(world.allowed(ch)) for ch in ("app", "call", "email", "sms")}
    with world.engine.connect() as conn:
        states = set(conn.execute(select(t.dispatch_outbox.c.state).distinct()).scalars())
        assert states == {"queued"}
        assert conn.execute(select(func.count()).select_from(t.verification_code)).scalar_one() == 0


# --- hand-offs ---------------------------------------------------------------------------------------------------


def test_call_actions_become_agent_tasks_once_and_a_refused_hand_off_is_cancelled(world: World) -> None:
    from duecourse.services.calls import create_call_tasks

    calls = world.allowed("call")
    refused_key = calls[0].action_key

    def call(conn: Any, keys: list[int], now: datetime) -> dict[int, str]:
        create_call_tasks(conn, [k for k in keys if k != refused_key], now)
        return {refused_key: "the number is on the do-not-call list"} if refused_key in keys else {}

    disp = world.dispatcher({})
    disp.hand_offs = {"call": call}
    summary = disp.run(NOW)
    assert summary.counts[("call", "handed_off")] == len(calls) - 1
    assert summary.counts[("call", "cancelled")] == 1
    rows = {r.action_key: r for r in world.rows("call")}
    assert rows[refused_key].state == "cancelled" and "do-not-call" in str(rows[refused_key].reason)
    assert {r.state for k, r in rows.items() if k != refused_key} == {"sent"}
    with world.engine.connect() as conn:
        tasks = list(conn.execute(select(t.call_task.c.action_key)).scalars())
    assert sorted(tasks) == sorted(a.action_key for a in calls if a.action_key != refused_key)
    assert world.dispatcher({}).run(NOW + timedelta(hours=1)).total("handed_off") == 0
    verify_ok(world)


def test_smtp_text_round_trips_and_a_header_breaking_address_is_refused(inbox: tuple[_Inbox, str]) -> None:
    handler, url = inbox
    subject = "示例消费金融 还款提醒：贷款 L000123 已逾期十二天，应还金额人民币一千二百三十四元五角六分 " * 2
    text = "尊敬的客户：\n您的贷款已逾期。核验码 ABCD-EFGH-JKMN-PQRS。\nDear customer: your loan is overdue.\n"
    results = SmtpMailer(url, "collections@example.com").send(
        [
            Outgoing("m-1", "debtor@example.com", text, subject, "zh"),
            Outgoing("m-2", "debtor@example.com\r\nBcc: thief@example.net", text, subject, "zh"),
        ]
    )
    assert [(r.message_id, r.status) for r in results] == [("m-1", "sent"), ("m-2", "failed")]
    [mail] = handler.mails
    assert str(make_header(decode_header(mail["Subject"]))) == subject  # folded over lines, read back whole
    assert mail.get_payload(decode=True).decode("utf-8").replace("\r\n", "\n") == text  # type: ignore[union-attr]
    assert mail["To"] == "debtor@example.com" and mail["Bcc"] is None
    with pytest.raises(ValueError, match="plain address"):
        SmtpMailer(url, "Collections <collections@example.com>")
