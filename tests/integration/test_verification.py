"""Checking verification codes on both backends: the service (genuine, forged, altered, expired, revoked,
unknown-but-signed, identity proof, throttling, scam alerts, audit), the /verify page and API over HTTP, and
the `duecourse web serve` / `duecourse web alerts` commands."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, insert, select, update

from duecourse.adapters.db import tables as t
from duecourse.audit.log import entries, verify
from duecourse.bootstrap import Container
from duecourse.demo.book import generate_book, write_book
from duecourse.domain.verification import ALPHABET, CodeSigner, digest, display, identity_number, masked
from duecourse.ledger.engine import ledger_state
from duecourse.services.book_frames import load_book
from duecourse.services.importer import import_book
from duecourse.services.verification import (
    LIMITS,
    CodeRequest,
    Identity,
    Limits,
    alerts,
    amounts_owed,
    check,
    index_identities,
    issue,
)
from duecourse.settings import Settings
from duecourse.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
BOOK_DAY = date(2026, 9, 28)
NOW = datetime(2026, 9, 29, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, the day after the book's day
LENDER = "示例消费金融有限公司"
HOTLINE = "400-800-1234"


@dataclass
class Home:
    """A DueCourse installation for one test: a container on the backend under test with a small book."""

    container: Container
    borrower_key: int
    loan_key: int
    birth_date: date
    national_id: str
    phone: str

    def issue(self, purpose: str = "message", channel: str = "sms", **kw: Any) -> str:
        at = kw.pop("at", NOW - timedelta(days=1))
        request = CodeRequest(purpose, channel, self.borrower_key, LENDER, loan_key=self.loan_key, **kw)
        with self.container.engine.begin() as conn:
            return issue(conn, self.container.signer, request, at)


def make_home(database_url: str, folder: Path, now: datetime = NOW) -> Home:
    """Settings like production's, pointed at `folder`; a 30-borrower demo book imported with the real cipher."""
    env = {
        "DUECOURSE_HOME": str(folder),
        "DUECOURSE_DATABASE_URL": database_url,
        "DUECOURSE_MESSAGES": str(ROOT / "templates" / "messages.yaml"),
        "DUECOURSE_RULES": str(ROOT / "rules"),
        "DUECOURSE_STRATEGY": str(ROOT / "strategies" / "default.yaml"),
    }
    container = Container(Settings.from_env(env), clock=lambda: now)
    book = write_book(generate_book(30, BOOK_DAY, seed=5, days_ahead=1), folder / "book", "csv")
    report = import_book(container.engine, book, folder / "rejects", container.cipher, "test", now - timedelta(hours=3))
    assert report.rejected == 0
    # The borrower whose loan has the most due: the identity proof must show a real amount.
    frames = load_book(container.engine, now.date())
    state = ledger_state(
        frames.loans, frames.instalments, frames.payments, frames.holds, frames.conventions, now.date()
    )
    due = state.with_columns(due=sum(state[c] for c in ("due_principal", "due_interest", "due_fee", "due_penalty")))
    loan_key = int(due.sort("due", descending=True)["loan_key"][0])
    with container.engine.begin() as conn:
        borrower_key = conn.execute(select(t.loan.c.borrower_key).where(t.loan.c.loan_key == loan_key)).scalar_one()
        b = conn.execute(select(t.borrower).where(t.borrower.c.borrower_key == borrower_key)).one()
        phone_token = (
            conn.execute(
                select(t.contact_point.c.value_enc).where(
                    t.contact_point.c.borrower_key == borrower_key,
                    t.contact_point.c.kind == "phone",
                    t.contact_point.c.owner == "borrower",
                )
            )
            .scalars()
            .first()
        )
        assert phone_token is not None
        index_identities(conn, container.cipher, container.signer, [borrower_key])
    return Home(
        container,
        borrower_key,
        loan_key,
        b.birth_date,
        container.cipher.decrypt(b.national_id_enc, "borrower.national_id_enc"),
        container.cipher.decrypt(phone_token, "contact_point.value_enc"),
    )


@pytest.fixture
def home(migrated_url: str, tmp_path: Path) -> Iterator[Home]:
    h = make_home(migrated_url, tmp_path)
    yield h
    h.container.engine.dispose()


def _check(home: Home, typed: str, client: str = "203.0.113.7", **kw: Any) -> Any:
    with home.container.engine.begin() as conn:
        return check(conn, home.container.signer, typed, client, kw.pop("now", NOW), cipher=home.container.cipher, **kw)


def _attempts(home: Home) -> list[dict[str, Any]]:
    with home.container.engine.connect() as conn:
        rows = conn.execute(select(t.verification_attempt).order_by(t.verification_attempt.c.attempt_key)).all()
    return [dict(r._mapping) for r in rows]


def _audit(home: Home, action: str) -> list[dict[str, Any]]:
    with home.container.engine.connect() as conn:
        return [e for e in entries(conn) if e["action"] == action]


def _altered(code: str) -> str:
    """The same code with one character changed (as a mistyped or tampered code would be)."""
    i = 5
    return code[:i] + ALPHABET[(ALPHABET.index(code[i]) + 1) % len(ALPHABET)] + code[i + 1 :]


def _forged(home: Home) -> str:
    """A well-formed code whose tag was not made with this lender's key."""
    return CodeSigner(b"someone else's key, 32 bytes long").new_code()


def _signed_but_never_issued(home: Home) -> str:
    return home.container.signer.new_code()


# --- the service ---------------------------------------------------------------------------------------


def test_a_genuine_code_names_lender_channel_and_date_and_is_audited(home: Home) -> None:
    code = home.issue("message", "sms")
    result = _check(home, display(code).lower())  # read back as printed, in lower case
    assert result.genuine and result.result == "genuine"
    assert (result.lender, result.channel, result.purpose) == (LENDER, "sms", "message")
    assert result.issued_at == NOW - timedelta(days=1) and result.code == display(code)
    assert not result.identity_proven
    [attempt] = _attempts(home)
    assert attempt["result"] == "genuine" and attempt["failed"] is False
    assert attempt["code_prefix"] == digest(code)[:12] and attempt["borrower_key"] == home.borrower_key
    [audited] = _audit(home, "verification.checked")
    assert audited["entity_id"] == str(attempt["attempt_key"]) and audited["reason"] == "genuine"
    payload = json.loads(audited["payload"])
    assert payload["result"] == "genuine" and payload["borrower_key"] == home.borrower_key
    # Neither the code nor the client's address is in the audit entry, only prefixes of keyed digests.
    assert code not in audited["payload"] and display(code) not in audited["payload"]
    assert "203.0.113.7" not in audited["payload"] and attempt["client_key"] != "203.0.113.7"
    with home.container.engine.connect() as conn:
        assert verify(conn)[1] is None


@pytest.mark.parametrize("kind", ["forged", "altered", "malformed"])
def test_forged_altered_and_malformed_codes_are_refused_without_looking_the_code_up(home: Home, kind: str) -> None:
    issued = home.issue()
    typed = {"forged": _forged(home), "altered": _altered(issued), "malformed": "K7QM-3XZP"}[kind]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(home.container.engine, "before_cursor_execute", seen)
    try:
        result = _check(home, typed)
    finally:
        event.remove(home.container.engine, "before_cursor_execute", seen)
    assert not result.genuine and result.lender is None
    assert result.result == {"forged": "forged", "altered": "forged", "malformed": "malformed"}[kind]
    assert statements, "the attempt itself is still recorded"
    assert not any("verification_code" in s for s in statements), "a bad code never reaches the codes table"
    [attempt] = _attempts(home)
    assert attempt["failed"] is True and attempt["borrower_key"] is None


def test_expired_revoked_and_never_issued_codes_are_not_genuine(home: Home) -> None:
    expired = home.issue(valid_for=timedelta(hours=1))
    revoked = home.issue()
    with home.container.engine.begin() as conn:
        vc = t.verification_code
        conn.execute(update(vc).where(vc.c.code_digest == digest(revoked)).values(revoked_at=NOW - timedelta(hours=2)))
    unknown = _signed_but_never_issued(home)
    results = [_check(home, c) for c in (expired, revoked, unknown)]
    assert [r.result for r in results] == ["expired", "revoked", "unknown"]
    assert not any(r.genuine or r.lender for r in results)
    assert [a["result"] for a in _attempts(home)] == ["expired", "revoked", "unknown"]
    # The code is genuine up to the instant it expires, not after.
    still = home.issue(valid_for=timedelta(days=1, seconds=1))
    assert _check(home, still).genuine
    assert not _check(home, still, now=NOW + timedelta(seconds=1)).genuine


def test_identity_proof_is_needed_for_the_amount_owed(home: Home) -> None:
    code = home.issue("notice", "letter")
    wrong = _check(
        home, code, identity=Identity(home.birth_date, "0000" if home.national_id[-4:] != "0000" else "1111")
    )
    assert wrong.genuine and wrong.result == "identity_mismatch" and not wrong.identity_proven
    later = _check(home, code, identity=Identity(home.birth_date + timedelta(days=1), home.national_id[-4:]))
    assert later.result == "identity_mismatch"
    right = _check(home, code, identity=Identity(home.birth_date, home.national_id[-4:].lower()))
    assert right.genuine and right.identity_proven and right.result == "genuine"
    assert [a["failed"] for a in _attempts(home)] == [True, True, False], "a wrong proof counts against the client"
    owed = amounts_owed(home.container.engine, home.borrower_key, right.loan_key, NOW.date())
    frames = load_book(home.container.engine, NOW.date(), [home.loan_key])
    state = ledger_state(
        frames.loans, frames.instalments, frames.payments, frames.holds, frames.conventions, NOW.date()
    )
    s = state.row(0, named=True)
    [o] = owed
    assert o.due == s["due_principal"] + s["due_interest"] + s["due_fee"] + s["due_penalty"] > 0
    assert o.oldest_unpaid_due_date == s["oldest_unpaid_due_date"]


def test_the_client_is_throttled_after_too_many_failures_even_for_a_genuine_code(home: Home) -> None:
    limits = Limits(client_failures=3, client_window=timedelta(minutes=10))
    genuine = home.issue()
    for i in range(3):
        assert _check(home, _forged(home), now=NOW + timedelta(minutes=i), limits=limits).result == "forged"
    blocked = _check(home, genuine, now=NOW + timedelta(minutes=3), limits=limits)
    assert blocked.status == "throttled" and not blocked.genuine and blocked.lender is None
    # The first failure (at NOW) leaves the window at NOW + 10 min: 7 minutes after this attempt.
    assert blocked.retry_after == 7 * 60
    assert _check(home, genuine, client="198.51.100.1", now=NOW + timedelta(minutes=3), limits=limits).genuine
    assert _check(home, genuine, now=NOW + timedelta(minutes=10, seconds=1), limits=limits).genuine
    results = [a["result"] for a in _attempts(home)]
    assert results == ["forged"] * 3 + ["throttled", "genuine", "genuine"]
    assert len(_audit(home, "verification.checked")) == 6


def test_the_global_ceiling_throttles_every_client(home: Home) -> None:
    limits = Limits(global_failures=4, global_window=timedelta(minutes=1))
    for i in range(4):
        _check(home, _forged(home), client=f"192.0.2.{i}", limits=limits)
    fresh = _check(home, home.issue(), client="192.0.2.99", limits=limits)
    assert fresh.status == "throttled" and fresh.retry_after == 60
    assert _check(home, home.issue(), client="192.0.2.99", now=NOW + timedelta(minutes=1), limits=limits).genuine


def test_a_burst_of_failures_naming_one_debtor_raises_one_alert(home: Home) -> None:
    limits = Limits(alert_failures=3, alert_window=timedelta(hours=1), client_failures=100)
    number = home.phone
    spaced = f"+86 {number[-11:-8]} {number[-8:-4]} {number[-4:]}" if number.startswith("+86") else number
    for i, typed in enumerate([number, spaced]):
        _check(home, _forged(home), client=f"192.0.2.{i}", named=typed, now=NOW + timedelta(minutes=i), limits=limits)
    _check(home, home.issue(), named=number, now=NOW + timedelta(minutes=2), limits=limits)  # genuine: not counted
    with home.container.engine.connect() as conn:
        assert alerts(conn) == []
    for i in range(3, 5):
        _check(home, _signed_but_never_issued(home), named=number, now=NOW + timedelta(minutes=i), limits=limits)
    with home.container.engine.connect() as conn:
        [alert] = alerts(conn)
    assert alert["kind"] == "scam_campaign" and alert["failures"] == 4
    assert alert["first_seen"] == NOW and alert["last_seen"] == NOW + timedelta(minutes=4)
    assert alert["masked"].endswith(number[-4:]) and number[-8:-4] not in alert["masked"]
    with home.container.engine.connect() as conn:
        borrower_id = conn.execute(
            select(t.borrower.c.borrower_id).where(t.borrower.c.borrower_key == home.borrower_key)
        ).scalar_one()
    assert alert["borrower_id"] == borrower_id, "the identity index resolves the number to the debtor"
    [raised] = _audit(home, "verification.alert_raised")
    [extended] = _audit(home, "verification.alert_extended")
    assert json.loads(raised["payload"])["failures"] == 3 and json.loads(extended["payload"])["failures"] == 4
    assert number[-11:] not in raised["payload"] + extended["payload"], "no phone number in clear in the audit"
    stored = [a["named_hash"] for a in _attempts(home)]
    assert len(set(stored)) == 1 and stored[0] != number, "only the keyed hash of the number is kept"


# --- over HTTP -----------------------------------------------------------------------------------------


@pytest.fixture
def client(home: Home) -> Iterator[TestClient]:
    with TestClient(create_app(home.container, LIMITS), client=("203.0.113.9", 50000)) as c:
        yield c


def test_the_page_shows_genuine_with_the_lender_and_security_headers(home: Home, client: TestClient) -> None:
    code = home.issue("message", "sms")
    page = client.get("/verify", params={"code": display(code)})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "真实：此联系来自我司" in page.text and "Genuine: this contact is from us" in page.text
    english_name = home.container.messages.lender.name["en"]
    assert LENDER in page.text and english_name in page.text and HOTLINE in page.text
    assert "2026年9月28日" in page.text and "September 28, 2026" in page.text
    assert 'lang="zh-CN"' in page.text and 'lang="en"' in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "http" not in csp
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    assert "server" not in page.headers and "<script" not in page.text
    assert client.get("/docs").status_code == 404, "no CDN-loading API docs on the public site"


def test_the_page_says_do_not_pay_for_a_fake_code_in_both_languages(home: Home, client: TestClient) -> None:
    for response in (
        client.post("/verify", data={"code": _forged(home)}),
        client.get("/verify", params={"code": "nonsense"}),
        client.get("/verify", params={"code": _signed_but_never_issued(home), "lang": "en"}),
    ):
        assert response.status_code == 200
        assert f"非真实：请勿付款，请拨打官方热线 {HOTLINE}" in response.text
        assert f"Not genuine: do not pay, call the official hotline {HOTLINE}" in response.text
        assert LENDER not in response.text.split("</h1>")[1]
    assert client.get("/verify", params={"lang": "en"}).text.index('lang="en"') < client.get(
        "/verify", params={"lang": "en"}
    ).text.index('<span lang="zh-CN"')


def test_post_without_a_code_is_400(client: TestClient) -> None:
    response = client.post("/verify", data={"named": "13800138001"})
    assert response.status_code == 400 and "缺少核实码" in response.text
    assert client.post("/verify", data={}, headers={"accept": "application/json"}).status_code == 400
    assert client.get("/verify", params={"lang": "fr"}).status_code == 422


def test_json_for_other_systems_and_identity_on_the_form(home: Home, client: TestClient) -> None:
    code = home.issue("notice", "letter")
    body = client.get(f"/api/verify/{code}").json()
    assert body["genuine"] is True and body["lender"] == {"zh": LENDER, "en": home.container.messages.lender.name["en"]}
    assert body["channel"] == {"zh": "信函", "en": "letter"} and body["hotline"] == HOTLINE and "owed" not in body
    assert "borrower_key" not in body and "loan_key" not in body
    same = client.get("/verify", params={"code": code}, headers={"accept": "application/json"}).json()
    assert same["code"] == body["code"] == display(code)
    fake = client.get(f"/api/verify/{_altered(code)}").json()
    assert fake["genuine"] is False and "do not pay" in fake["message"]["en"] and "lender" not in fake
    proven = client.post(
        "/verify",
        data={"code": code, "birth_date": home.birth_date.isoformat(), "id_last4": home.national_id[-4:]},
        headers={"accept": "application/json"},
    ).json()
    [owed] = proven["owed"]
    expected = amounts_owed(home.container.engine, home.borrower_key, home.loan_key, NOW.date())[0]
    assert owed["due"] == f"{expected.due / 100:.2f}" and owed["currency"] == "CNY"
    assert "6222 0000 1111 2222" in proven["pay"]["zh"]
    page = client.post(
        "/verify", data={"code": code, "birth_date": home.birth_date.isoformat(), "id_last4": home.national_id[-4:]}
    )
    assert "当前应还" in page.text and "due now" in page.text
    refused = client.post("/verify", data={"code": code, "birth_date": "1900-01-01", "id_last4": "9999"})
    assert "身份未能确认" in refused.text and "当前应还" not in refused.text


def test_a_visit_code_shows_the_team_or_says_none_is_assigned(home: Home, client: TestClient) -> None:
    code = home.issue("visit", "visit", reference="visit:V-NOT-PLANNED")
    page = client.get("/verify", params={"code": code})
    assert "上门拜访" in page.text and "No team is assigned yet" in page.text


def test_a_visit_code_names_the_visiting_team_with_badges(home: Home, client: TestClient) -> None:
    """The team comes from the visits tables (services/visits.py: visit_team_for_reference)."""
    cipher, at = home.container.cipher, NOW - timedelta(days=2)
    with home.container.engine.begin() as conn:
        contact_key = (
            conn.execute(
                select(t.contact_point.c.contact_key).where(t.contact_point.c.borrower_key == home.borrower_key)
            )
            .scalars()
            .first()
        )
        action_key = conn.execute(
            insert(t.proposed_action)
            .values(
                idempotency_key="test:visit", as_of=at.date(), loan_key=home.loan_key, segment="s", ladder="l",
                step="visit", action="visit", channel="visit", priority=1, arm="a", reason="test",
                compliance_status="allowed", compliance_reason="test",
            )
            .returning(t.proposed_action.c.action_key)
        ).scalar_one()  # fmt: skip
        visit_key = conn.execute(
            insert(t.visit)
            .values(
                visit_id="V-2026-TEST", action_key=action_key, borrower_key=home.borrower_key, loan_key=home.loan_key,
                contact_key=contact_key, status="scheduled", currency="CNY", balance=1, expected_recovery=1, cost=1,
                office_id="SH-1", distance_m=1, eligibility={}, window_start=NOW.date(), window_end=NOW.date(),
                planned_at=at,
            )
            .returning(t.visit.c.visit_key)
        ).scalar_one()  # fmt: skip
        for staff_id, name, badge in (("S1", "李娜", "SH-0042"), ("S2", "王强", "SH-0017")):
            staff_key = conn.execute(
                insert(t.staff)
                .values(staff_id=staff_id, name_enc=cipher.encrypt(name, "staff.name_enc"), badge=badge,
                        region="CN-SH", active=True, updated_at=at)
                .returning(t.staff.c.staff_key)
            ).scalar_one()  # fmt: skip
            conn.execute(insert(t.visit_team).values(visit_key=visit_key, staff_key=staff_key))
    code = home.issue("visit", "visit", reference="visit:V-2026-TEST")
    body = client.get(f"/api/verify/{code}").json()
    assert body["visit_team"] == [{"name": "王强", "badge": "SH-0017"}, {"name": "李娜", "badge": "SH-0042"}]
    page = client.get("/verify", params={"code": code}).text
    assert "李娜" in page and "SH-0042" in page and "王强" in page and "SH-0017" in page
    with home.container.engine.connect() as conn:
        audited = [e["payload"] for e in entries(conn) if e["action"] == "verification.checked"]
    assert audited and not any("李娜" in p for p in audited), "staff names stay out of the audit entry"


def test_the_n_plus_first_failure_is_429_with_retry_after(home: Home) -> None:
    limits = Limits(client_failures=2)
    with TestClient(create_app(home.container, limits), client=("203.0.113.10", 1)) as c:
        assert [c.get(f"/api/verify/{_forged(home)}").status_code for _ in range(2)] == [200, 200]
        page = c.get("/verify", params={"code": home.issue()})
        api = c.get(f"/api/verify/{home.issue()}")
    assert page.status_code == api.status_code == 429
    assert int(page.headers["retry-after"]) == int(api.headers["retry-after"]) == 15 * 60
    assert "尝试次数过多" in page.text and "Too many attempts" in page.text and HOTLINE in page.text
    assert api.json()["genuine"] is False


# --- the commands --------------------------------------------------------------------------------------


def _env(home: Home) -> dict[str, str]:
    s = home.container.settings
    return {
        **os.environ,
        "DUECOURSE_HOME": str(s.data_dir),
        "DUECOURSE_DATABASE_URL": s.database_url,
        "DUECOURSE_MESSAGES": str(s.messages_path),
        "DUECOURSE_RULES": str(s.rules_path),
        "DUECOURSE_STRATEGY": str(s.strategy_path),
    }


def _get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_serve_answers_on_loopback_without_a_server_banner(home: Home) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = home.issue(at=datetime.now(UTC))  # the served app runs on the real clock
    command = [sys.executable, "-m", "duecourse", "web", "serve", "--port", str(port)]
    with subprocess.Popen(
        command, cwd=ROOT, env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as server:
        try:
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, "the server exited"
                try:
                    status, headers, _ = _get(port, "/verify")
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the server did not start within 60 s"
                    time.sleep(0.2)
            assert status == 200 and "server" not in headers
            assert "default-src 'none'" in headers["content-security-policy"]
            status, _, body = _get(port, f"/api/verify/{display(code)}")
            answer = json.loads(body)
            assert status == 200 and answer["genuine"] is True and answer["hotline"] == HOTLINE
        finally:
            server.terminate()


def test_alerts_command_lists_the_campaign(home: Home) -> None:
    limits = Limits(alert_failures=2, alert_window=timedelta(hours=1))
    for i in range(2):
        at = NOW + timedelta(minutes=i)
        _check(home, _forged(home), client=f"192.0.2.{i}", named=home.phone, now=at, limits=limits)
    cli = [sys.executable, "-m", "duecourse", "web", "alerts"]
    listed = subprocess.run([*cli, "--json"], cwd=ROOT, env=_env(home), capture_output=True, text=True, check=True)
    [alert] = json.loads(listed.stdout)
    assert alert["kind"] == "scam_campaign" and alert["failures"] == 2 and alert["masked"].endswith(home.phone[-4:])
    table = subprocess.run(cli, cwd=ROOT, env={**_env(home), "COLUMNS": "200"}, capture_output=True, text=True)
    assert table.returncode == 0 and "scam_campaign" in table.stdout and home.phone[-4:] in table.stdout
    assert home.phone[-8:-4] not in table.stdout


# --- reading what people type --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("+86 138-0013-8001", ("phone", "13800138001")),
        ("0086 13800138001", ("phone", "13800138001")),
        ("13800138001", ("phone", "13800138001")),
        ("+44 20 7946 0958", ("phone", "442079460958")),
        ("11010119850312031x", ("national_id", "11010119850312031X")),
        ("110101 19850312 0316", ("national_id", "110101198503120316")),
        ("12ab", None),
        ("123", None),
    ],
)
def test_numbers_typed_on_the_page_are_read_alike(typed: str, expected: tuple[str, str] | None) -> None:
    assert identity_number(typed) == expected
    if expected is not None:
        shown = masked(expected[1])
        assert shown.endswith(expected[1][-4:]) and set(shown[:-4]) == {"*"} and len(shown) == len(expected[1])


def test_fingerprints_depend_on_key_and_purpose() -> None:
    one, two = CodeSigner(b"k" * 32), CodeSigner(b"j" * 32)
    assert one.fingerprint("identity", "13800138001") == one.fingerprint("identity", "13800138001")
    assert one.fingerprint("identity", "13800138001") != two.fingerprint("identity", "13800138001")
    assert one.fingerprint("identity", "13800138001") != one.fingerprint("client", "13800138001")
    assert "13800138001" not in one.fingerprint("identity", "13800138001")


def test_index_identities_command_rebuilds_the_index_and_audits(home: Home) -> None:
    with home.container.engine.begin() as conn:
        before = conn.execute(select(t.identity_index)).all()
        conn.execute(t.identity_index.delete())
    done = subprocess.run(
        [sys.executable, "-m", "duecourse", "web", "index-identities"], cwd=ROOT, env=_env(home), capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()
    with home.container.engine.connect() as conn:
        after = conn.execute(select(t.identity_index)).all()
        borrowers = conn.execute(select(func.count()).select_from(t.borrower)).scalar_one()
    assert len(after) > borrowers, "every borrower's national ID and at least their own phones"
    assert {tuple(r) for r in before} <= {tuple(r) for r in after}
    number = identity_number(home.phone)
    assert number is not None
    assert (home.borrower_key, "phone", home.container.signer.fingerprint("identity", number[1])) in {
        tuple(r) for r in after
    }
    [audited] = _audit(home, "verification.identities_indexed")
    assert json.loads(audited["payload"]) == {"borrowers": borrowers, "rows": len(after)}
