"""Issuing verification codes for contacts, inside the transaction that records the contact.

Every notice, message, call and visiting team carries one (issue 4, point 6). The code is returned once
to be printed or read out; only its digest is stored. `issue_many` writes a batch in one statement so a
dispatcher sending a thousand messages a second does not pay a round trip per code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import Connection, insert

from duecourse.adapters.db import tables as t
from duecourse.domain.verification import CodeSigner, digest

# How long a code stays checkable after it is issued, by purpose. A visit code must outlive the visit
# window; a message code must outlive the time a debtor takes to get round to checking it.
VALID_FOR: Final = {
    "message": timedelta(days=30),
    "call": timedelta(days=30),
    "notice": timedelta(days=60),
    "visit": timedelta(days=60),
}


@dataclass(frozen=True)
class CodeRequest:
    purpose: str  # message | notice | call | visit
    channel: str
    borrower_key: int
    lender: str
    loan_key: int | None = None
    action_key: int | None = None
    reference: str | None = None
    valid_for: timedelta | None = None  # default: VALID_FOR[purpose]


def issue_many(conn: Connection, signer: CodeSigner, requests: Sequence[CodeRequest], now: datetime) -> list[str]:
    """Issue one code per request (canonical form, same order) and store their digests."""
    if now.tzinfo is None:
        raise ValueError("issue time must be timezone-aware")
    codes = [signer.new_code() for _ in requests]
    rows = [
        {
            "code_digest": digest(code),
            "purpose": r.purpose,
            "channel": r.channel,
            "borrower_key": r.borrower_key,
            "loan_key": r.loan_key,
            "action_key": r.action_key,
            "reference": r.reference,
            "lender": r.lender,
            "issued_at": now,
            "expires_at": now + (r.valid_for or VALID_FOR[r.purpose]),
        }
        for code, r in zip(codes, requests, strict=True)
    ]
    if rows:
        conn.execute(insert(t.verification_code), rows)
    return codes


def issue(conn: Connection, signer: CodeSigner, request: CodeRequest, now: datetime) -> str:
    return issue_many(conn, signer, [request], now)[0]
