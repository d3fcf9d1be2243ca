"""Envelope encryption of vault records and keyed PAN fingerprints (DESIGN §3).

Each vault has numbered data keys (256-bit AES), each wrapped by the key-encryption
key with associated data naming the vault and the version. A record field is sealed
with AES-256-GCM under the vault's current data key::

    format (1 byte, 0x01) | key version (4 bytes, big-endian) | nonce (12) | ciphertext+tag

The associated data binds the vault, the record, the field and the key version, so a
blob copied to another record, field or vault does not decrypt. Nonces are random
(96 bits); rotating the data key keeps the number of messages per key far below the
2^32 that NIST SP 800-38D allows for random nonces.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cardvault.crypto.errors import DecryptionError
from cardvault.crypto.kek import KeyProvider
from cardvault.crypto.pan import Pan

KEY_BYTES = 32
_FORMAT = b"\x01"
_VERSION_BYTES = 4
_NONCE_BYTES = 12
_TAG_BYTES = 16
_HEADER_BYTES = len(_FORMAT) + _VERSION_BYTES
_MIN_BLOB = _HEADER_BYTES + _NONCE_BYTES + _TAG_BYTES
_MAX_VERSION = 2**32 - 1

_DATA_KEY_AAD = b"cardvault:data-key:"
_RECORD_AAD = b"cardvault:record:"


def _encode_parts(*parts: str) -> bytes:
    """Length-prefixed UTF-8 parts, so that no two different tuples encode alike."""
    out = bytearray()
    for part in parts:
        raw = part.encode()
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


def _check_version(version: int) -> None:
    if not 1 <= version <= _MAX_VERSION:
        raise ValueError("data key version must be between 1 and 2**32-1")


def _data_key_aad(vault_id: str, version: int) -> bytes:
    return _DATA_KEY_AAD + _encode_parts(vault_id) + version.to_bytes(_VERSION_BYTES, "big")


def new_data_key() -> bytes:
    """A fresh 256-bit data key from the operating system's CSPRNG."""
    return secrets.token_bytes(KEY_BYTES)


def wrap_data_key(kek: KeyProvider, key: bytes, vault_id: str, version: int) -> bytes:
    """Wrap ``key`` under the KEK, bound to ``vault_id`` and ``version``."""
    if len(key) != KEY_BYTES:
        raise ValueError("a data key is 32 bytes")
    _check_version(version)
    return kek.wrap(key, _data_key_aad(vault_id, version))


def unwrap_data_key(kek: KeyProvider, wrapped: bytes, vault_id: str, version: int) -> bytes:
    """The data key; raises :class:`DecryptionError` if ``wrapped`` is not the key of
    that vault and version, or was tampered with."""
    _check_version(version)
    key = kek.unwrap(wrapped, _data_key_aad(vault_id, version))
    if len(key) != KEY_BYTES:
        raise DecryptionError("wrapped data key has the wrong length")
    return key


class VaultCipher:
    """Seals and opens record fields of one vault under its versioned data keys.

    New blobs use ``current_version``; every version in ``keys`` still decrypts.
    """

    __slots__ = ("_aeads", "_current", "_vault_id")

    def __init__(self, vault_id: str, keys: Mapping[int, bytes], current_version: int) -> None:
        if current_version not in keys:
            raise ValueError("the current data key version has no key")
        aeads: dict[int, AESGCM] = {}
        for version, key in keys.items():
            _check_version(version)
            if len(key) != KEY_BYTES:
                raise ValueError("a data key is 32 bytes")
            aeads[version] = AESGCM(key)
        self._vault_id = vault_id
        self._aeads = aeads
        self._current = current_version

    @property
    def vault_id(self) -> str:
        return self._vault_id

    @property
    def current_version(self) -> int:
        return self._current

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(sorted(self._aeads))

    def __repr__(self) -> str:
        return (
            f"VaultCipher(vault_id={self._vault_id!r}, versions={list(self.versions)}, "
            f"current_version={self._current})"
        )

    def _aad(self, header: bytes, record_id: str, field: str) -> bytes:
        return _RECORD_AAD + header + _encode_parts(self._vault_id, record_id, field)

    def encrypt(self, plaintext: bytes, *, record_id: str, field: str) -> bytes:
        """Seal ``plaintext`` for ``field`` of ``record_id`` under the current key."""
        header = _FORMAT + self._current.to_bytes(_VERSION_BYTES, "big")
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aeads[self._current].encrypt(
            nonce, plaintext, self._aad(header, record_id, field)
        )
        return header + nonce + sealed

    def decrypt(self, blob: bytes, *, record_id: str, field: str) -> bytes:
        """Open a blob sealed for ``field`` of ``record_id`` in this vault.

        Raises :class:`DecryptionError` if the blob is malformed, names a key version
        this cipher does not hold, was tampered with, or belongs elsewhere.
        """
        version = self.version_of(blob)
        aead = self._aeads.get(version)
        if aead is None:
            raise DecryptionError(f"unknown data key version {version}")
        header = blob[:_HEADER_BYTES]
        nonce = blob[_HEADER_BYTES : _HEADER_BYTES + _NONCE_BYTES]
        try:
            return aead.decrypt(
                nonce, blob[_HEADER_BYTES + _NONCE_BYTES :], self._aad(header, record_id, field)
            )
        except InvalidTag:
            raise DecryptionError("ciphertext failed authentication") from None

    @staticmethod
    def version_of(blob: bytes) -> int:
        """The data key version a blob was sealed with; raises :class:`DecryptionError`
        if the blob is malformed. Not authenticated until :meth:`decrypt` succeeds."""
        if len(blob) < _MIN_BLOB or blob[:1] != _FORMAT:
            raise DecryptionError("ciphertext is malformed")
        return int.from_bytes(blob[1:_HEADER_BYTES], "big")


class Fingerprinter:
    """Keyed fingerprints of PANs (HMAC-SHA-256) for de-duplication; never a plain hash."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < KEY_BYTES:
            raise ValueError("a fingerprint key is at least 32 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "Fingerprinter(key=****)"

    def digest(self, pan: Pan) -> bytes:
        """HMAC-SHA-256 of the PAN's digits (32 bytes)."""
        return hmac.new(self._key, pan.reveal().encode("ascii"), hashlib.sha256).digest()

    def public(self, pan: Pan) -> str:
        """A stable short form for API responses: hex of the digest's first 16 bytes."""
        return self.digest(pan)[:16].hex()
