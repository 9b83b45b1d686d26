"""A faithful local stand-in for the Infobip SMS API, served over real HTTP on a loopback port.

What the dispatcher relies on behaves as the real API documents it: `POST /sms/2/text/advanced` checks
`Authorization: App <key>` (401 with a `requestError` body otherwise) and the body (400 for a missing
`messages`, destination or text), accepts many messages a request and answers each destination with its
status (PENDING_ACCEPTED, or REJECTED for a number that is not international digits); `GET /sms/1/reports`
hands out each final report once; `GET /sms/1/logs?messageId=` finds a message it has; reports are POSTed
to the message's `notifyUrl`. Deduplication by our `messageId`: a repeat is answered but not sent again,
and `submissions` counts every time a message id arrived, so a test can prove exactly-once sending.
Failures can be injected: 500, 429, or a connection dropped before or after the messages were taken.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PHONE = re.compile(r"^\+?[1-9][0-9]{6,14}$")


def _now() -> str:
    """Infobip's instant format: 2015-02-12T09:58:20.323+0000."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _error(message_id: str, text: str) -> dict[str, Any]:
    return {"requestError": {"serviceException": {"messageId": message_id, "text": text}}}


STATUS = {
    "PENDING": {
        "groupId": 1,
        "groupName": "PENDING",
        "id": 26,
        "name": "PENDING_ACCEPTED",
        "description": "Message sent to next instance",
    },
    "REJECTED": {
        "groupId": 5,
        "groupName": "REJECTED",
        "id": 51,
        "name": "REJECTED_DESTINATION",
        "description": "Invalid destination address",
    },
    "DELIVERED": {
        "groupId": 3,
        "groupName": "DELIVERED",
        "id": 5,
        "name": "DELIVERED_TO_HANDSET",
        "description": "Message delivered to handset",
    },
    "UNDELIVERABLE": {
        "groupId": 2,
        "groupName": "UNDELIVERABLE",
        "id": 9,
        "name": "UNDELIVERABLE_NOT_DELIVERED",
        "description": "Message sent not delivered",
    },
}
NO_ERROR = {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "description": "No Error", "permanent": False}
ABSENT = {
    "groupId": 1,
    "groupName": "HANDSET_ERRORS",
    "id": 27,
    "name": "EC_ABSENT_SUBSCRIBER",
    "description": "Absent Subscriber",
    "permanent": False,
}


@dataclass
class Sms:
    message_id: str
    to: str
    sender: str
    text: str
    notify_url: str | None
    sent_at: str
    status: dict[str, Any]
    done_at: str | None = None


@dataclass
class FakeInfobip:
    api_key: str = "test-key"
    undeliverable: set[str] = field(default_factory=set)  # numbers whose messages are reported UNDELIVERABLE
    push_reports: bool = True  # POST reports to notifyUrl (else they wait for a pull)
    delay: float = 0.0  # seconds between taking a send request's messages and answering (a window to stop a sender)

    def __post_init__(self) -> None:
        self.messages: dict[str, Sms] = {}
        self.submissions: Counter[str] = Counter()  # every arrival of each message id, repeats included
        self.requests: Counter[str] = Counter()  # "POST /sms/2/text/advanced" -> count
        self.pending_reports: deque[dict[str, Any]] = deque()  # for GET /sms/1/reports, handed out once
        self.pushed: list[dict[str, Any]] = []  # reports delivered to a notifyUrl (status, body)
        self.failures: deque[str] = deque()  # "500" | "429" | "drop_before" | "drop_after", one per send request
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._pusher: threading.Thread | None = None
        self._to_push: deque[Sms] = deque()
        self._stop = threading.Event()

    # --- test controls ---

    def fail_next(self, *kinds: str) -> None:
        with self.lock:
            self.failures.extend(kinds)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeInfobip:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._pusher = threading.Thread(target=self._push_loop, daemon=True)
        self._pusher.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait_pushed(self, n: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.pushed) >= n and not self._to_push:
                    return
            time.sleep(0.02)
        raise TimeoutError(f"{len(self.pushed)} of {n} reports pushed")

    # --- the API ---

    def accept(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return 400, _error("BAD_REQUEST", "messages: must not be empty")
        answers = []
        with self.lock:
            for m in body["messages"]:
                if not isinstance(m, dict) or not isinstance(m.get("text"), str) or not m.get("destinations"):
                    return 400, _error("BAD_REQUEST", "each message needs destinations and text")
                for d in m["destinations"]:
                    to, mid = str(d.get("to", "")), str(d.get("messageId") or f"gen-{len(self.messages)}")
                    self.submissions[mid] += 1
                    known = self.messages.get(mid)
                    if known is None:
                        status = STATUS["PENDING"] if PHONE.match(to) else STATUS["REJECTED"]
                        known = Sms(mid, to, str(m.get("from", "")), m["text"], m.get("notifyUrl"), _now(), status)
                        self.messages[mid] = known
                        if status is STATUS["PENDING"]:
                            self._deliver(known)
                    accepted = known.status["groupName"] != "REJECTED"
                    answers.append(
                        {"to": to, "status": STATUS["PENDING" if accepted else "REJECTED"], "messageId": mid}
                    )
        return 200, {"bulkId": f"bulk-{sum(self.requests.values())}", "messages": answers}

    def _deliver(self, sms: Sms) -> None:
        """The handset answers at once: a final report, pushed to the notifyUrl and kept for one pull."""
        sms.status = STATUS["UNDELIVERABLE"] if sms.to in self.undeliverable else STATUS["DELIVERED"]
        sms.done_at = _now()
        if sms.notify_url and self.push_reports:
            self._to_push.append(sms)
        else:
            self.pending_reports.append(self._report(sms))

    def _report(self, sms: Sms) -> dict[str, Any]:
        return {
            "bulkId": None,
            "messageId": sms.message_id,
            "to": sms.to,
            "sentAt": sms.sent_at,
            "doneAt": sms.done_at,
            "smsCount": 1,
            "price": {"pricePerMessage": 0.01, "currency": "EUR"},
            "status": sms.status,
            "error": ABSENT if sms.status["groupName"] == "UNDELIVERABLE" else NO_ERROR,
        }

    def reports(self, limit: int) -> dict[str, Any]:
        with self.lock:
            out = [self.pending_reports.popleft() for _ in range(min(limit, len(self.pending_reports)))]
        return {"results": out}

    def logs(self, message_id: str | None) -> dict[str, Any]:
        with self.lock:
            found = [self.messages[message_id]] if message_id in self.messages else []
            if message_id is None:
                found = list(self.messages.values())[:1000]
            return {"results": [{**self._report(s), "from": s.sender, "text": s.text} for s in found]}

    def _push_loop(self) -> None:
        while not self._stop.is_set():
            with self.lock:
                batch = [self._to_push.popleft() for _ in range(min(100, len(self._to_push)))]
                reports: dict[str | None, list[dict[str, Any]]] = {}
                for s in batch:
                    reports.setdefault(s.notify_url, []).append(self._report(s))
            if not batch:
                time.sleep(0.01)
                continue
            for url, results in reports.items():
                body = json.dumps({"results": results}).encode()
                request = urllib.request.Request(
                    str(url), data=body, headers={"Content-Type": "application/json"}, method="POST"
                )
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        status = response.status
                except Exception as exc:  # a report that could not be pushed waits for a pull instead
                    status = repr(exc)
                    with self.lock:
                        self.pending_reports.extend(results)
                with self.lock:
                    self.pushed.append({"status": status, "count": len(results)})


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer (a killed dispatcher) is expected here, not an error to print."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API
    server_fake: FakeInfobip

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == f"App {self.server_fake.api_key}":
            return True
        self._reply(401, _error("UNAUTHORIZED", "Invalid login details"))
        return False

    def do_POST(self) -> None:
        fake = self.server_fake
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        path = urlsplit(self.path).path
        with fake.lock:
            fake.requests[f"POST {path}"] += 1
        if path != "/sms/2/text/advanced":
            self._reply(404, _error("NOT_FOUND", path))
            return
        if not self._authorised():
            return
        if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
            self._reply(415, _error("UNSUPPORTED_MEDIA_TYPE", "application/json expected"))
            return
        with fake.lock:
            failure = fake.failures.popleft() if fake.failures else None
        if failure in ("500", "429"):
            self._reply(int(failure), _error("GENERAL_ERROR" if failure == "500" else "TOO_MANY_REQUESTS", failure))
            return
        if failure == "drop_before":
            self.close_connection = True
            self.connection.close()
            return
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            self._reply(400, _error("BAD_REQUEST", "malformed JSON"))
            return
        status, answer = fake.accept(body)
        if fake.delay:
            time.sleep(fake.delay)
        if failure == "drop_after":  # taken, but the answer never arrives
            self.close_connection = True
            self.connection.close()
            return
        self._reply(status, answer)

    def do_GET(self) -> None:
        fake = self.server_fake
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        with fake.lock:
            fake.requests[f"GET {parts.path}"] += 1
        if not self._authorised():
            return
        if parts.path == "/sms/1/reports":
            self._reply(200, fake.reports(min(int(query.get("limit", ["50"])[0]), 1000)))
        elif parts.path == "/sms/1/logs":
            self._reply(200, fake.logs(query.get("messageId", [None])[0]))
        else:
            self._reply(404, _error("NOT_FOUND", parts.path))
