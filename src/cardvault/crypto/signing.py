"""Access-token signing keys and JWS through PyJWT (no hand-written JOSE).

A :class:`KeyRing` holds every published key of the installation. Exactly one key
signs at a time: the newest whose ``activates_at`` has passed. A key published ahead
of its activation lets verifiers fetch it before any token uses it; a retired key stays
published until the last token it signed has expired.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from cardvault.crypto.kek import KeyProvider
from cardvault.crypto.secrets import random_id

ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 (a media type)
_ACCEPTED_TYP = {"at+jwt", "application/at+jwt"}

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class TokenInvalid(Exception):
    """A token failed verification; ``reason`` is safe to log, never the token itself."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SigningKeyMaterial:
    """A freshly generated key: public JWK in clear, private key wrapped by the KEK."""

    kid: str
    alg: str
    public_jwk: dict[str, Any]
    private_key_wrapped: bytes


def _aad(kid: str) -> bytes:
    return b"cardvault:signing-key:" + kid.encode()


def _public_jwk(public_key: PublicKey, kid: str, alg: str) -> dict[str, Any]:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        jwk = json.loads(ECAlgorithm.to_jwk(public_key))
    else:
        jwk = json.loads(RSAAlgorithm.to_jwk(public_key))
    jwk.pop("key_ops", None)  # RFC 7517 §4.3: not together with "use"
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return dict(jwk)


def generate_signing_key(alg: str, kek: KeyProvider) -> SigningKeyMaterial:
    private: PrivateKey
    if alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise ValueError(f"unsupported signing algorithm {alg!r}")
    kid = random_id("", 16)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return SigningKeyMaterial(
        kid=kid,
        alg=alg,
        public_jwk=_public_jwk(private.public_key(), kid, alg),
        private_key_wrapped=kek.wrap(pem, _aad(kid)),
    )


@dataclass(frozen=True)
class _Key:
    kid: str
    alg: str
    private: PrivateKey
    public: PublicKey
    jwk: dict[str, Any]
    activates_at: dt.datetime
    retired_at: dt.datetime | None


@dataclass(frozen=True)
class StoredKey:
    """A signing key as the store holds it."""

    kid: str
    alg: str
    public_jwk: dict[str, Any]
    private_key_wrapped: bytes
    activates_at: dt.datetime
    retired_at: dt.datetime | None


class KeyRing:
    """The published signing keys, able to sign and verify access tokens."""

    def __init__(
        self,
        stored: Iterable[StoredKey],
        kek: KeyProvider,
        *,
        retention: dt.timedelta,
        allowed_algs: Iterable[str],
    ) -> None:
        self._retention = retention
        self._allowed = frozenset(allowed_algs)
        keys = []
        for row in stored:
            pem = kek.unwrap(row.private_key_wrapped, _aad(row.kid))
            private = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(private, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
                raise ValueError(f"signing key {row.kid} has an unsupported type")
            keys.append(
                _Key(
                    row.kid,
                    row.alg,
                    private,
                    private.public_key(),
                    dict(row.public_jwk),
                    row.activates_at,
                    row.retired_at,
                )
            )
        self._keys = sorted(keys, key=lambda k: k.activates_at)
        self._by_kid = {k.kid: k for k in self._keys}

    def __len__(self) -> int:
        return len(self._keys)

    def _published(self, key: _Key, now: dt.datetime) -> bool:
        return key.retired_at is None or key.retired_at + self._retention > now

    def current(self, now: dt.datetime) -> _Key:
        """The key that signs now; raises ``LookupError`` if none has activated."""
        active = [k for k in self._keys if k.activates_at <= now and self._published(k, now)]
        if not active:
            raise LookupError("no active signing key")
        return active[-1]

    def jwks(self, now: dt.datetime) -> dict[str, Any]:
        """RFC 7517 key set: the next key, the current key and unexpired retired keys."""
        return {"keys": [k.jwk for k in reversed(self._keys) if self._published(k, now)]}

    def sign(self, claims: Mapping[str, Any], now: dt.datetime) -> str:
        key = self.current(now)
        return jwt.encode(
            dict(claims),
            key.private,
            algorithm=key.alg,
            headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYP},
        )

    def verify(
        self,
        token: str,
        *,
        issuer: str,
        audience: str,
        leeway: int,
        now: dt.datetime,
    ) -> dict[str, Any]:
        """Verify signature, header and registered claims; raises :class:`TokenInvalid`."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenInvalid("malformed token") from exc
        alg = header.get("alg")
        if alg not in self._allowed:
            raise TokenInvalid("algorithm not allowed")
        if str(header.get("typ", "")).lower() not in _ACCEPTED_TYP:
            raise TokenInvalid("not an access token")
        key = self._by_kid.get(str(header.get("kid", "")))
        if key is None or key.alg != alg or not self._published(key, now):
            raise TokenInvalid("unknown signing key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public,
                algorithms=[alg],
                audience=audience,
                issuer=issuer,
                leeway=leeway,
                options={
                    "require": ["exp", "iat", "iss", "aud", "sub", "jti", "client_id"],
                    # Times are checked below against ``now``, not PyJWT's own clock.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise TokenInvalid("signature or claims invalid") from exc
        _check_times(claims, now.timestamp(), leeway)
        return claims


def _check_times(claims: Mapping[str, Any], now: float, leeway: int) -> None:
    """RFC 7519 §4.1.4-4.1.6 against the caller's clock, with ``leeway`` seconds of skew."""
    try:
        exp = float(claims["exp"])
        iat = float(claims["iat"])
        nbf = float(claims.get("nbf", iat))
    except (TypeError, ValueError) as exc:
        raise TokenInvalid("signature or claims invalid") from exc
    if exp <= now - leeway:
        raise TokenInvalid("token expired")
    if nbf > now + leeway or iat > now + leeway:
        raise TokenInvalid("token not yet valid")
