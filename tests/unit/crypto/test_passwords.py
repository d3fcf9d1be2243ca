"""People's passwords: argon2id (DESIGN §3)."""

from __future__ import annotations

import pytest

from cardvault.crypto import generate_password, hash_password, verify_password


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password("correct horse battery staple")


def test_hash_is_argon2id(stored: str) -> None:
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored


def test_same_password_hashes_differently(stored: str) -> None:
    assert hash_password("correct horse battery staple") != stored


def test_verify_right_password(stored: str) -> None:
    assert verify_password(stored, "correct horse battery staple") is True


@pytest.mark.parametrize(
    "attempt", ["correct horse battery stapl", "Correct horse battery staple", ""]
)
def test_verify_wrong_password(stored: str, attempt: str) -> None:
    assert verify_password(stored, attempt) is False


@pytest.mark.parametrize(
    "garbage", ["", "not a hash", "$argon2id$", "$argon2id$v=19$m=65536,t=3,p=4$abc$def"]
)
def test_verify_with_garbage_hash_is_false(garbage: str) -> None:
    assert verify_password(garbage, "correct horse battery staple") is False


def test_non_ascii_password_round_trip() -> None:
    stored = hash_password("pässwörd-🔑")

    assert verify_password(stored, "pässwörd-🔑") is True
    assert verify_password(stored, "passwort-🔑") is False


def test_generated_passwords_are_long_and_unique() -> None:
    passwords = [generate_password() for _ in range(200)]

    assert all(len(p) >= 20 for p in passwords)
    assert len(set(passwords)) == len(passwords)
