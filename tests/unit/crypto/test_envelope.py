"""Envelope encryption of vault records and keyed PAN fingerprints (DESIGN §3)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from cardvault.crypto import (
    DecryptionError,
    Fingerprinter,
    LocalFileKeyProvider,
    Pan,
    VaultCipher,
    new_data_key,
    unwrap_data_key,
    wrap_data_key,
)

PAN = b"4242424242424242"
KEY_1, KEY_2 = new_data_key(), new_data_key()


@pytest.fixture
def kek(tmp_path: Path) -> LocalFileKeyProvider:
    return LocalFileKeyProvider(tmp_path / "kek.key")


@pytest.fixture
def cipher() -> VaultCipher:
    return VaultCipher("vlt_a", {1: KEY_1}, 1)


def test_data_keys_are_fresh_256_bit_keys() -> None:
    keys = {new_data_key() for _ in range(100)}

    assert len(keys) == 100
    assert all(len(k) == 32 for k in keys)


def test_data_key_wrap_round_trip(kek: LocalFileKeyProvider) -> None:
    wrapped = wrap_data_key(kek, KEY_1, "vlt_a", 3)

    assert KEY_1 not in wrapped
    assert unwrap_data_key(kek, wrapped, "vlt_a", 3) == KEY_1


@pytest.mark.parametrize(("vault_id", "version"), [("vlt_b", 3), ("vlt_a", 4), ("vlt_a3", 3)])
def test_wrapped_data_key_is_bound_to_its_vault_and_version(
    kek: LocalFileKeyProvider, vault_id: str, version: int
) -> None:
    wrapped = wrap_data_key(kek, KEY_1, "vlt_a", 3)

    with pytest.raises(DecryptionError):
        unwrap_data_key(kek, wrapped, vault_id, version)


def test_wrapped_value_that_is_not_a_data_key_is_refused(kek: LocalFileKeyProvider) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        wrap_data_key(kek, b"short", "vlt_a", 1)
    with pytest.raises(ValueError, match="version"):
        wrap_data_key(kek, KEY_1, "vlt_a", 0)


def test_round_trip(cipher: VaultCipher) -> None:
    blob = cipher.encrypt(PAN, record_id="card_1", field="pan")

    assert PAN not in blob
    assert cipher.decrypt(blob, record_id="card_1", field="pan") == PAN


def test_round_trip_of_empty_plaintext(cipher: VaultCipher) -> None:
    blob = cipher.encrypt(b"", record_id="r", field="f")

    assert cipher.decrypt(blob, record_id="r", field="f") == b""


def test_blob_format(cipher: VaultCipher) -> None:
    blob = cipher.encrypt(PAN, record_id="card_1", field="pan")

    assert blob[0] == 0x01
    assert blob[1:5] == (1).to_bytes(4, "big")
    assert len(blob) == 1 + 4 + 12 + len(PAN) + 16
    assert VaultCipher.version_of(blob) == 1


def test_each_encryption_uses_a_fresh_nonce(cipher: VaultCipher) -> None:
    blobs = [cipher.encrypt(PAN, record_id="card_1", field="pan") for _ in range(50)]

    assert len({b[5:17] for b in blobs}) == 50
    assert len(set(blobs)) == 50


def test_every_tampered_byte_is_detected(cipher: VaultCipher) -> None:
    blob = cipher.encrypt(PAN, record_id="card_1", field="pan")

    for index in range(len(blob)):
        tampered = bytearray(blob)
        tampered[index] ^= 0x01
        with pytest.raises(DecryptionError) as caught:
            cipher.decrypt(bytes(tampered), record_id="card_1", field="pan")
        assert PAN.decode() not in str(caught.value)


@pytest.mark.parametrize(
    "blob",
    [b"", b"\x01", b"\x01" + b"\x00" * 31, b"\x02" + b"\x00\x00\x00\x01" + b"\x00" * 40],
)
def test_malformed_blobs_are_refused(cipher: VaultCipher, blob: bytes) -> None:
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob, record_id="card_1", field="pan")
    with pytest.raises(DecryptionError):
        VaultCipher.version_of(blob)


def test_truncated_blob_is_refused(cipher: VaultCipher) -> None:
    blob = cipher.encrypt(PAN, record_id="card_1", field="pan")

    for end in (len(blob) - 1, len(blob) - 16, 17):
        with pytest.raises(DecryptionError):
            cipher.decrypt(blob[:end], record_id="card_1", field="pan")


def test_blob_moved_to_another_record_fails(cipher: VaultCipher) -> None:
    blob = cipher.encrypt(PAN, record_id="card_1", field="pan")

    with pytest.raises(DecryptionError):
        cipher.decrypt(blob, record_id="card_2", field="pan")


def test_blob_moved_to_another_field_fails(cipher: VaultCipher) -> None:
    blob = cipher.encrypt(PAN, record_id="card_1", field="pan")

    with pytest.raises(DecryptionError):
        cipher.decrypt(blob, record_id="card_1", field="cvc")


def test_blob_moved_to_another_vault_fails(cipher: VaultCipher) -> None:
    blob = cipher.encrypt(PAN, record_id="card_1", field="pan")
    other_vault = VaultCipher("vlt_b", {1: KEY_1}, 1)  # even under the same key

    with pytest.raises(DecryptionError):
        other_vault.decrypt(blob, record_id="card_1", field="pan")


def test_parts_cannot_be_shifted_between_record_and_field(cipher: VaultCipher) -> None:
    blob = cipher.encrypt(PAN, record_id="card_1:", field="pan")

    with pytest.raises(DecryptionError):
        cipher.decrypt(blob, record_id="card_1", field=":pan")


def test_old_version_decrypts_after_rotation_and_new_writes_use_the_new_one() -> None:
    before = VaultCipher("vlt_a", {1: KEY_1}, 1)
    old_blob = before.encrypt(PAN, record_id="card_1", field="pan")

    after = VaultCipher("vlt_a", {1: KEY_1, 2: KEY_2}, 2)
    new_blob = after.encrypt(PAN, record_id="card_1", field="pan")

    assert after.current_version == 2
    assert after.versions == (1, 2)
    assert after.decrypt(old_blob, record_id="card_1", field="pan") == PAN
    assert VaultCipher.version_of(new_blob) == 2
    assert after.decrypt(new_blob, record_id="card_1", field="pan") == PAN
    with pytest.raises(DecryptionError):
        before.decrypt(new_blob, record_id="card_1", field="pan")


def test_unknown_version_fails() -> None:
    old_blob = VaultCipher("vlt_a", {1: KEY_1}, 1).encrypt(PAN, record_id="c", field="pan")
    only_new = VaultCipher("vlt_a", {2: KEY_2}, 2)

    with pytest.raises(DecryptionError, match="unknown data key version 1"):
        only_new.decrypt(old_blob, record_id="c", field="pan")


def test_version_swapped_in_the_header_fails() -> None:
    """Same key under two version numbers: the version is authenticated too."""
    cipher = VaultCipher("vlt_a", {1: KEY_1, 2: KEY_1}, 1)
    blob = cipher.encrypt(PAN, record_id="c", field="pan")
    relabelled = blob[:1] + (2).to_bytes(4, "big") + blob[5:]

    with pytest.raises(DecryptionError):
        cipher.decrypt(relabelled, record_id="c", field="pan")


def test_constructor_checks_its_keys() -> None:
    with pytest.raises(ValueError, match="current"):
        VaultCipher("vlt_a", {1: KEY_1}, 2)
    with pytest.raises(ValueError, match="32 bytes"):
        VaultCipher("vlt_a", {1: b"k" * 16}, 1)
    with pytest.raises(ValueError, match="version"):
        VaultCipher("vlt_a", {0: KEY_1}, 0)


def test_repr_shows_no_key() -> None:
    cipher = VaultCipher("vlt_a", {1: KEY_1, 2: KEY_2}, 2)

    text = repr(cipher)

    assert text == "VaultCipher(vault_id='vlt_a', versions=[1, 2], current_version=2)"
    for key in (KEY_1, KEY_2):
        assert key.hex() not in text and repr(key) not in text


def test_fingerprint_is_hmac_sha256_of_the_digits() -> None:
    key = new_data_key()
    pan = Pan("4242 4242 4242 4242")

    digest = Fingerprinter(key).digest(pan)

    assert digest == hmac.new(key, b"4242424242424242", hashlib.sha256).digest()
    assert len(digest) == 32
    assert digest != hashlib.sha256(b"4242424242424242").digest()


def test_fingerprint_is_stable_per_key_and_differs_across_keys() -> None:
    key = new_data_key()
    pan = Pan("4111111111111111")

    assert Fingerprinter(key).digest(pan) == Fingerprinter(bytes(key)).digest(pan)
    assert Fingerprinter(key).digest(pan) != Fingerprinter(new_data_key()).digest(pan)
    assert Fingerprinter(key).digest(pan) != Fingerprinter(key).digest(Pan("4242424242424242"))


def test_public_fingerprint_is_short_lowercase_hex() -> None:
    fingerprinter = Fingerprinter(new_data_key())
    pan = Pan("5555555555554444")

    public = fingerprinter.public(pan)

    assert public == fingerprinter.digest(pan)[:16].hex()
    assert len(public) == 32 and public == public.lower()
    assert fingerprinter.public(Pan("5555-5555-5555-4444")) == public


def test_fingerprinter_needs_a_real_key_and_hides_it() -> None:
    key = new_data_key()

    with pytest.raises(ValueError):
        Fingerprinter(b"short")
    assert key.hex() not in repr(Fingerprinter(key))
    assert repr(key) not in repr(Fingerprinter(key))
