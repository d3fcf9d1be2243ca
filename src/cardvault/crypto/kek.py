"""Key-encryption keys: wrap and unwrap data keys and other secrets.

The default provider keeps a 256-bit AES key in a local file created with mode 0600.
An external KMS plugs in by implementing :class:`KeyProvider`.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cardvault.crypto.errors import DecryptionError, KeyUnavailableError

_FORMAT = b"\x01"  # version of the wrapped format: 0x01 | nonce(12) | ciphertext+tag
_NONCE = 12


class KeyProvider(Protocol):
    """Wraps secrets under a key-encryption key that never leaves the provider."""

    def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt ``plaintext`` bound to ``aad``. Never returns ``None``."""
        ...

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        """Decrypt; raises :class:`DecryptionError` if ``wrapped`` or ``aad`` do not match."""
        ...


class LocalFileKeyProvider:
    """AES-256-GCM under a key read from (or created in) a local file."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        self._aead = AESGCM(self._load(path, create))

    @staticmethod
    def _load(path: Path, create: bool) -> bytes:
        if not path.exists():
            if not create:
                raise KeyUnavailableError(f"key-encryption key file {path} does not exist")
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
        key = path.read_bytes()
        if len(key) != 32:
            raise KeyUnavailableError(f"key-encryption key file {path} is not a 256-bit key")
        return key

    def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return _FORMAT + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        if len(wrapped) < 1 + _NONCE + 16 or wrapped[:1] != _FORMAT:
            raise DecryptionError("wrapped value is malformed")
        nonce = wrapped[1 : 1 + _NONCE]
        try:
            return self._aead.decrypt(nonce, wrapped[1 + _NONCE :], aad)
        except InvalidTag as exc:
            raise DecryptionError("wrapped value failed authentication") from exc


def copy_key_file(source: Path, target: Path) -> None:
    """Copy the key-encryption key file ``source`` to the new file ``target`` (0600,
    written and synced before this returns; raises ``FileExistsError`` rather than
    replace a file). Raises :class:`KeyUnavailableError` if ``source`` is not a key."""
    key = LocalFileKeyProvider._load(source, create=False)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def same_key_file(first: Path, second: Path) -> bool:
    """Whether two key files hold the same key (compared in constant time). Raises
    :class:`KeyUnavailableError` if either is not a key."""
    a = LocalFileKeyProvider._load(first, create=False)
    b = LocalFileKeyProvider._load(second, create=False)
    return hmac.compare_digest(a, b)
