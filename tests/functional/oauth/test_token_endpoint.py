"""POST …/protocol/openid-connect/token (RFC 6749 §4.4, §5.1, §5.2)."""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import time

import httpx
import pytest
from sqlalchemy import select

from cardvault.store.models import AuditEvent, ServiceAccount
from tests.factories import Factory
from tests.functional.oauth.helpers import access_token, token_request, unverified
from tests.servers import Server

INVALID_CLIENT = {
    "error": "invalid_client",
    "error_description": "Invalid client or Invalid client credentials",
}


def test_the_reference_curl_request_gets_a_token(server: Server, factory: Factory) -> None:
    client = factory.client()
    result = subprocess.run(
        [
            "curl",
            "-s",
            "-X",
            "POST",
            "-d",
            f"client_id={client.client_id}",
            "-d",
            f"client_secret={client.client_secret}",
            "-d",
            "grant_type=client_credentials",
            f"{server.url}/auth/realms/cardvault/protocol/openid-connect/token",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    body = httpx.Response(200, content=result.stdout).json()
    assert set(body) == {
        "access_token",
        "expires_in",
        "refresh_expires_in",
        "token_type",
        "not-before-policy",
        "scope",
    }
    assert body["expires_in"] == 300
    assert body["refresh_expires_in"] == 0
    assert body["token_type"] == "bearer"
    assert body["not-before-policy"] == 0
    assert body["scope"] == "cards:write network-tokens:write"


def test_token_response_headers_and_jwt_contents(server: Server, factory: Factory) -> None:
    client = factory.client()
    response = token_request(server, client)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    header, claims = unverified(response.json()["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    certs = httpx.get(f"{server.issuer}/protocol/openid-connect/certs").json()
    assert header["kid"] in {k["kid"] for k in certs["keys"]}
    assert claims["iss"] == server.issuer
    assert claims["aud"] == server.url
    assert claims["sub"] == client.service_account_id
    assert claims["client_id"] == claims["azp"] == client.client_id
    assert claims["scope"] == "cards:write network-tokens:write"
    assert claims["org_id"] == client.org_id
    assert claims["vault_id"] == client.vault_ids[0]
    assert claims["exp"] - claims["iat"] == 300
    assert claims["nbf"] == claims["iat"]
    assert abs(claims["iat"] - time.time()) < 5
    assert len(claims["jti"]) >= 16


@pytest.mark.parametrize("prefix", ["/auth/realms/cardvault", "/realms/cardvault"])
def test_both_keycloak_layouts_answer(server: Server, factory: Factory, prefix: str) -> None:
    client = factory.client()
    response = httpx.post(
        f"{server.url}{prefix}/protocol/openid-connect/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, client.client_secret),
    )
    assert response.status_code == 200, response.text


def test_each_token_is_unique(server: Server, factory: Factory) -> None:
    client = factory.client()
    jtis = {unverified(access_token(server, client))[1]["jti"] for _ in range(5)}
    assert len(jtis) == 5


def test_account_lifespan_sets_expires_in(server: Server, factory: Factory) -> None:
    client = factory.client(lifespan=900)
    body = token_request(server, client).json()
    assert body["expires_in"] == 900
    claims = unverified(body["access_token"])[1]
    assert claims["exp"] - claims["iat"] == 900


def test_scope_parameter_narrows_the_grant(server: Server, factory: Factory) -> None:
    client = factory.client()
    assert token_request(server, client, scope="cards:write").json()["scope"] == "cards:write"
    # X:write implies X:read, so a read-only token can be asked for.
    narrowed = token_request(server, client, scope="cards:read network-tokens:read").json()
    assert narrowed["scope"] == "cards:read network-tokens:read"
    assert unverified(narrowed["access_token"])[1]["scope"] == "cards:read network-tokens:read"


@pytest.mark.parametrize(
    ("scope", "description"),
    [
        ("vaults:read", "Scope not granted to this client: vaults:read"),
        ("cards:write bogus", "Scope not granted to this client: bogus"),
    ],
)
def test_ungranted_or_unknown_scope_is_invalid_scope(
    server: Server, factory: Factory, scope: str, description: str
) -> None:
    response = token_request(server, factory.client(), scope=scope)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_scope", "error_description": description}
    assert response.headers["cache-control"] == "no-store"


def test_missing_grant_type_is_invalid_request(server: Server, factory: Factory) -> None:
    client = factory.client()
    response = httpx.post(
        server.token_url,
        data={"client_id": client.client_id, "client_secret": client.client_secret},
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "Missing parameter: grant_type",
    }


def test_repeated_parameter_is_invalid_request(server: Server, factory: Factory) -> None:
    client = factory.client()
    body = (
        f"grant_type=client_credentials&client_id={client.client_id}"
        f"&client_id={client.client_id}&client_secret={client.client_secret}"
    )
    response = httpx.post(
        server.token_url,
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "Parameter client_id is repeated",
    }


def test_json_body_is_invalid_request(server: Server, factory: Factory) -> None:
    client = factory.client()
    response = httpx.post(
        server.token_url,
        json={
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": client.client_secret,
        },
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "Content-Type must be application/x-www-form-urlencoded",
    }


def test_oversized_body_is_a_400_not_a_500(server: Server) -> None:
    response = httpx.post(
        server.token_url,
        content=b"grant_type=client_credentials&pad=" + b"x" * 20_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "Request body too large",
    }


def test_malformed_encoding_is_invalid_request(server: Server) -> None:
    response = httpx.post(
        server.token_url,
        content=b"grant_type=client_credentials&client_id=\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_wrong_secret_by_post_is_invalid_client_without_challenge(
    server: Server, factory: Factory
) -> None:
    client = factory.client()
    response = httpx.post(
        server.token_url,
        data={
            "client_id": client.client_id,
            "client_secret": client.client_secret + "x",
            "grant_type": "client_credentials",
        },
    )
    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT
    assert "www-authenticate" not in response.headers


def test_wrong_secret_by_basic_is_invalid_client_with_challenge(
    server: Server, factory: Factory
) -> None:
    client = factory.client()
    response = httpx.post(
        server.token_url,
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, "cvs_wrong"),
    )
    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT
    assert response.headers["www-authenticate"] == 'Basic realm="cardvault"'


def test_unknown_deleted_and_read_only_clients_get_the_same_answer(
    server: Server, factory: Factory
) -> None:
    deleted, read_only = factory.client(), factory.client()
    factory.delete(deleted)
    factory.set_access(read_only, "read")
    unknown = httpx.post(
        server.token_url,
        data={
            "client_id": "cv-doesnotexist000000",
            "client_secret": "cvs_x",
            "grant_type": "client_credentials",
        },
    )
    answers = [unknown, token_request(server, deleted), token_request(server, read_only)]
    for response in answers:
        assert response.status_code == 401
        assert response.json() == INVALID_CLIENT


def test_read_only_member_regains_tokens_with_write_access(
    server: Server, factory: Factory
) -> None:
    client = factory.client()
    factory.set_access(client, "read")
    assert token_request(server, client).status_code == 401
    factory.set_access(client, "write")
    assert token_request(server, client).status_code == 200


def test_no_client_authentication_is_invalid_client(server: Server) -> None:
    response = httpx.post(server.token_url, data={"grant_type": "client_credentials"})
    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT


def test_two_authentication_methods_is_invalid_request(server: Server, factory: Factory) -> None:
    client = factory.client()
    response = httpx.post(
        server.token_url,
        data={"grant_type": "client_credentials", "client_secret": client.client_secret},
        auth=(client.client_id, client.client_secret),
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "Use only one client authentication method",
    }


def test_malformed_basic_header_is_invalid_client(server: Server) -> None:
    response = httpx.post(
        server.token_url,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="cardvault"'


def test_unsupported_grant_type(server: Server, factory: Factory) -> None:
    response = token_request(server, factory.client(), grant_type="password")
    assert response.status_code == 400
    assert response.json() == {
        "error": "unsupported_grant_type",
        "error_description": "Unsupported grant_type: password",
    }


def test_refresh_token_grant_is_unauthorized_client(server: Server, factory: Factory) -> None:
    response = token_request(server, factory.client(), grant_type="refresh_token")
    assert response.status_code == 400
    assert response.json() == {
        "error": "unauthorized_client",
        "error_description": (
            "Service accounts get no refresh tokens; ask again with client_credentials"
        ),
    }


def test_unknown_realm_is_404(server: Server, factory: Factory) -> None:
    client = factory.client()
    response = httpx.post(
        f"{server.url}/auth/realms/other/protocol/openid-connect/token",
        data={
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "grant_type": "client_credentials",
        },
    )
    assert response.status_code == 404
    assert response.json() == {"error": "Realm does not exist"}


def test_get_on_the_token_endpoint_is_405(server: Server) -> None:
    assert httpx.get(server.token_url).status_code == 405


def _audit(factory: Factory, actor_id: str) -> list[AuditEvent]:
    with factory.db.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.actor_id == actor_id).order_by(AuditEvent.id)
            )
        )


def test_issues_and_refusals_are_audited_without_secrets(server: Server, factory: Factory) -> None:
    client = factory.client()
    access_token(server, client)
    httpx.post(
        server.token_url,
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, "cvs_wrong-secret"),
    )
    deadline = time.monotonic() + 3
    while len(records := _audit(factory, client.client_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    issued, refused = records[0], records[1]
    assert (issued.action, issued.outcome, issued.org_id) == (
        "token.issue",
        "success",
        client.org_id,
    )
    assert issued.source_ip == "127.0.0.1"
    assert issued.target_type == "access_token" and issued.target_id
    assert (refused.action, refused.outcome) == ("token.issue", "failure")
    assert refused.reason == "invalid_client: wrong secret"
    assert refused.source_ip == "127.0.0.1"
    for record in records:
        text = repr(vars(record))
        assert client.client_secret not in text and "cvs_wrong-secret" not in text


def test_last_used_is_recorded(server: Server, factory: Factory) -> None:
    client = factory.client()

    def last_used() -> object:
        with factory.db.sessions() as session:
            return session.scalar(
                select(ServiceAccount.last_used_at).where(
                    ServiceAccount.client_id == client.client_id
                )
            )

    assert last_used() is None
    access_token(server, client)
    deadline = time.monotonic() + 3
    while last_used() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    used = last_used()
    assert isinstance(used, dt.datetime)
    assert abs((dt.datetime.now(dt.UTC) - used).total_seconds()) < 5
