"""A lender's app-push endpoint on loopback: checks each body's HMAC signature, drops repeats by Idempotency-Key."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class PushReceiver:
    secret: str = "push-secret"
    refuse: set[str] = field(default_factory=set)  # installation ids answered 404 (unknown app installation)

    def __post_init__(self) -> None:
        self.received: dict[str, dict[str, Any]] = {}  # by Idempotency-Key
        self.arrivals: Counter[str] = Counter()
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/push"

    def start(self) -> PushReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                expected = "sha256=" + hmac.new(receiver.secret.encode(), raw, hashlib.sha256).hexdigest()
                key = self.headers.get("Idempotency-Key", "")
                with receiver.lock:
                    if not hmac.compare_digest(self.headers.get("X-DueCourse-Signature", ""), expected):
                        receiver.bad_signatures += 1
                        status = 401
                    else:
                        body = json.loads(raw)
                        receiver.arrivals[key] += 1
                        status = 404 if body["to"] in receiver.refuse else 202
                        if status == 202:
                            receiver.received.setdefault(key, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
