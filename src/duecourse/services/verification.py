"""Issuing verification codes for contacts, and checking them for the public /verify page.

Every notice, message, call and visiting team carries one (issue 4, point 6). The code is returned once
to be printed or read out; only its digest is stored. `issue_many` writes a batch in one statement so a
dispatcher sending a thousand messages a second does not pay a round trip per code.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, Protocol

from sqlalchemy import Connection, Engine, Select, bindparam, delete, func, insert, select, text, update

from duecourse.adapters.db import tables as t
from duecourse.audit.chain import AuditRecord, as_utc
from duecourse.audit.log import append
from duecourse.domain.verification import CodeSigner, canonical, digest, display, identity_number, masked
from duecourse.ledger.engine import ledger_state
from duecourse.services.book_frames import load_book

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


# --- Checking a code on the public page ------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """How much failure the public page tolerates (defaults: `LIMITS`; documented in web/README.md).

    A client (one IP address) with `client_failures` failed checks within `client_window` is refused
    (HTTP 429) until the oldest of them leaves the window; every client is refused while the whole page
    has seen `global_failures` failures within `global_window` (guessing spread over many addresses).
    `alert_failures` failed checks naming the same phone or ID number within `alert_window` raise a
    scam-campaign alert.
    """

    client_failures: int = 10
    client_window: timedelta = timedelta(minutes=15)
    global_failures: int = 1_200
    global_window: timedelta = timedelta(minutes=1)
    alert_failures: int = 5
    alert_window: timedelta = timedelta(hours=24)


LIMITS: Final = Limits()

# Results that count towards the throttles; the not-genuine ones also count towards a scam alert.
NOT_GENUINE: Final = ("malformed", "forged", "unknown", "expired", "revoked")
FAILED: Final = (*NOT_GENUINE, "identity_mismatch")
_PREFIX: Final = 12  # digest characters kept on an attempt: enough to join to a code, useless to forge one


class Decrypting(Protocol):
    """The field cipher, as far as checking needs it (adapters/crypto.py: FieldCipher)."""

    def decrypt(self, token: bytes, field: str) -> str: ...


@dataclass(frozen=True)
class Identity:
    """What a person offers to show they are the borrower: birth date and the last four of the national ID."""

    birth_date: date
    national_id_last4: str


@dataclass(frozen=True)
class VerificationResult:
    status: str  # genuine | not_genuine | throttled
    result: str  # as stored on the attempt: genuine, forged, unknown, ..., identity_mismatch, throttled
    code: str | None = None  # display form, when it was a well-formed code
    lender: str | None = None
    purpose: str | None = None
    channel: str | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    visit_team: tuple[tuple[str, str], ...] = ()  # (name, badge) for a visit code
    identity_proven: bool = False
    borrower_key: int | None = None  # internal: never shown
    loan_key: int | None = None  # internal: never shown
    retry_after: int | None = None  # seconds, when throttled

    @property
    def genuine(self) -> bool:
        return self.status == "genuine"


VisitTeam = Callable[[Connection, str], list[tuple[str, str]]]  # (conn, "visit:<id>") -> [(name, badge)]


def check(
    conn: Connection,
    signer: CodeSigner,
    typed_text: str,
    client: str,
    now: datetime,
    identity: Identity | None = None,
    *,
    cipher: Decrypting,
    named: str | None = None,
    limits: Limits = LIMITS,
    visit_team: VisitTeam | None = None,
) -> VerificationResult:
    """Check what someone typed or scanned, record the attempt and its audit entry in `conn`'s transaction.

    `client` is the caller's IP address (only its keyed hash is kept); `named` the optional phone or ID
    number the person says the message came to (only its keyed hash is kept). A code that is not well
    formed or whose tag fails is rejected without looking it up, so guessing never touches the codes
    table; a throttled client learns nothing about the code at all. `visit_team` gives the team of a
    visit code (services/visits.py: visit_team_for_reference).
    """
    if now.tzinfo is None:
        raise ValueError("check time must be timezone-aware")
    client_key = signer.fingerprint("client", client)
    _serialise(conn, client_key)
    retry = _throttled_for(conn, client_key, now, limits)
    number = identity_number(named) if named else None
    named_hash = signer.fingerprint("identity", number[1]) if number else None
    if retry is not None:
        outcome = VerificationResult("throttled", "throttled", retry_after=retry)
        _record(conn, outcome, client_key, None, named_hash, now)
        return outcome
    outcome, prefix = _judge(conn, signer, typed_text, now, identity, cipher, visit_team)
    _record(conn, outcome, client_key, prefix, named_hash, now)
    if named_hash is not None and number is not None and outcome.result in NOT_GENUINE:
        _watch_for_campaign(conn, named_hash, masked(number[1]), now, limits)
    return outcome


def _judge(
    conn: Connection,
    signer: CodeSigner,
    typed_text: str,
    now: datetime,
    identity: Identity | None,
    cipher: Decrypting,
    visit_team: VisitTeam | None,
) -> tuple[VerificationResult, str | None]:
    code = canonical(typed_text)
    if code is None:
        return VerificationResult("not_genuine", "malformed"), None
    prefix = digest(code)[:_PREFIX]
    if not signer.is_signed(code):
        return VerificationResult("not_genuine", "forged", code=display(code)), prefix
    row = conn.execute(_CODE, {"digest": digest(code)}).first()
    if row is None:
        return VerificationResult("not_genuine", "unknown", code=display(code)), prefix
    if row.revoked_at is not None or as_utc(row.expires_at) <= now:
        result = "revoked" if row.revoked_at is not None else "expired"
        return VerificationResult("not_genuine", result, code=display(code), borrower_key=row.borrower_key), prefix
    team: tuple[tuple[str, str], ...] = ()
    if row.purpose == "visit" and row.reference and visit_team is not None:
        team = tuple(visit_team(conn, row.reference))
    proven = identity is not None and _proves(conn, cipher, row.borrower_key, identity)
    outcome = VerificationResult(
        "genuine",
        "identity_mismatch" if identity is not None and not proven else "genuine",
        code=display(code),
        lender=row.lender,
        purpose=row.purpose,
        channel=row.channel,
        issued_at=as_utc(row.issued_at),
        expires_at=as_utc(row.expires_at),
        visit_team=team,
        identity_proven=proven,
        borrower_key=row.borrower_key,
        loan_key=row.loan_key,
    )
    return outcome, prefix


def _proves(conn: Connection, cipher: Decrypting, borrower_key: int, identity: Identity) -> bool:
    b = t.borrower
    row = conn.execute(select(b.c.birth_date, b.c.national_id_enc).where(b.c.borrower_key == borrower_key)).one()
    national_id = cipher.decrypt(row.national_id_enc, "borrower.national_id_enc")
    same_id = hmac.compare_digest(
        national_id[-4:].upper().encode(), identity.national_id_last4.strip().upper().encode()
    )
    return row.birth_date is not None and row.birth_date == identity.birth_date and same_id


def _serialise(conn: Connection, client_key: str) -> None:
    """One check at a time per client, so concurrent requests cannot slip past the throttle together.
    SQLite needs nothing: its transactions begin IMMEDIATE (adapters/db/engine.py) and so run one by one."""
    if conn.dialect.name == "postgresql":
        lock_id = int.from_bytes(bytes.fromhex(client_key[:16]), "big", signed=True)
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})


def _nth_failure(by_client: bool) -> Select[Any]:
    """The `skip`+1-th most recent failure after `since` (of one client, or of all): once it leaves the window
    there is room again. Built once with bound parameters: the page runs it twice a request."""
    a = t.verification_attempt
    where = [a.c.failed.is_(True), a.c.at > bindparam("since", type_=a.c.at.type)]
    if by_client:
        where.append(a.c.client_key == bindparam("client"))
    return select(a.c.at).where(*where).order_by(a.c.at.desc()).offset(bindparam("skip")).limit(1)


_CLIENT_NTH: Final = _nth_failure(by_client=True)
_GLOBAL_NTH: Final = _nth_failure(by_client=False)
_INSERT_ATTEMPT: Final = insert(t.verification_attempt).returning(t.verification_attempt.c.attempt_key)
_CODE: Final = select(t.verification_code).where(t.verification_code.c.code_digest == bindparam("digest"))


def _throttled_for(conn: Connection, client_key: str, now: datetime, limits: Limits) -> int | None:
    """Seconds until this client may check again, or None when it may check now."""
    waits = []
    for stmt, limit, window in (
        (_CLIENT_NTH, limits.client_failures, limits.client_window),
        (_GLOBAL_NTH, limits.global_failures, limits.global_window),
    ):
        nth = conn.execute(stmt, {"client": client_key, "since": now - window, "skip": limit - 1}).scalar()
        if nth is not None:
            waits.append(max(1, math.ceil((as_utc(nth) + window - now).total_seconds())))
    return max(waits) if waits else None


def _record(
    conn: Connection,
    outcome: VerificationResult,
    client_key: str,
    prefix: str | None,
    named_hash: str | None,
    now: datetime,
) -> None:
    row = {
        "at": now,
        "client_key": client_key,
        "result": outcome.result,
        "failed": outcome.result in FAILED,
        "code_prefix": prefix,
        "borrower_key": outcome.borrower_key,
        "named_hash": named_hash,
    }
    attempt_key = conn.execute(_INSERT_ATTEMPT, row).scalar_one()
    payload = {
        "result": outcome.result,
        "client": client_key[:_PREFIX],
        "code_digest_prefix": prefix,
        "borrower_key": outcome.borrower_key,
        "named_hash_prefix": named_hash[:_PREFIX] if named_hash else None,
        "identity_proven": outcome.identity_proven,
    }
    record = AuditRecord(
        "public", "web", "verification.checked", "verification_attempt", str(attempt_key), outcome.result, payload
    )
    append(conn, [record], now)


def _watch_for_campaign(conn: Connection, named_hash: str, shown: str, now: datetime, limits: Limits) -> None:
    """Raise (or extend) the scam-campaign alert for a number named in too many failed checks."""
    a, al = t.verification_attempt, t.verification_alert
    since = now - limits.alert_window
    count, first = conn.execute(
        select(func.count(), func.min(a.c.at)).where(
            a.c.named_hash == named_hash, a.c.result.in_(NOT_GENUINE), a.c.at > since
        )
    ).one()
    if count < limits.alert_failures:
        return
    open_alert = conn.execute(
        select(al.c.alert_key).where(
            al.c.named_hash == named_hash, al.c.kind == "scam_campaign", al.c.last_seen > since
        )
    ).scalar()
    if open_alert is None:
        owners = (
            conn.execute(
                select(t.identity_index.c.borrower_key).where(t.identity_index.c.digest == named_hash).distinct()
            )
            .scalars()
            .all()
        )
        borrower_key = owners[0] if len(owners) == 1 else None
        alert_key = conn.execute(
            insert(al)
            .values(
                kind="scam_campaign",
                named_hash=named_hash,
                masked=shown,
                borrower_key=borrower_key,
                first_seen=as_utc(first),
                last_seen=now,
                failures=count,
            )
            .returning(al.c.alert_key)
        ).scalar_one()
        action, reason = (
            "verification.alert_raised",
            f"{count} failed checks naming one number within {limits.alert_window}",
        )
    else:
        alert_key, borrower_key = open_alert, None
        conn.execute(update(al).where(al.c.alert_key == open_alert).values(last_seen=now, failures=count))
        action, reason = "verification.alert_extended", f"{count} failed checks so far"
    payload = {"kind": "scam_campaign", "failures": count, "masked": shown, "named_hash_prefix": named_hash[:_PREFIX]}
    if borrower_key is not None:
        payload["borrower_key"] = borrower_key
    append(conn, [AuditRecord("public", "web", action, "verification_alert", str(alert_key), reason, payload)], now)


def index_identities(conn: Connection, cipher: Decrypting, signer: CodeSigner, borrower_keys: Sequence[int]) -> int:
    """(Re)build the identity index of these borrowers: keyed hashes of their national ID and own phone numbers.

    For the importer, on the borrowers it wrote, in its transaction; returns the rows written. Works in
    chunks so a whole book's keys never become one enormous IN list.
    """
    keys = list(borrower_keys)
    return sum(
        _index_chunk(conn, cipher, signer, keys[i : i + _INDEX_CHUNK]) for i in range(0, len(keys), _INDEX_CHUNK)
    )


_INDEX_CHUNK: Final = 10_000


def _index_chunk(conn: Connection, cipher: Decrypting, signer: CodeSigner, keys: list[int]) -> int:
    b, cp, ix = t.borrower, t.contact_point, t.identity_index
    ids = conn.execute(select(b.c.borrower_key, b.c.national_id_enc).where(b.c.borrower_key.in_(keys))).all()
    phones = conn.execute(
        select(cp.c.borrower_key, cp.c.value_enc).where(
            cp.c.borrower_key.in_(keys), cp.c.kind == "phone", cp.c.owner == "borrower"
        )
    ).all()
    found = {
        (key, number)
        for key, token, field in [(k, v, "borrower.national_id_enc") for k, v in ids]
        + [(k, v, "contact_point.value_enc") for k, v in phones]
        if (number := identity_number(cipher.decrypt(token, field))) is not None
    }
    conn.execute(delete(ix).where(ix.c.borrower_key.in_(keys)))
    rows = [{"borrower_key": k, "kind": kind, "digest": signer.fingerprint("identity", n)} for k, (kind, n) in found]
    if rows:
        conn.execute(insert(ix), rows)
    return len(rows)


def reindex_identities(engine: Engine, cipher: Decrypting, signer: CodeSigner, now: datetime) -> tuple[int, int]:
    """Rebuild the whole identity index (after a key change, or for a book imported before it existed), audited.
    Returns (borrowers, rows)."""
    with engine.begin() as conn:
        keys = list(conn.execute(select(t.borrower.c.borrower_key)).scalars())
        rows = index_identities(conn, cipher, signer, keys)
        payload = {"borrowers": len(keys), "rows": rows}
        reason = f"{rows} keyed numbers for {len(keys)} borrowers"
        record = AuditRecord(
            "system:web", "cli", "verification.identities_indexed", "identity_index", "*", reason, payload
        )
        append(conn, [record], now)
    return len(keys), rows


@dataclass(frozen=True)
class Owed:
    """What the borrower owes on one loan on a day, for the page once they have proven who they are."""

    loan_id: str
    currency: str
    due: int  # minor units due on or before the day and unpaid, penalty included
    oldest_unpaid_due_date: date | None
    next_due_date: date | None
    next_due_amount: int | None  # minor units


def amounts_owed(engine: Engine, borrower_key: int, loan_key: int | None, as_of: date) -> list[Owed]:
    """The ledger state of the code's loan (or of each of the borrower's loans), from committed data."""
    with engine.connect() as conn:
        q = select(t.loan.c.loan_key).where(t.loan.c.borrower_key == borrower_key).order_by(t.loan.c.loan_key)
        keys = [loan_key] if loan_key is not None else list(conn.execute(q).scalars())
    owed = []
    for key in keys:  # one borrower's few loans, one at a time: this is a page, not a batch path
        book = load_book(engine, as_of, [key])
        state = ledger_state(book.loans, book.instalments, book.payments, book.holds, book.conventions, as_of)
        if state.height == 0:
            continue
        loan, s = book.loans.row(0, named=True), state.row(0, named=True)
        owed.append(
            Owed(
                loan["loan_id"],
                loan["currency"],
                s["due_principal"] + s["due_interest"] + s["due_fee"] + s["due_penalty"],
                s["oldest_unpaid_due_date"],
                s["next_due_date"],
                s["next_due_amount"],
            )
        )
    return owed


def alerts(conn: Connection) -> list[dict[str, Any]]:
    """Every scam-campaign alert, newest activity first, with the borrower's id when the number was resolved."""
    al, b = t.verification_alert, t.borrower
    rows = conn.execute(
        select(
            al.c.alert_key,
            al.c.kind,
            al.c.masked,
            al.c.named_hash,
            al.c.first_seen,
            al.c.last_seen,
            al.c.failures,
            b.c.borrower_id,
        )
        .select_from(al.outerjoin(b, b.c.borrower_key == al.c.borrower_key))
        .order_by(al.c.last_seen.desc(), al.c.alert_key.desc())
    ).all()
    return [dict(r._mapping) | {"first_seen": as_utc(r.first_seen), "last_seen": as_utc(r.last_seen)} for r in rows]
