"""Personal data is encrypted with AES-GCM bound to its column; the key file is private and never overwritten."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from duecourse.adapters.crypto import DecryptionError, FieldCipher


def test_round_trip_and_random_nonce(tmp_path: Path) -> None:
    cipher = FieldCipher.from_key_file(tmp_path / "data.key")
    a = cipher.encrypt("张伟", "borrower.name_enc")
    b = cipher.encrypt("张伟", "borrower.name_enc")
    assert a != b  # equal names must not be recognisable as equal in the store
    assert "张伟".encode() not in a
    assert cipher.decrypt(a, "borrower.name_enc") == "张伟"


def test_ciphertext_cannot_be_moved_to_another_column(tmp_path: Path) -> None:
    cipher = FieldCipher.from_key_file(tmp_path / "data.key")
    token = cipher.encrypt("110101198503120316", "borrower.national_id_enc")
    with pytest.raises(DecryptionError):
        cipher.decrypt(token, "borrower.name_enc")


def test_tampered_ciphertext_is_refused(tmp_path: Path) -> None:
    cipher = FieldCipher.from_key_file(tmp_path / "data.key")
    token = bytearray(cipher.encrypt("+8613800138001", "contact_point.value_enc"))
    token[-1] ^= 1
    with pytest.raises(DecryptionError):
        cipher.decrypt(bytes(token), "contact_point.value_enc")


def test_key_file_is_created_owner_only_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "data.key"
    first = FieldCipher.from_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = first.encrypt("x", "t.c")
    assert FieldCipher.from_key_file(path).decrypt(token, "t.c") == "x"


def test_another_key_cannot_decrypt(tmp_path: Path) -> None:
    token = FieldCipher.from_key_file(tmp_path / "a.key").encrypt("x", "t.c")
    with pytest.raises(DecryptionError):
        FieldCipher.from_key_file(tmp_path / "b.key").decrypt(token, "t.c")


def test_bulk_encryption_matches_single_values(tmp_path: Path) -> None:
    cipher = FieldCipher.from_key_file(tmp_path / "data.key")
    values = [f"用户{i}" for i in range(1000)]
    tokens = cipher.encrypt_many(values, "borrower.name_enc")
    assert len(set(tokens)) == 1000
    assert cipher.decrypt_many(tokens, "borrower.name_enc") == values
