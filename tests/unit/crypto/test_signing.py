"""Access-token signing keys, the key ring and JWS verification (RFC 9068, RFC 7517)."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cardvault.crypto import (
    DecryptionError,
    KeyRing,
    LocalFileKeyProvider,
    SigningKeyMaterial,
    TokenInvalid,
    generate_signing_key,
)
from cardvault.crypto.signing import StoredKey

ISSUER = "https://vault.example.test"
AUDIENCE = "https://vault.example.test/api"
ALLOWED = ["ES256", "RS256"]
RETENTION = dt.timedelta(minutes=5)
LEEWAY = 30
PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.fixture(scope="module")
def kek(tmp_path_factory: pytest.TempPathFactory) -> LocalFileKeyProvider:
    return LocalFileKeyProvider(tmp_path_factory.mktemp("kek") / "kek.bin")


@pytest.fixture(scope="module")
def materials(kek: LocalFileKeyProvider) -> dict[str, SigningKeyMaterial]:
    return {
        "ES256": generate_signing_key("ES256", kek),
        "RS256": generate_signing_key("RS256", kek),
        "ES256-next": generate_signing_key("ES256", kek),
    }


@pytest.fixture
def now() -> dt.datetime:
    # PyJWT checks exp and iat against the wall clock, so tokens are issued "now".
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def stored(
    material: SigningKeyMaterial,
    activates_at: dt.datetime,
    retired_at: dt.datetime | None = None,
) -> StoredKey:
    return StoredKey(
        kid=material.kid,
        alg=material.alg,
        public_jwk=material.public_jwk,
        private_key_wrapped=material.private_key_wrapped,
        activates_at=activates_at,
        retired_at=retired_at,
    )


def ring_of(kek: LocalFileKeyProvider, *keys: StoredKey, allowed: list[str] = ALLOWED) -> KeyRing:
    return KeyRing(keys, kek, retention=RETENTION, allowed_algs=allowed)


def private_pem(kek: LocalFileKeyProvider, material: SigningKeyMaterial) -> bytes:
    return kek.unwrap(
        material.private_key_wrapped, b"cardvault:signing-key:" + material.kid.encode()
    )


def claims_at(now: dt.datetime, lifetime: int = 300, **overrides: Any) -> dict[str, Any]:
    issued = int(now.timestamp())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "sa_test",
        "client_id": "cv-abcdefghij0123456789",
        "jti": secrets.token_hex(8),
        "iat": issued,
        "exp": issued + lifetime,
        "scope": "cards:read",
    }
    claims.update(overrides)
    return claims


def verify(ring: KeyRing, token: str, now: dt.datetime, **kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, "leeway": LEEWAY}
    options.update(kwargs)
    return ring.verify(token, now=now, **options)


def kids(jwks: dict[str, Any]) -> set[str]:
    return {key["kid"] for key in jwks["keys"]}


@pytest.fixture(params=["ES256", "RS256"])
def alg(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def material(materials: dict[str, SigningKeyMaterial], alg: str) -> SigningKeyMaterial:
    return materials[alg]


@pytest.fixture
def ring(kek: LocalFileKeyProvider, material: SigningKeyMaterial, now: dt.datetime) -> KeyRing:
    return ring_of(kek, stored(material, now - dt.timedelta(hours=1)))


# Signing and verifying ------------------------------------------------------------


def test_generated_key_describes_itself(material: SigningKeyMaterial, alg: str) -> None:
    assert material.alg == alg
    assert material.kid
    assert material.public_jwk["kid"] == material.kid
    assert material.public_jwk["alg"] == alg
    assert b"PRIVATE KEY" not in material.private_key_wrapped


def test_unsupported_algorithm_is_refused(kek: LocalFileKeyProvider) -> None:
    for alg in ("HS256", "none", "ES384", ""):
        with pytest.raises(ValueError):
            generate_signing_key(alg, kek)


def test_sign_and_verify_round_trip(
    ring: KeyRing, material: SigningKeyMaterial, now: dt.datetime
) -> None:
    claims = claims_at(now)

    token = ring.sign(claims, now)

    assert jwt.get_unverified_header(token) == {
        "alg": material.alg,
        "kid": material.kid,
        "typ": "at+jwt",
    }
    assert verify(ring, token, now) == claims


def test_token_verifies_with_the_published_jwk(ring: KeyRing, now: dt.datetime) -> None:
    """What a resource server does: pick the JWK by kid and check the signature."""
    claims = claims_at(now)
    token = ring.sign(claims, now)
    kid = jwt.get_unverified_header(token)["kid"]
    (jwk,) = [key for key in ring.jwks(now)["keys"] if key["kid"] == kid]

    decoded = jwt.decode(
        token, jwt.PyJWK(jwk).key, algorithms=[jwk["alg"]], audience=AUDIENCE, issuer=ISSUER
    )

    assert decoded == claims


def test_jwks_has_public_parameters_only(
    ring: KeyRing, material: SigningKeyMaterial, now: dt.datetime
) -> None:
    (jwk,) = ring.jwks(now)["keys"]

    assert not PRIVATE_JWK_MEMBERS & set(jwk)
    assert jwk["kid"] == material.kid
    assert jwk["alg"] == material.alg
    assert jwk["use"] == "sig"
    if material.alg == "ES256":
        assert jwk["kty"] == "EC"
        assert jwk["crv"] == "P-256"
        assert {"x", "y"} <= set(jwk)
    else:
        assert jwk["kty"] == "RSA"
        assert {"n", "e"} <= set(jwk)


def test_both_algorithms_published_together(
    kek: LocalFileKeyProvider, materials: dict[str, SigningKeyMaterial], now: dt.datetime
) -> None:
    es, rs = materials["ES256"], materials["RS256"]
    ring = ring_of(
        kek, stored(es, now - dt.timedelta(hours=2)), stored(rs, now - dt.timedelta(hours=1))
    )

    jwks = ring.jwks(now)

    assert kids(jwks) == {es.kid, rs.kid}
    for jwk in jwks["keys"]:
        assert not PRIVATE_JWK_MEMBERS & set(jwk)
    assert len(ring) == 2


def test_media_type_form_of_typ_is_accepted(
    ring: KeyRing, kek: LocalFileKeyProvider, material: SigningKeyMaterial, now: dt.datetime
) -> None:
    """RFC 9068 §2.1: ``typ`` may also be written ``application/at+jwt``."""
    claims = claims_at(now)
    token = jwt.encode(
        claims,
        private_pem(kek, material),
        algorithm=material.alg,
        headers={"kid": material.kid, "typ": "application/at+jwt"},
    )

    assert verify(ring, token, now) == claims


def test_expired_within_leeway_is_accepted(ring: KeyRing, now: dt.datetime) -> None:
    claims = claims_at(now - dt.timedelta(seconds=310))  # expired 10 s ago, leeway 30 s

    assert verify(ring, ring.sign(claims, now), now) == claims


def test_key_moved_to_another_kid_cannot_be_loaded(
    kek: LocalFileKeyProvider, material: SigningKeyMaterial, now: dt.datetime
) -> None:
    """The wrapped private key is bound to its kid."""
    moved = StoredKey(
        kid="someotherkid0000",
        alg=material.alg,
        public_jwk=material.public_jwk,
        private_key_wrapped=material.private_key_wrapped,
        activates_at=now,
        retired_at=None,
    )

    with pytest.raises(DecryptionError):
        ring_of(kek, moved)


# Rejections -----------------------------------------------------------------------


def assert_invalid(
    ring: KeyRing, token: str, now: dt.datetime, reason: str | None = None, **kwargs: Any
) -> None:
    with pytest.raises(TokenInvalid) as info:
        verify(ring, token, now, **kwargs)
    if reason is not None:
        assert info.value.reason == reason
    assert token not in str(info.value)


def test_wrong_audience(ring: KeyRing, now: dt.datetime) -> None:
    token = ring.sign(claims_at(now), now)

    assert_invalid(ring, token, now, audience="https://other.example.test/api")


def test_wrong_issuer(ring: KeyRing, now: dt.datetime) -> None:
    token = ring.sign(claims_at(now), now)

    assert_invalid(ring, token, now, issuer="https://other.example.test")


def test_expired_beyond_leeway(ring: KeyRing, now: dt.datetime) -> None:
    token = ring.sign(claims_at(now - dt.timedelta(seconds=400)), now)  # expired 100 s ago

    assert_invalid(ring, token, now, "token expired")


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub", "jti", "client_id"])
def test_missing_required_claim(ring: KeyRing, now: dt.datetime, claim: str) -> None:
    claims = claims_at(now)
    del claims[claim]

    assert_invalid(ring, ring.sign(claims, now), now)


def test_malformed_token(ring: KeyRing, now: dt.datetime) -> None:
    assert_invalid(ring, "not-a-jwt", now, "malformed token")


def test_unknown_kid(
    ring: KeyRing, kek: LocalFileKeyProvider, material: SigningKeyMaterial, now: dt.datetime
) -> None:
    token = jwt.encode(
        claims_at(now),
        private_pem(kek, material),
        algorithm=material.alg,
        headers={"kid": "nosuchkid0000000", "typ": "at+jwt"},
    )

    assert_invalid(ring, token, now, "unknown signing key")


def test_missing_kid(
    ring: KeyRing, kek: LocalFileKeyProvider, material: SigningKeyMaterial, now: dt.datetime
) -> None:
    token = jwt.encode(
        claims_at(now),
        private_pem(kek, material),
        algorithm=material.alg,
        headers={"typ": "at+jwt"},
    )

    assert_invalid(ring, token, now, "unknown signing key")


def test_signature_by_another_key_under_a_known_kid(
    kek: LocalFileKeyProvider, materials: dict[str, SigningKeyMaterial], now: dt.datetime
) -> None:
    es = materials["ES256"]
    ring = ring_of(kek, stored(es, now - dt.timedelta(hours=1)))
    forger = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(
        claims_at(now), forger, algorithm="ES256", headers={"kid": es.kid, "typ": "at+jwt"}
    )

    assert_invalid(ring, token, now, "signature or claims invalid")


def test_alg_of_another_allowed_family_under_a_known_kid(
    kek: LocalFileKeyProvider, materials: dict[str, SigningKeyMaterial], now: dt.datetime
) -> None:
    """An ES256 token presenting the kid of the RS256 key is not checked with that key."""
    es, rs = materials["ES256"], materials["RS256"]
    ring = ring_of(kek, stored(rs, now - dt.timedelta(hours=1)))
    token = jwt.encode(
        claims_at(now),
        private_pem(kek, es),
        algorithm="ES256",
        headers={"kid": rs.kid, "typ": "at+jwt"},
    )

    assert_invalid(ring, token, now, "unknown signing key")


def test_alg_not_allowed_with_the_right_key(
    kek: LocalFileKeyProvider, materials: dict[str, SigningKeyMaterial], now: dt.datetime
) -> None:
    """PS256 with the genuine RSA key and kid: a valid signature, but not an allowed alg."""
    rs = materials["RS256"]
    ring = ring_of(kek, stored(rs, now - dt.timedelta(hours=1)))
    token = jwt.encode(
        claims_at(now),
        private_pem(kek, rs),
        algorithm="PS256",
        headers={"kid": rs.kid, "typ": "at+jwt"},
    )

    assert_invalid(ring, token, now, "algorithm not allowed")


def test_key_alg_outside_allowed_algs(
    kek: LocalFileKeyProvider, materials: dict[str, SigningKeyMaterial], now: dt.datetime
) -> None:
    """A ring configured for ES256 only refuses tokens of its own RS256 key."""
    rs = materials["RS256"]
    ring = ring_of(kek, stored(rs, now - dt.timedelta(hours=1)), allowed=["ES256"])
    token = ring.sign(claims_at(now), now)

    assert_invalid(ring, token, now, "algorithm not allowed")


def test_alg_none(ring: KeyRing, material: SigningKeyMaterial, now: dt.datetime) -> None:
    token = jwt.encode(
        claims_at(now), None, algorithm="none", headers={"kid": material.kid, "typ": "at+jwt"}
    )

    assert_invalid(ring, token, now, "algorithm not allowed")


# Key confusion (an HS256 token keyed with the verifier's public key PEM) is not built
# here: PyJWT refuses a public key as HMAC secret in PEM, DER and JWK form alike
# (InvalidKeyError), so that sub-case is skipped. The verifier's defence does not depend
# on the secret: HS256 is refused before any key is chosen, which this test checks.
def test_hs256_under_a_known_kid(
    kek: LocalFileKeyProvider, materials: dict[str, SigningKeyMaterial], now: dt.datetime
) -> None:
    rs = materials["RS256"]
    ring = ring_of(kek, stored(rs, now - dt.timedelta(hours=1)))
    token = jwt.encode(
        claims_at(now),
        secrets.token_bytes(32),
        algorithm="HS256",
        headers={"kid": rs.kid, "typ": "at+jwt"},
    )

    assert_invalid(ring, token, now, "algorithm not allowed")


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+jws", None])
def test_not_an_access_token_typ(
    ring: KeyRing,
    kek: LocalFileKeyProvider,
    material: SigningKeyMaterial,
    now: dt.datetime,
    typ: str | None,
) -> None:
    token = jwt.encode(
        claims_at(now),
        private_pem(kek, material),
        algorithm=material.alg,
        headers={"kid": material.kid, "typ": typ},
    )
    if typ is None:
        assert "typ" not in jwt.get_unverified_header(token)

    assert_invalid(ring, token, now, "not an access token")


def test_verify_uses_the_given_time_for_expiry(
    kek: LocalFileKeyProvider, materials: dict[str, SigningKeyMaterial], now: dt.datetime
) -> None:
    # ``now`` governs expiry as well as which keys are published.
    es = materials["ES256"]
    ring = ring_of(kek, stored(es, now - dt.timedelta(hours=1)))
    token = ring.sign(claims_at(now), now)

    assert_invalid(ring, token, now + dt.timedelta(days=1), "token expired")


# Rotation -------------------------------------------------------------------------


@pytest.fixture
def rotation(
    kek: LocalFileKeyProvider, materials: dict[str, SigningKeyMaterial], now: dt.datetime
) -> tuple[KeyRing, SigningKeyMaterial, SigningKeyMaterial]:
    a, b = materials["ES256"], materials["ES256-next"]
    switch = now + dt.timedelta(seconds=10)
    ring = ring_of(
        kek, stored(b, switch), stored(a, now - dt.timedelta(hours=1), retired_at=switch)
    )
    return ring, a, b


def test_rotation_current_key(
    rotation: tuple[KeyRing, SigningKeyMaterial, SigningKeyMaterial], now: dt.datetime
) -> None:
    ring, a, b = rotation

    assert ring.current(now).kid == a.kid
    assert ring.current(now + dt.timedelta(seconds=9)).kid == a.kid
    assert ring.current(now + dt.timedelta(seconds=11)).kid == b.kid
    assert ring.current(now + dt.timedelta(days=30)).kid == b.kid


def test_rotation_signs_with_the_current_key(
    rotation: tuple[KeyRing, SigningKeyMaterial, SigningKeyMaterial], now: dt.datetime
) -> None:
    ring, a, b = rotation

    before = ring.sign(claims_at(now), now)
    after = ring.sign(claims_at(now), now + dt.timedelta(seconds=11))

    assert jwt.get_unverified_header(before)["kid"] == a.kid
    assert jwt.get_unverified_header(after)["kid"] == b.kid
    # the next key is published before it signs, so its tokens verify at once
    assert verify(ring, after, now)["jti"]


def test_rotation_publication(
    rotation: tuple[KeyRing, SigningKeyMaterial, SigningKeyMaterial], now: dt.datetime
) -> None:
    ring, a, b = rotation
    gone = now + dt.timedelta(seconds=10) + RETENTION

    assert kids(ring.jwks(now)) == {a.kid, b.kid}
    assert kids(ring.jwks(now + dt.timedelta(seconds=11))) == {a.kid, b.kid}
    assert kids(ring.jwks(gone - dt.timedelta(seconds=1))) == {a.kid, b.kid}
    assert kids(ring.jwks(gone + dt.timedelta(seconds=1))) == {b.kid}
    assert kids(ring.jwks(gone + dt.timedelta(days=30))) == {b.kid}


def test_rotation_old_tokens_verify_while_published(
    rotation: tuple[KeyRing, SigningKeyMaterial, SigningKeyMaterial], now: dt.datetime
) -> None:
    ring, a, _ = rotation
    claims = claims_at(now)
    token = ring.sign(claims, now)
    gone = now + dt.timedelta(seconds=10) + RETENTION
    assert jwt.get_unverified_header(token)["kid"] == a.kid

    assert verify(ring, token, now) == claims
    assert verify(ring, token, now + dt.timedelta(seconds=11)) == claims
    assert verify(ring, token, gone - dt.timedelta(seconds=1)) == claims
    assert_invalid(ring, token, gone + dt.timedelta(seconds=1), "unknown signing key")


def test_no_key_active_yet(
    kek: LocalFileKeyProvider, materials: dict[str, SigningKeyMaterial], now: dt.datetime
) -> None:
    ring = ring_of(kek, stored(materials["ES256"], now + dt.timedelta(minutes=1)))

    with pytest.raises(LookupError):
        ring.current(now)
    with pytest.raises(LookupError):
        ring.sign(claims_at(now), now)
    assert ring.current(now + dt.timedelta(minutes=2)).kid == materials["ES256"].kid
