"""``Cardvault-Signature: t=<unix>,v0=<hex>``: HMAC-SHA-256 of ``"{t}.{body}"``.

Standard library only: merchants' receivers import :func:`verify` from here. One
header may carry several ``v0`` values (during a secret rotation the old and the new
secret both sign); a signature is valid if any of them matches.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

SIGNATURE_HEADER = "Cardvault-Signature"
SCHEME = "v0"


class InvalidSignature(ValueError):
    """The signature header is malformed, too old, or matches no secret."""


def _text(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def sign(body: bytes | str, secret: bytes | str, timestamp: int) -> str:
    """The hex HMAC-SHA-256 of ``"{timestamp}.{body}"`` under ``secret``."""
    message = str(timestamp).encode() + b"." + _text(body)
    return hmac.new(_text(secret), message, hashlib.sha256).hexdigest()


def signature_header(body: bytes | str, secrets: Sequence[bytes | str], timestamp: int) -> str:
    """The header value signing ``body`` with every secret in ``secrets``."""
    parts = [f"t={timestamp}"] + [f"{SCHEME}={sign(body, s, timestamp)}" for s in secrets]
    return ",".join(parts)


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise InvalidSignature("malformed signature header")
        if key == "t":
            if not value.isdigit() or timestamp is not None:
                raise InvalidSignature("malformed timestamp in signature header")
            timestamp = int(value)
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidSignature("signature header needs t= and at least one v0=")
    return timestamp, signatures


def verify(
    body: bytes | str,
    header: str | None,
    secret: bytes | str,
    tolerance: int = 60,
    *,
    now: float | None = None,
) -> int:
    """Check a webhook: ``header`` signs ``body`` under ``secret`` and is at most
    ``tolerance`` seconds old (or in the future). Returns the signed timestamp;
    raises :class:`InvalidSignature` otherwise. Pass the raw body bytes as received.
    """
    if not header:
        raise InvalidSignature(f"missing {SIGNATURE_HEADER} header")
    timestamp, signatures = _parse(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise InvalidSignature("signature timestamp outside the tolerance")
    expected = sign(body, secret, timestamp).encode()
    found = False
    for candidate in signatures:
        found |= hmac.compare_digest(expected, candidate.encode())
    if not found:
        raise InvalidSignature("no signature matches the secret")
    return timestamp
