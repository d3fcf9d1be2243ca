"""The resource server's bearer-token guard (RFC 6750, RFC 9068 §4), via GET /whoami."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from tests.factories import Factory
from tests.functional.oauth.helpers import access_token, eventually, whoami
from tests.servers import Server


def _error(response: httpx.Response) -> tuple[int, str, str]:
    (error,) = response.json()["errors"]
    return response.status_code, error["code"], response.headers.get("www-authenticate", "")


def test_valid_token_reaches_the_route(server: Server, factory: Factory) -> None:
    client = factory.client()
    response = whoami(server, access_token(server, client))
    assert response.status_code == 200
    assert response.json() == {
        "client_id": client.client_id,
        "service_account_id": client.service_account_id,
        "org_id": client.org_id,
        "vault_id": client.vault_ids[0],
        "scopes": ["cards:write", "network-tokens:write"],
    }


def test_missing_token_is_401_with_bearer_challenge(server: Server) -> None:
    response = httpx.get(f"{server.url}/whoami")
    assert response.status_code == 401
    assert response.json() == {
        "errors": [{"status": 401, "code": "invalid-token", "detail": "Bearer token required"}]
    }
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("garbage", "malformed token"),
        ("expired", "token expired"),
        ("not_yet_valid", "token not yet valid"),
        ("wrong_audience", "signature or claims invalid"),
        ("wrong_issuer", "signature or claims invalid"),
        ("wrong_typ", "not an access token"),
        ("unknown_kid", "unknown signing key"),
        ("tampered", "signature or claims invalid"),
        ("alg_none", "algorithm not allowed"),
        ("alg_hs256", "algorithm not allowed"),
    ],
)
def test_bad_tokens_are_refused(server: Server, factory: Factory, case: str, reason: str) -> None:
    client = factory.client()
    now = int(time.time())
    claims = factory.claims(client)
    good = factory.forge(claims)
    tokens = {
        "garbage": "abc.def",
        "expired": factory.forge(
            factory.claims(client, iat=now - 900, exp=now - 600, nbf=now - 900)
        ),
        "not_yet_valid": factory.forge(factory.claims(client, nbf=now + 600, iat=now)),
        "wrong_audience": factory.forge(factory.claims(client, aud="https://other.example")),
        "wrong_issuer": factory.forge(factory.claims(client, iss="https://evil.example/realms/x")),
        "wrong_typ": factory.forge(claims, typ="JWT"),
        "unknown_kid": factory.forge(claims, kid="not-a-published-kid"),
        "tampered": good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB"),
        "alg_none": jwt.encode(claims, None, algorithm="none", headers={"typ": "at+jwt"}),
        "alg_hs256": jwt.encode(
            claims, "x" * 32, algorithm="HS256", headers={"typ": "at+jwt", "kid": "k"}
        ),
    }
    response = whoami(server, tokens[case])
    assert _error(response)[:2] == (401, "invalid-token")
    assert response.json()["errors"][0]["detail"] == reason
    assert response.headers["www-authenticate"] == (
        f'Bearer error="invalid_token", error_description="{reason}"'
    )


def test_forged_claims_with_the_real_key_are_accepted(server: Server, factory: Factory) -> None:
    # Sanity check of the forging helper itself: otherwise the cases above prove nothing.
    client = factory.client()
    assert whoami(server, factory.forge(factory.claims(client))).status_code == 200


def test_deleted_client_tokens_stop_working_within_a_second(
    server: Server, factory: Factory
) -> None:
    client = factory.client()
    token = access_token(server, client)
    assert whoami(server, token).status_code == 200
    factory.delete(client)
    elapsed = eventually(lambda: whoami(server, token).status_code == 401, timeout=1.0)
    assert elapsed < 1.0
    assert whoami(server, token).json()["errors"][0]["detail"] == "client revoked"


def test_access_lowered_to_read_refuses_tokens_and_restoring_it_readmits(
    server: Server, factory: Factory
) -> None:
    client = factory.client()
    token = access_token(server, client)
    factory.set_access(client, "read")
    eventually(lambda: whoami(server, token).status_code == 401, timeout=1.0)
    factory.set_access(client, "write")
    eventually(lambda: whoami(server, token).status_code == 200, timeout=1.0)


def test_disabled_client_is_refused_everywhere(server: Server, factory: Factory) -> None:
    client = factory.client()
    token = access_token(server, client)
    factory.disable(client)
    eventually(lambda: whoami(server, token).status_code == 401, timeout=1.0)
    refused = httpx.post(
        server.token_url,
        data={
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "grant_type": "client_credentials",
        },
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
