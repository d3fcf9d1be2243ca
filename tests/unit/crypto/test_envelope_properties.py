"""Envelope encryption, generatively: every sealed field opens only where it was sealed,
and any change to a blob is detected."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardvault.crypto import DecryptionError, VaultCipher, new_data_key

KEYS = {1: new_data_key(), 2: new_data_key()}
IDS = st.text(min_size=1, max_size=40)
PLAINTEXT = st.binary(max_size=512)


@given(plaintext=PLAINTEXT, record=IDS, field=IDS, version=st.sampled_from([1, 2]))
def test_a_sealed_field_opens_to_what_was_sealed(
    plaintext: bytes, record: str, field: str, version: int
) -> None:
    writer = VaultCipher("vlt_a", KEYS, version)
    blob = writer.encrypt(plaintext, record_id=record, field=field)

    reader = VaultCipher("vlt_a", KEYS, 3 - version)  # a later current key still opens it
    assert reader.decrypt(blob, record_id=record, field=field) == plaintext
    assert VaultCipher.version_of(blob) == version
    assert len(plaintext) < 4 or plaintext not in blob


@given(data=st.data(), plaintext=PLAINTEXT, record=IDS, field=IDS)
def test_any_changed_byte_is_detected(
    data: st.DataObject, plaintext: bytes, record: str, field: str
) -> None:
    cipher = VaultCipher("vlt_a", KEYS, 1)
    blob = bytearray(cipher.encrypt(plaintext, record_id=record, field=field))
    index = data.draw(st.integers(0, len(blob) - 1), label="index")
    blob[index] ^= data.draw(st.integers(1, 255), label="xor")

    with pytest.raises(DecryptionError):
        cipher.decrypt(bytes(blob), record_id=record, field=field)


@given(plaintext=PLAINTEXT, record=IDS, field=IDS, cut=st.integers(1, 64))
def test_a_truncated_or_extended_blob_is_refused(
    plaintext: bytes, record: str, field: str, cut: int
) -> None:
    cipher = VaultCipher("vlt_a", KEYS, 1)
    blob = cipher.encrypt(plaintext, record_id=record, field=field)

    for changed in (blob[:-cut], blob + bytes(cut)):
        with pytest.raises(DecryptionError):
            cipher.decrypt(changed, record_id=record, field=field)


@given(
    plaintext=PLAINTEXT,
    place=st.tuples(IDS, IDS, IDS),
    other=st.tuples(IDS, IDS, IDS),
)
def test_a_blob_moved_to_another_vault_record_or_field_is_refused(
    plaintext: bytes, place: tuple[str, str, str], other: tuple[str, str, str]
) -> None:
    vault, record, field = place
    blob = VaultCipher(vault, KEYS, 1).encrypt(plaintext, record_id=record, field=field)
    other_vault, other_record, other_field = other

    if (other_vault, other_record, other_field) != place:
        with pytest.raises(DecryptionError):
            VaultCipher(other_vault, KEYS, 1).decrypt(
                blob, record_id=other_record, field=other_field
            )


@given(blob=st.binary(max_size=128))
def test_arbitrary_bytes_never_open(blob: bytes) -> None:
    with pytest.raises(DecryptionError):
        VaultCipher("vlt_a", KEYS, 1).decrypt(blob, record_id="card_1", field="pan")
