"""LocalFileKeyProvider: the local key-encryption key (DESIGN §3)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cardvault.crypto import DecryptionError, KeyUnavailableError, LocalFileKeyProvider

PAN = b"4111111111111111"
AAD = b"cardvault:vault:vlt_1:card:crd_1"


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "kek.bin"


@pytest.fixture
def provider(key_path: Path) -> LocalFileKeyProvider:
    return LocalFileKeyProvider(key_path)


def test_key_file_is_created_private_with_256_bits(key_path: Path) -> None:
    assert not key_path.exists()

    LocalFileKeyProvider(key_path)

    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert len(key_path.read_bytes()) == 32


def test_existing_key_file_is_kept(key_path: Path) -> None:
    LocalFileKeyProvider(key_path)
    original = key_path.read_bytes()

    LocalFileKeyProvider(key_path)
    LocalFileKeyProvider(key_path, create=False)

    assert key_path.read_bytes() == original


def test_round_trip(provider: LocalFileKeyProvider) -> None:
    wrapped = provider.wrap(PAN, AAD)

    assert PAN not in wrapped
    assert provider.unwrap(wrapped, AAD) == PAN


def test_round_trip_of_empty_plaintext(provider: LocalFileKeyProvider) -> None:
    assert provider.unwrap(provider.wrap(b"", AAD), AAD) == b""


def test_wrapping_twice_gives_different_ciphertexts(provider: LocalFileKeyProvider) -> None:
    assert provider.wrap(PAN, AAD) != provider.wrap(PAN, AAD)


def test_second_provider_on_same_file_unwraps(key_path: Path) -> None:
    wrapped = LocalFileKeyProvider(key_path).wrap(PAN, AAD)

    assert LocalFileKeyProvider(key_path, create=False).unwrap(wrapped, AAD) == PAN


def test_provider_with_another_key_cannot_unwrap(
    provider: LocalFileKeyProvider, tmp_path: Path
) -> None:
    other = LocalFileKeyProvider(tmp_path / "other.bin")

    with pytest.raises(DecryptionError):
        other.unwrap(provider.wrap(PAN, AAD), AAD)


def test_other_associated_data_is_refused(provider: LocalFileKeyProvider) -> None:
    wrapped = provider.wrap(PAN, AAD)

    with pytest.raises(DecryptionError):
        provider.unwrap(wrapped, b"cardvault:vault:vlt_2:card:crd_1")
    with pytest.raises(DecryptionError):
        provider.unwrap(wrapped, b"")


@pytest.mark.parametrize("position", [0, 1, 12, 13, -1])
def test_flipped_byte_is_refused(provider: LocalFileKeyProvider, position: int) -> None:
    wrapped = bytearray(provider.wrap(PAN, AAD))
    wrapped[position] ^= 0x01

    with pytest.raises(DecryptionError):
        provider.unwrap(bytes(wrapped), AAD)


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x01", b"\x01" + bytes(28), b"not a wrapped value at all, just text", bytes(64)],
)
def test_garbage_is_refused(provider: LocalFileKeyProvider, garbage: bytes) -> None:
    with pytest.raises(DecryptionError):
        provider.unwrap(garbage, AAD)


def test_truncated_value_is_refused(provider: LocalFileKeyProvider) -> None:
    wrapped = provider.wrap(PAN, AAD)

    for length in (len(wrapped) - 1, len(wrapped) - 16, 13, 1):
        with pytest.raises(DecryptionError):
            provider.unwrap(wrapped[:length], AAD)


def test_missing_file_without_create(key_path: Path) -> None:
    with pytest.raises(KeyUnavailableError):
        LocalFileKeyProvider(key_path, create=False)

    assert not key_path.exists()


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_file_of_wrong_length(tmp_path: Path, length: int) -> None:
    path = tmp_path / "kek.bin"
    path.write_bytes(b"k" * length)

    with pytest.raises(KeyUnavailableError):
        LocalFileKeyProvider(path)
    with pytest.raises(KeyUnavailableError):
        LocalFileKeyProvider(path, create=False)


def test_error_messages_never_contain_plaintext_or_key(
    provider: LocalFileKeyProvider, key_path: Path
) -> None:
    wrapped = provider.wrap(PAN, AAD)
    tampered = bytearray(wrapped)
    tampered[-1] ^= 0xFF
    key = key_path.read_bytes()
    errors = []
    for value, aad in [(wrapped, b"other"), (bytes(tampered), AAD), (wrapped[:10], AAD)]:
        with pytest.raises(DecryptionError) as info:
            provider.unwrap(value, aad)
        errors.append(info.value)

    for error in errors:
        text = f"{error} {error!r} {error.__cause__!r}"
        assert PAN.decode() not in text
        assert repr(PAN) not in text
        assert key.hex() not in text
        assert repr(key) not in text
