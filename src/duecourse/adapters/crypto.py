"""Field-level encryption of personal data at rest (AES-256-GCM), bound to the column it is stored in.

A ciphertext is `version (1 byte) || nonce (12 bytes) || AES-GCM(ciphertext || tag)`. The associated
data is the storage column's name ("borrower.name_enc"), so a ciphertext copied into another column
(a name pasted over a phone number) fails to decrypt instead of silently showing the wrong field.
Nonces are random: 96 bits are safe for far more values than one key will ever protect here.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from duecourse.domain.errors import DueCourseError

VERSION: Final = b"\x01"
NONCE_BYTES: Final = 12
KEY_BYTES: Final = 32


class DecryptionError(DueCourseError):
    """A stored value does not decrypt with this key for this column (wrong key, wrong column, or tampered)."""


class FieldCipher:
    """Encrypts and decrypts personal-data fields; `field` is the storage column, e.g. "borrower.name_enc"."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"the data key must be {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def generate(cls) -> FieldCipher:
        return cls(AESGCM.generate_key(bit_length=256))

    @classmethod
    def from_key_file(cls, path: Path) -> FieldCipher:
        """Load the key (base64 text); create it, readable by the owner only, if the file does not exist."""
        return cls(read_or_create_key(path, KEY_BYTES))

    def encrypt(self, plaintext: str, field: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode("utf-8"), field.encode("utf-8"))

    def decrypt(self, token: bytes, field: str) -> str:
        if len(token) < 1 + NONCE_BYTES + 16 or token[:1] != VERSION:
            raise DecryptionError(f"{field}: not a DueCourse ciphertext")
        nonce = token[1 : 1 + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, token[1 + NONCE_BYTES :], field.encode("utf-8")).decode("utf-8")
        except InvalidTag:
            raise DecryptionError(f"{field}: does not decrypt (wrong key, wrong column or altered)") from None

    def encrypt_many(self, values: Iterable[str], field: str) -> list[bytes]:
        """Encrypt a column of values; one urandom call for all nonces keeps bulk imports fast."""
        items = list(values)
        nonces = os.urandom(NONCE_BYTES * len(items))
        aad = field.encode("utf-8")
        enc = self._aead.encrypt
        out = []
        for i, value in enumerate(items):
            nonce = nonces[i * NONCE_BYTES : (i + 1) * NONCE_BYTES]
            out.append(VERSION + nonce + enc(nonce, value.encode("utf-8"), aad))
        return out

    def decrypt_many(self, tokens: Iterable[bytes], field: str) -> list[str]:
        return [self.decrypt(tok, field) for tok in tokens]


def read_or_create_key(path: Path, size: int) -> bytes:
    """A secret key kept as base64 text in `path`; created (owner-only, never overwritten) when missing."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never overwrite a key another process has just written (that would orphan its data).
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return read_or_create_key(path, size)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(base64.b64encode(os.urandom(size)).decode("ascii") + "\n")
    raw = path.read_text(encoding="ascii").strip()
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError:
        raise ValueError(f"{path}: the key file is not base64 text") from None
    if len(key) != size:
        raise ValueError(f"{path}: the key must be {size} bytes, got {len(key)}")
    return key
