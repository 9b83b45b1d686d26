"""Verification codes: short, unguessable, signed strings a debtor can read out or type to check a contact.

A code is 16 Crockford base32 characters (shown as four groups, `K7QM-3XZP-9RTA-B2CW`) carrying 80 bits:
48 random bits that name the contact and a 32-bit HMAC-SHA256 tag over them under the lender's secret.
A forged or mistyped code fails the tag before any lookup (one in four billion passes by chance), and a
well-formed guess must also hit one of the issued random parts, which the page's rate limit makes hopeless.
Crockford's alphabet has no I, L, O or U, and reading is forgiving: O is 0, I and L are 1, case and
dashes or spaces do not matter.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Final

ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RANDOM_BYTES: Final = 6
TAG_BYTES: Final = 4
CODE_LENGTH: Final = (RANDOM_BYTES + TAG_BYTES) * 8 // 5  # 16 characters
_DOMAIN: Final = b"duecourse/verification-code/v1"
_FINGERPRINT: Final = b"duecourse/fingerprint/v1/"
_READ_AS: Final = str.maketrans({"O": "0", "I": "1", "L": "1"})
_VALUE: Final = {c: i for i, c in enumerate(ALPHABET)}


class CodeSigner:
    """Makes and checks the signature of codes under one secret key (kept in the key file of settings)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the verification key must be at least 32 bytes")
        self._key = key

    def new_code(self, random_part: bytes | None = None) -> str:
        """A fresh code in its canonical form (16 characters, no dashes); `random_part` only for tests."""
        body = os.urandom(RANDOM_BYTES) if random_part is None else random_part
        if len(body) != RANDOM_BYTES:
            raise ValueError(f"the random part must be {RANDOM_BYTES} bytes")
        return _encode(body + self._tag(body))

    def is_signed(self, code: str) -> bool:
        """True when `code` (canonical form) carries a valid tag; constant-time comparison."""
        raw = _decode(code)
        if raw is None:
            return False
        body, tag = raw[:RANDOM_BYTES], raw[RANDOM_BYTES:]
        return hmac.compare_digest(tag, self._tag(body))

    def fingerprint(self, purpose: str, value: str) -> str:
        """A keyed hash (HMAC-SHA256, hex) of `value` for `purpose` ("client", "identity"): stored and compared in
        place of an IP address or a phone or ID number, useless to whoever copies the table without the key."""
        return hmac.new(
            self._key, _FINGERPRINT + purpose.encode("ascii") + b"\0" + value.encode("utf-8"), hashlib.sha256
        ).hexdigest()

    def _tag(self, body: bytes) -> bytes:
        return hmac.new(self._key, _DOMAIN + body, hashlib.sha256).digest()[:TAG_BYTES]


def canonical(text: str) -> str | None:
    """The canonical form of what someone typed or scanned, or None when it cannot be a code at all."""
    cleaned = "".join(ch for ch in text.strip().upper() if ch not in "- \t").translate(_READ_AS)
    if len(cleaned) != CODE_LENGTH or any(ch not in _VALUE for ch in cleaned):
        return None
    return cleaned


def display(code: str) -> str:
    """`K7QM3XZP9RTAB2CW` -> `K7QM-3XZP-9RTA-B2CW`: how a code is printed and read out."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def digest(code: str) -> str:
    """What is stored: the SHA-256 of the canonical code (the code itself is never stored)."""
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def identity_number(text: str) -> tuple[str, str] | None:
    """What someone typed as "the number this came to / my ID number", as (kind, normalised) or None.

    A resident ID is 18 characters (17 digits and a digit or X, GB 11643); anything else with 7 to 15
    digits is a phone number, kept as its digits with a leading China country code (+86 / 0086) dropped,
    so "+86 138-0013-8001" and "13800138001" hash alike.
    """
    cleaned = "".join(ch for ch in text.upper() if ch.isalnum())
    if len(cleaned) == 18 and cleaned[:17].isdigit() and (cleaned[17].isdigit() or cleaned[17] == "X"):
        return "national_id", cleaned
    if not cleaned.isdigit():
        return None
    for prefix in ("0086", "86"):
        if cleaned.startswith(prefix) and len(cleaned) - len(prefix) == 11:
            cleaned = cleaned[len(prefix) :]
            break
    return ("phone", cleaned) if 7 <= len(cleaned) <= 15 else None


def masked(number: str) -> str:
    """Only the last four characters shown: `13800138001` -> `*******8001`."""
    return "*" * max(len(number) - 4, 0) + number[-4:]


def _encode(raw: bytes) -> str:
    number = int.from_bytes(raw, "big")
    return "".join(ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(CODE_LENGTH)))


def _decode(code: str) -> bytes | None:
    if len(code) != CODE_LENGTH or any(ch not in _VALUE for ch in code):
        return None
    number = 0
    for ch in code:
        number = (number << 5) | _VALUE[ch]
    return number.to_bytes(RANDOM_BYTES + TAG_BYTES, "big")
