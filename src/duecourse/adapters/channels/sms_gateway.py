"""SMS through the Infobip SMS API: many messages per request, our own message ids, delivery reports pushed or pulled.

Protocol (Infobip "fully featured" SMS API, v2): `POST /sms/2/text/advanced` with `Authorization: App <key>`
and `{"messages": [{"from", "destinations": [{"to", "messageId"}], "text", "notifyUrl", ...}]}`; the
answer names each message's status group (PENDING = accepted). Delivery reports are POSTed to the
`notifyUrl` as `{"results": [{"messageId", "status": {"groupName": "DELIVERED" | …}, "doneAt", "error"}]}`,
or pulled once each from `GET /sms/1/reports`. `GET /sms/1/logs?messageId=` says whether the provider has
a message (kept 48 hours): how a send interrupted by a crash is reconciled without sending twice.
Stateless apart from one kept-alive connection; configured from settings (adapters/channels/README.md).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote, urlsplit

from duecourse.domain.dispatch import Outgoing, Receipt, Result

PROVIDER: Final = "infobip"
SEND_PATH: Final = "/sms/2/text/advanced"
REPORTS_PATH: Final = "/sms/1/reports"
LOGS_PATH: Final = "/sms/1/logs"
WEBHOOK_PATH: Final = "/webhooks/sms/infobip/reports"
PER_REQUEST: Final = 500  # messages per send request
# Status groups of the Infobip API: a report in one of these is final.
DELIVERED: Final = "DELIVERED"
NOT_DELIVERED: Final = ("UNDELIVERABLE", "EXPIRED", "REJECTED")


def report_token(api_key: str) -> str:
    """The shared secret the delivery-report webhook checks (`?token=` on the notifyUrl we hand Infobip).

    Infobip does not sign its reports; a secret in the callback URL (sent over HTTPS) is the usual way to
    know a report came from the party we gave the URL to. Derived from the API key so there is nothing
    else to configure, and rotating the key rotates it.
    """
    return hmac.new(api_key.encode(), b"duecourse/infobip-delivery-reports/v1", hashlib.sha256).hexdigest()


def parse_reports(body: Any) -> list[Receipt]:
    """Final delivery reports from a report document (webhook body or pull answer); pending ones are skipped.

    Raises ValueError when the document is not a report document at all.
    """
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise ValueError('a report document is {"results": [...]}')
    out = []
    for r in body["results"]:
        if not isinstance(r, dict) or not isinstance(r.get("messageId"), str) or not isinstance(r.get("status"), dict):
            raise ValueError("each report needs a messageId and a status")
        group = str(r["status"].get("groupName", ""))
        if group != DELIVERED and group not in NOT_DELIVERED:
            continue
        error: dict[str, Any] = r["error"] if isinstance(r.get("error"), dict) else {}
        out.append(
            Receipt(
                provider_message_id=r["messageId"],
                delivered=group == DELIVERED,
                at=_instant(r.get("doneAt")),
                status=f"{group}/{r['status'].get('name', '')}",
                error=None if group == DELIVERED else str(error.get("name") or r["status"].get("description") or group),
            )
        )
    return out


def _instant(text: Any) -> datetime:
    """Infobip writes instants as 2015-02-12T09:58:20.323+0100 (ISO 8601; `strptime` took ~40 µs each)."""
    if not isinstance(text, str):
        return datetime.now(UTC)
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass
class InfobipSms:
    base_url: str  # e.g. https://xxxxx.api.infobip.com
    api_key: str
    sender: str
    notify_url: str | None = None  # where Infobip pushes delivery reports (our webhook, with its token)
    timeout: float = 30.0

    provider: str = PROVIDER

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"SMS gateway URL must be http(s)://host[:port]: {self.base_url!r}")
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._prefix = parts.path.rstrip("/")
        self._conn: http.client.HTTPConnection | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for a helper dispatcher process, which opens its own connection."""
        return {**self.__dict__, "_conn": None}

    # --- sending ---------------------------------------------------------------------------------

    def send(self, messages: Sequence[Outgoing]) -> list[Result]:
        results: list[Result] = []
        for i in range(0, len(messages), PER_REQUEST):
            results += self._send_chunk(messages[i : i + PER_REQUEST])
        return results

    def _send_chunk(self, chunk: Sequence[Outgoing]) -> list[Result]:
        body = {
            "messages": [
                {
                    "from": self.sender,
                    "destinations": [{"to": m.to, "messageId": m.message_id}],
                    "text": m.text,
                    **(
                        {"notifyUrl": self.notify_url, "notifyContentType": "application/json"}
                        if self.notify_url
                        else {}
                    ),
                }
                for m in chunk
            ]
        }
        try:
            status, answer = self._request("POST", SEND_PATH, body)
        except (OSError, http.client.HTTPException) as exc:
            # The request may have arrived before the connection broke: ask before anyone sends again.
            return self._after_lost_answer(chunk, f"connection: {exc!r}")
        if status != 200:
            error = f"HTTP {status}: {_service_error(answer)}"
            return [Result(m.message_id, "retry", error=error) for m in chunk]
        by_id = {
            str(d.get("messageId")): d for d in answer.get("messages", []) if isinstance(d, dict)
        }  # the answer lists each destination with its status
        results = []
        for m in chunk:
            d = by_id.get(m.message_id)
            group = str(d.get("status", {}).get("groupName", "")) if d else ""
            if group == "PENDING" or group == DELIVERED:
                results.append(Result(m.message_id, "sent", provider_message_id=m.message_id))
            elif group in NOT_DELIVERED:
                status_name = str(d.get("status", {}).get("name", group)) if d else group
                results.append(Result(m.message_id, "failed", error=f"{group}: {status_name}"))
            else:
                results.append(Result(m.message_id, "retry", error=f"no status for this message ({group or 'absent'})"))
        return results

    def _after_lost_answer(self, chunk: Sequence[Outgoing], error: str) -> list[Result]:
        try:
            found = self.look_up([m.message_id for m in chunk])
        except (OSError, http.client.HTTPException, ValueError):
            found = set()  # cannot ask now: retry later, under the same message ids, after a look-up then
        return [
            Result(m.message_id, "sent", provider_message_id=m.message_id)
            if m.message_id in found
            else Result(m.message_id, "retry", error=error)
            for m in chunk
        ]

    # --- asking -----------------------------------------------------------------------------------

    def look_up(self, message_ids: Sequence[str]) -> set[str]:
        """Which of these message ids Infobip has (its message logs), one query per id on one connection."""
        found = set()
        for mid in message_ids:
            status, answer = self._request("GET", f"{LOGS_PATH}?messageId={quote(mid)}", None)
            if status != 200:
                raise ValueError(f"message logs: HTTP {status}: {_service_error(answer)}")
            if any(isinstance(r, dict) and r.get("messageId") == mid for r in answer.get("results", [])):
                found.add(mid)
        return found

    def receipts(self) -> list[Receipt]:
        """Delivery reports not handed out before (Infobip returns each once), up to 1,000 a request.

        Raises OSError when the gateway cannot be reached, ValueError when it refuses."""
        out: list[Receipt] = []
        while True:
            try:
                status, answer = self._request("GET", f"{REPORTS_PATH}?limit=1000", None)
            except http.client.HTTPException as exc:
                raise OSError(f"delivery reports: {exc!r}") from exc
            if status != 200:
                raise ValueError(f"delivery reports: HTTP {status}: {_service_error(answer)}")
            batch = answer.get("results", [])
            out += parse_reports(answer)
            if len(batch) < 1000:
                return out

    # --- HTTP -------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        payload = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        headers = {"Authorization": f"App {self.api_key}", "Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        for again in (True, False):
            conn = self._connection()
            try:
                conn.request(method, self._prefix + path, body=payload, headers=headers)
                response = conn.getresponse()
                raw = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                # A kept-alive connection the server had already closed: only a GET may simply be repeated.
                if again and method == "GET":
                    continue
                raise
            except (OSError, http.client.HTTPException):
                self.close()
                raise
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            try:
                answer = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                answer = {"raw": raw[:200].decode(errors="replace")}
            return response.status, answer if isinstance(answer, dict) else {"raw": answer}
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _service_error(answer: dict[str, Any]) -> str:
    """Infobip's error body: {"requestError": {"serviceException": {"messageId", "text"}}}."""
    exc = answer.get("requestError", {}).get("serviceException", {}) if isinstance(answer, dict) else {}
    if isinstance(exc, dict) and exc:
        return f"{exc.get('messageId', '')}: {exc.get('text', '')}"
    return str(answer)[:200]
