"""Forged and altered access tokens against real servers, on both backends.

Every attempt is refused with 401 ``invalid-token`` and an RFC 6750 challenge, on the
FastAPI routes and on the raw fast path alike, and is audited (``token.verify``,
outcome ``failure``, from the caller's address).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tests.attack.helpers import audit_rows, client_from, fresh_address, wait_for_audit
from tests.factories import Client, Factory
from tests.functional.oauth.helpers import access_token
from tests.servers import Server

ROUTES = [("GET", "/whoami"), ("GET", "/cards/card_anything"), ("POST", "/cards")]
CARD = {"pan": "4111111111111111", "exp_month": 12, "exp_year": 2031}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def compact(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


@dataclass
class Kit:
    """What an attacker holds: a real token of their own, its parts, the published keys."""

    server: Server
    factory: Factory
    client: Client
    token: str
    header: dict[str, Any]
    claims: dict[str, Any]
    jwk: dict[str, Any]
    foreign: ec.EllipticCurvePrivateKey

    def altered(self, **changes: Any) -> str:
        """The real token with changed claims and its original signature."""
        head, _, signature = self.token.split(".")
        return f"{head}.{b64(json.dumps({**self.claims, **changes}).encode())}.{signature}"

    def foreign_signed(self, **header: Any) -> str:
        """Our claims and ``kid`` (unless replaced), signed by a key that is not ours."""
        headers = {"kid": self.header["kid"], "typ": "at+jwt", **header}
        headers = {name: value for name, value in headers.items() if value is not None}
        return jwt.encode(self.claims, self.foreign, algorithm="ES256", headers=headers)

    def real_key(self, **claims: Any) -> str:
        """Signed with the server's real current key (as if it had leaked nothing else)."""
        return self.factory.forge(self.factory.claims(self.client, **claims))

    def public_pem(self) -> bytes:
        public = ECAlgorithm.from_jwk(json.dumps(self.jwk))
        assert isinstance(public, ec.EllipticCurvePublicKey)
        return public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def hs256(self, secret: bytes) -> str:
        header = {**self.header, "alg": "HS256"}
        return compact(header, self.claims, lambda data: hmac.new(secret, data, "sha256").digest())


@pytest.fixture(scope="module")
def kit(server: Server, factory: Factory) -> Kit:
    client = factory.client(scopes=("cards:write", "cards:read"))
    token = access_token(server, client)
    head, body, _ = token.split(".")
    jwks = httpx.get(f"{server.issuer}/protocol/openid-connect/certs").json()
    header = json.loads(unb64(head))
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    foreign = ec.generate_private_key(ec.SECP256R1())
    return Kit(server, factory, client, token, header, json.loads(unb64(body)), jwk, foreign)


def foreign_jwk(kit: Kit) -> dict[str, Any]:
    return dict(json.loads(ECAlgorithm.to_jwk(kit.foreign.public_key())))


NOW = int(time.time())
FORGERIES: dict[str, Callable[[Kit], str]] = {
    # algorithm games
    "alg none": lambda k: compact({**k.header, "alg": "none"}, k.claims, lambda _: b""),
    "alg None": lambda k: compact({**k.header, "alg": "None"}, k.claims, lambda _: b""),
    "alg none, signature kept": lambda k: (
        compact({**k.header, "alg": "none"}, k.claims, lambda _: b"").rstrip(".")
        + "."
        + k.token.split(".")[2]
    ),
    "HS256 keyed with the public key (PEM)": lambda k: k.hs256(k.public_pem()),
    "HS256 keyed with the public JWK": lambda k: k.hs256(json.dumps(k.jwk).encode()),
    "RS256 under our kid": lambda k: compact({**k.header, "alg": "RS256"}, k.claims, bytes),
    # keys that are not ours
    "foreign EC key with our kid": lambda k: k.foreign_signed(),
    "foreign key, embedded jwk header": lambda k: k.foreign_signed(jwk=foreign_jwk(k)),
    "foreign key, jwk header and no kid": lambda k: k.foreign_signed(kid=None, jwk=foreign_jwk(k)),
    "foreign key, jku header": lambda k: k.foreign_signed(jku="https://evil.example/jwks.json"),
    "foreign key, x5u header": lambda k: k.foreign_signed(x5u="https://evil.example/cert.pem"),
    "foreign key, kid path": lambda k: k.foreign_signed(kid="../../../../dev/null"),
    # claims changed under the original signature
    "scope widened": lambda k: k.altered(scope="cards:write cards:read cards:read-pci"),
    "vault changed": lambda k: k.altered(vault_id="vlt_someoneelse"),
    "organization changed": lambda k: k.altered(org_id="org_someoneelse"),
    "subject changed": lambda k: k.altered(sub="sa_someoneelse"),
    "expiry extended": lambda k: k.altered(exp=NOW + 10 * 365 * 86400),
    "client changed": lambda k: k.altered(client_id="cli_other", azp="cli_other"),
    # times, audience, issuer, type: signed with the real key, so only the claims decide
    "expired": lambda k: k.real_key(iat=NOW - 7200, nbf=NOW - 7200, exp=NOW - 3600),
    "nbf in the future": lambda k: k.real_key(nbf=NOW + 3600, exp=NOW + 7200),
    "iat in the future": lambda k: k.real_key(iat=NOW + 3600, exp=NOW + 7200),
    "exp not a number": lambda k: k.real_key(exp="tomorrow"),
    "no exp": lambda k: k.real_key(exp=...),
    "wrong audience": lambda k: k.real_key(aud="https://other.example"),
    "audience list without ours": lambda k: k.real_key(aud=["https://a.example", "b"]),
    "wrong issuer": lambda k: k.real_key(iss="https://evil.example/auth/realms/cardvault"),
    "no typ": lambda k: k.factory.forge(k.factory.claims(k.client), typ=None),
    "typ JWT": lambda k: k.factory.forge(k.factory.claims(k.client), typ="JWT"),
    "typ id token": lambda k: k.factory.forge(k.factory.claims(k.client), typ="id_token+jwt"),
    # sizes and garbage
    "huge kid": lambda k: k.foreign_signed(kid="k" * 8000),
    "huge token (64 KB claims)": lambda k: k.foreign_signed(pad="x" * 48_000),
    "garbage": lambda _: "not-a-jwt",
    "garbage base64": lambda _: "!!!.@@@.###",
    "three dots": lambda _: "...",
    "header not JSON": lambda k: b64(b"{nope") + "." + k.token.split(".", 1)[1],
    "header a JSON list": lambda k: b64(b"[1,2]") + "." + k.token.split(".", 1)[1],
    "payload not JSON": lambda k: k.token.split(".")[0] + "." + b64(b"\xff\xfe") + ".sig",
    "two parts": lambda k: k.token.rsplit(".", 1)[0],
    "JWE-shaped": lambda k: ".".join([k.token.split(".")[0]] * 5),
}


def assert_refused(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text[:300]
    body = response.json()
    assert body["errors"][0]["code"] == "invalid-token"
    assert body["errors"][0]["status"] == 401
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    return str(body["errors"][0]["detail"])


@pytest.mark.parametrize("case", list(FORGERIES))
def test_forged_tokens_are_refused_and_audited(kit: Kit, case: str) -> None:
    token = FORGERIES[case](kit)
    address = fresh_address()
    with client_from(address, kit.server.url) as http:
        details = set()
        for method, path in ROUTES:
            body = CARD if method == "POST" else None
            response = http.request(
                method, path, json=body, headers={"Authorization": f"Bearer {token}"}
            )
            details.add(assert_refused(response))
    assert len(details) == 1, details  # every route says the same
    (reason,) = details
    (row,) = wait_for_audit(kit.factory, action="token.verify", source_ip=address)
    assert (row.outcome, row.actor_type, row.reason) == ("failure", "anonymous", reason)
    assert token not in json.dumps(row.details)  # the token itself is never recorded


def test_the_genuine_token_still_works(kit: Kit) -> None:
    response = httpx.get(
        f"{kit.server.url}/whoami", headers={"Authorization": f"Bearer {kit.token}"}
    )
    assert response.status_code == 200


def test_a_revoked_token_is_refused(kit: Kit) -> None:
    token = access_token(kit.server, kit.client)
    revoked = httpx.post(
        f"{kit.server.issuer}/protocol/openid-connect/revoke",
        data={
            "token": token,
            "client_id": kit.client.client_id,
            "client_secret": kit.client.client_secret,
        },
    )
    assert revoked.status_code == 200
    address = fresh_address()
    deadline = time.monotonic() + 5
    with client_from(address, kit.server.url) as http:
        while True:  # revocation reaches every worker within a second
            response = http.get("/whoami", headers={"Authorization": f"Bearer {token}"})
            if response.status_code != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert assert_refused(response) == "token revoked"
    wait_for_audit(kit.factory, action="token.verify", source_ip=address, reason="token revoked")


def test_a_flood_of_garbage_costs_one_audit_row_per_source(kit: Kit) -> None:
    address = fresh_address()
    with client_from(address, kit.server.url) as http:
        for i in range(200):
            response = http.get("/whoami", headers={"Authorization": f"Bearer junk{i}"})
            assert response.status_code == 401
        # One more refusal of another kind: once it is written, so is all that came before.
        assert http.get("/whoami").status_code == 401
    wait_for_audit(
        kit.factory, action="token.verify", source_ip=address, reason="Bearer token required"
    )
    rows = audit_rows(
        kit.factory, action="token.verify", source_ip=address, reason="malformed token"
    )
    assert len(rows) == 1, "each refusal of a flood was written on its own"


def test_bearer_header_spellings_are_refused(kit: Kit) -> None:
    for header in ("Bearer", "Basic " + kit.token, kit.token, "bearer", "Token " + kit.token):
        response = httpx.get(f"{kit.server.url}/whoami", headers={"Authorization": header})
        assert_refused(response)


def test_a_token_hash_collision_in_the_cache_is_impossible(kit: Kit) -> None:
    """The verifier caches verified tokens by SHA-256 of the whole token: an altered token
    differs in its hash and is verified afresh."""
    altered = kit.altered(scope="cards:read-pci")
    assert hashlib.sha256(altered.encode()).digest() != hashlib.sha256(kit.token.encode()).digest()
    response = httpx.get(f"{kit.server.url}/whoami", headers={"Authorization": f"Bearer {altered}"})
    assert_refused(response)


@pytest.mark.parametrize(
    "case", ["alg none", "HS256 keyed with the public key (PEM)", "scope widened", "expired"]
)
def test_introspection_calls_forged_tokens_inactive(kit: Kit, case: str) -> None:
    """RFC 7662 §2.2: a token that fails verification is just ``{"active": false}``."""
    response = httpx.post(
        f"{kit.server.issuer}/protocol/openid-connect/token/introspect",
        data={
            "token": FORGERIES[case](kit),
            "client_id": kit.client.client_id,
            "client_secret": kit.client.client_secret,
        },
    )
    assert response.status_code == 200
    assert response.json() == {"active": False}
