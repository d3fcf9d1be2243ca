"""Client identifiers and secrets.

Secrets carry 256 random bits behind the recognisable prefix ``cvs_`` and are stored
only as HMAC-SHA-256 under a server-side pepper. A slow password hash would buy
nothing for random secrets and would make the token endpoint slow.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable

SECRET_PREFIX = "cvs_"  # noqa: S105 (a prefix, not a secret)


class ClientSecret:
    """A client secret whose ``repr`` and ``str`` never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "ClientSecret('cvs_****')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClientSecret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(ClientSecret)


_BASE32 = b"abcdefghijklmnopqrstuvwxyz234567"
_TO_BASE32 = bytes(_BASE32[value % 32] for value in range(256))  # 256 = 8 x 32: uniform
_SORTED_BASE32 = "234567abcdefghijklmnopqrstuvwxyz"  # the same symbols, in ASCII order
TIME_CHARS = 9  # 45 bits of milliseconds: until the year 3084


class _RandomBytes:
    """Bytes of the OS's CSPRNG, read 4 KiB at a time and each handed out once.

    Bulk enrolment mints thousands of identifiers a second; one ``getrandom`` call
    each cost more than the rest of making them. A forked child starts with an empty
    buffer, so no two processes ever hand out the same bytes.
    """

    SIZE = 4096

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._used = 0

    def take(self, count: int) -> bytes:
        with self._lock:
            if self._used + count > len(self._buffer):
                self._buffer, self._used = os.urandom(max(count, self.SIZE)), 0
            start, self._used = self._used, self._used + count
            return self._buffer[start : self._used]


_random_bytes = _RandomBytes()
os.register_at_fork(after_in_child=_random_bytes.reset)


def random_id(prefix: str, length: int = 20) -> str:
    """An unguessable identifier such as ``org_3k9x…``: 5 random bits per character
    (lowercase base32, so only ``a-z`` and ``2-7``)."""
    return prefix + _random_bytes.take(length).translate(_TO_BASE32).decode("ascii")


def ordered_id(prefix: str, random_chars: int = 16) -> str:
    """An identifier like :func:`random_id` that sorts by creation time: the
    millisecond in :data:`TIME_CHARS` characters, then ``random_chars`` random ones
    (80 bits by default, so still unguessable).

    For the rows written on every call (cards, tokens, events): a new key lands at
    the end of its table's primary-key index rather than on a random page of it, so
    a commit writes a few pages fewer per row."""
    global _stamp
    millis = time.time_ns() // 1_000_000
    stamped, stamp = _stamp
    if stamped != millis:  # many identifiers share a millisecond under load
        stamp = "".join([_SORTED_BASE32[(millis >> shift) & 31] for shift in _SHIFTS])
        _stamp = (millis, stamp)
    return prefix + stamp + _random_bytes.take(random_chars).translate(_TO_BASE32).decode("ascii")


_SHIFTS = tuple(range(5 * (TIME_CHARS - 1), -1, -5))
_stamp = (0, "")  # the last millisecond encoded, and its characters


def generate_token(nbytes: int = 32) -> str:
    """An opaque random value for cookies, one-time links and device codes."""
    return secrets.token_urlsafe(nbytes)


USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # consonants only (RFC 8628 §6.1)


def generate_user_code(length: int = 8) -> str:
    """A short code a person types: consonants, no vowels, so no words form."""
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(length))


def generate_client_id() -> str:
    return random_id("cv-", 20)


def generate_client_secret() -> ClientSecret:
    return ClientSecret(SECRET_PREFIX + secrets.token_urlsafe(32))


class SecretHasher:
    """Keyed hashing of client secrets; comparison in constant time."""

    def __init__(self, pepper: bytes) -> None:
        if len(pepper) < 32:
            raise ValueError("pepper must be at least 256 bits")
        self._pepper = pepper

    def hash(self, secret: ClientSecret | str) -> bytes:
        value = secret.reveal() if isinstance(secret, ClientSecret) else secret
        return hmac.new(self._pepper, value.encode(), hashlib.sha256).digest()

    def matches(self, secret: str, candidates: Iterable[bytes]) -> bool:
        """True if ``secret`` hashes to any candidate; every candidate is compared."""
        digest = self.hash(secret)
        found = False
        for candidate in candidates:
            found |= hmac.compare_digest(digest, candidate)
        return found


# Client secrets (cvs_) and webhook signing secrets (cvwh_): 32 random bytes in base64url.
_SECRET_TEXT = re.compile(r"\b(cvs|cvwh)_[A-Za-z0-9_-]{16,}")


def mask_secrets(text: str) -> str:
    """``text`` with every client or webhook secret cut to its prefix (``cvs_****``)."""
    return _SECRET_TEXT.sub(r"\1_****", text) if "_" in text else text
