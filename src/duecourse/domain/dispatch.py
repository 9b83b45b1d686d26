"""What a message is to a channel and what comes back: the values dispatch and the channel adapters share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

# sent: the provider accepted it; retry: not accepted, try again later; failed: refused for good (a bad
# address); doubt: it may or may not have left and the provider cannot be asked.
Status = Literal["sent", "retry", "failed", "doubt"]


@dataclass(frozen=True)
class Outgoing:
    """One message as a channel sends it. `message_id` is derived from the action's idempotency key."""

    message_id: str
    to: str  # the decrypted address: a phone number, an e-mail address, an app installation id
    text: str
    subject: str
    language: str


@dataclass(frozen=True)
class Result:
    message_id: str
    status: Status
    provider_message_id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Receipt:
    """A provider's delivery report for one message."""

    provider_message_id: str
    delivered: bool
    at: datetime
    status: str  # the provider's own status words, kept in the contact event's details
    error: str | None = None
