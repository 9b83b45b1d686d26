"""E-mail over SMTP: a batch over a few connections at once, a Message-ID derived from the action, plain UTF-8 text.

`smtp://[user:password@]host:port` (STARTTLS when the server offers it and credentials are given) or
`smtps://…` (TLS from the start). A message the server accepted (250 after DATA) is sent; a 4xx answer
is retried later; a 5xx refusal of the recipient is final; a connection lost while a message was on the
wire leaves it in doubt (the server may have taken it), so it is never resent automatically.
SMTP answers each command before the next (smtplib does not pipeline), so a batch is cut into up to
`connections` runs, each sent over a connection of its own in a thread: the waits for the server's
answers overlap (smtplib lets other threads run while it waits on the socket).
"""

from __future__ import annotations

import base64
import math
import smtplib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.header import Header
from email.utils import formatdate
from typing import Final
from urllib.parse import unquote, urlsplit

from duecourse.domain.dispatch import Outgoing, Result, Status

PROVIDER: Final = "smtp"
CRLF: Final = b"\r\n"
PER_CONNECTION: Final = 50  # a smaller batch is not worth another connection's set-up


@dataclass
class SmtpMailer:
    url: str
    mail_from: str
    timeout: float = 30.0
    connections: int = 4  # at most, side by side for one batch

    provider: str = PROVIDER

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"SMTP URL must be smtp://host:port or smtps://host:port: {self.url!r}")
        self._tls = parts.scheme == "smtps"
        self._host, self._port = parts.hostname, parts.port or (465 if self._tls else 25)
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._domain = self.mail_from.rpartition("@")[2] or "localhost"
        if self.connections < 1:
            raise ValueError(f"connections must be at least 1: {self.connections}")
        if not _is_plain_address(self.mail_from):
            raise ValueError(f"the sender must be a plain address (name@domain): {self.mail_from!r}")

    def message_id_header(self, message_id: str) -> str:
        return f"<{message_id}@{self._domain}>"

    def send(self, messages: Sequence[Outgoing]) -> list[Result]:
        """The batch in up to `connections` consecutive runs, each over its own connection; results in order."""
        runs = max(1, min(self.connections, len(messages) // PER_CONNECTION))
        if runs == 1:
            return self._send_run(messages)
        size = math.ceil(len(messages) / runs)
        with ThreadPoolExecutor(runs, thread_name_prefix="smtp") as pool:
            parts = pool.map(self._send_run, [messages[i : i + size] for i in range(0, len(messages), size)])
            return [r for part in parts for r in part]

    def _send_run(self, messages: Sequence[Outgoing]) -> list[Result]:
        try:
            server = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            return [Result(m.message_id, "retry", error=f"connect: {exc!r}") for m in messages]
        results: list[Result] = []
        try:
            for i, m in enumerate(messages):
                if not _is_plain_address(m.to):
                    results.append(Result(m.message_id, "failed", error=f"not a plain ASCII address: {m.to!r}"))
                    continue
                try:
                    server.sendmail(self.mail_from, [m.to], self._compose(m))
                    results.append(
                        Result(m.message_id, "sent", provider_message_id=self.message_id_header(m.message_id))
                    )
                except smtplib.SMTPRecipientsRefused as exc:
                    code = next(iter(exc.recipients.values()))[0]
                    results.append(Result(m.message_id, "failed" if code >= 500 else "retry", error=f"refused: {code}"))
                except smtplib.SMTPResponseException as exc:
                    status: Status = "retry" if 400 <= exc.smtp_code < 500 else "failed"
                    results.append(Result(m.message_id, status, error=f"{exc.smtp_code} {exc.smtp_error!r}"))
                except (OSError, smtplib.SMTPException) as exc:
                    # Lost mid-message: the server may have queued it. The rest never started.
                    results.append(Result(m.message_id, "doubt", error=f"connection lost: {exc!r}"))
                    results += [
                        Result(r.message_id, "retry", error="connection lost earlier") for r in messages[i + 1 :]
                    ]
                    return results
        finally:
            try:
                server.quit()
            except (OSError, smtplib.SMTPException):
                server.close()
        return results

    def close(self) -> None:
        pass  # a connection lasts one batch

    def look_up(self, message_ids: Sequence[str]) -> set[str] | None:
        return None  # SMTP cannot tell whether a server took a message

    def _connect(self) -> smtplib.SMTP:
        server: smtplib.SMTP
        if self._tls:
            server = smtplib.SMTP_SSL(self._host, self._port, timeout=self.timeout)
        else:
            server = smtplib.SMTP(self._host, self._port, timeout=self.timeout)
        server.ehlo()
        if self._user is not None:
            if not self._tls and server.has_extn("starttls"):
                server.starttls()
                server.ehlo()
            server.login(self._user, self._password or "")
        return server

    def _compose(self, m: Outgoing) -> bytes:
        """RFC 5322 text, written out directly: the `email` package's header registry took ~3 ms a message,
        more than everything else the dispatcher does for it. The subject is RFC 2047-encoded UTF-8 and the
        body base64 UTF-8, so no header can carry a line break from the content."""
        body = base64.encodebytes(m.text.encode("utf-8")).replace(b"\n", CRLF)
        subject = Header(m.subject, "utf-8").encode(linesep="\r\n")  # folded lines stay RFC 5322 lines
        head = (
            f"From: {self.mail_from}\r\n"
            f"To: {m.to}\r\n"
            f"Subject: {subject}\r\n"
            f"Date: {formatdate(usegmt=True)}\r\n"
            f"Message-ID: {self.message_id_header(m.message_id)}\r\n"
            f"Content-Language: {m.language}\r\n"
            "MIME-Version: 1.0\r\n"
            'Content-Type: text/plain; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
        )
        return head.encode("ascii") + body


def _is_plain_address(address: str) -> bool:
    """An address this adapter can put in a header and an envelope as it is: ASCII, one line, no angle brackets."""
    return address.isascii() and "@" in address and not any(c in address for c in '\r\n<>,;" ')
