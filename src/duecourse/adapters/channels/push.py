"""App push through the lender's push webhook: a signed JSON POST per message, deduplicated by its Idempotency-Key.

Body `{"message_id", "to", "text", "subject", "language"}`; headers `Idempotency-Key: <message_id>` and
`X-DueCourse-Signature: sha256=<hex HMAC-SHA256 of the exact body under push_secret>`, so the receiver
can refuse forged pushes and drop a repeat. 2xx = sent; 429 and 5xx are retried later; any other 4xx
(an unknown installation) is final. The webhook cannot be asked afterwards whether it took a message.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from duecourse.domain.dispatch import Outgoing, Result

PROVIDER: Final = "push"
SIGNATURE_HEADER: Final = "X-DueCourse-Signature"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class PushWebhook:
    url: str
    secret: str
    timeout: float = 30.0

    provider: str = PROVIDER

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"push URL must be http(s)://host[:port]/path: {self.url!r}")
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def send(self, messages: Sequence[Outgoing]) -> list[Result]:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout)
        results: list[Result] = []
        try:
            for m in messages:
                body = json.dumps(
                    {
                        "message_id": m.message_id,
                        "to": m.to,
                        "text": m.text,
                        "subject": m.subject,
                        "language": m.language,
                    },
                    ensure_ascii=False,
                ).encode()
                headers = {
                    "Content-Type": "application/json",
                    "Idempotency-Key": m.message_id,
                    SIGNATURE_HEADER: signature(self.secret, body),
                }
                try:
                    conn.request("POST", self._path, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()  # reopened by the next request
                    # The receiver drops a repeat by its Idempotency-Key, so trying again later is safe.
                    results.append(Result(m.message_id, "retry", error=f"connection: {exc!r}"))
                    continue
                if 200 <= response.status < 300:
                    results.append(Result(m.message_id, "sent", provider_message_id=m.message_id))
                elif response.status == 429 or response.status >= 500:
                    results.append(Result(m.message_id, "retry", error=f"HTTP {response.status}"))
                else:
                    results.append(Result(m.message_id, "failed", error=f"HTTP {response.status}"))
        finally:
            conn.close()
        return results

    def close(self) -> None:
        pass  # a connection lasts one batch

    def look_up(self, message_ids: Sequence[str]) -> set[str] | None:
        return None  # a webhook cannot be asked what it received
