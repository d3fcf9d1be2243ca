"""``/openapi.json`` tells the truth: real answers of the server, errors included,
validate against the document (checked by schemathesis, as generated clients would)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.schemas import BaseSchema

from cardvault.api.oauth import PREFIXES, RFC8414_PREFIX, SUFFIXES
from cardvault.app import openapi_document
from cardvault.settings import Settings
from tests.factories import Client, Factory
from tests.functional.oauth.helpers import access_token
from tests.servers import Server

REALM_PATHS = [prefix + suffix for prefix in PREFIXES for suffix in SUFFIXES]


@pytest.fixture(scope="module")
def schema(server: Server) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def check(schema: BaseSchema, path: str, response: httpx.Response) -> None:
    """The answer matches the document: its status, content type and body."""
    operation = schema[path][response.request.method]
    response.request.read()  # a multipart upload is streamed; schemathesis reads it back
    assert operation.validate_response(response) is not False
    documented = operation.definition.raw["responses"][str(response.status_code)]
    media_type = response.headers.get("content-type", "").split(";")[0]
    assert set(documented.get("content", {})) == ({media_type} if response.content else set())


def basic(client_id: str, secret: str) -> dict[str, str]:
    pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def test_openapi_document_is_what_the_server_serves(server: Server) -> None:
    """The docs' API reference is made by ``openapi_document``, without a server."""
    settings = Settings(
        data_dir=server.data_dir, database_url=server.database_url, **server.settings
    )
    served = httpx.get(f"{server.url}/openapi.json").json()
    assert openapi_document(settings) == served


def test_every_path_of_the_oauth_front_is_documented(server: Server) -> None:
    document = httpx.get(f"{server.url}/openapi.json").json()
    paths = document["paths"]
    for path in [*REALM_PATHS, f"{RFC8414_PREFIX}/auth/realms/{{realm}}"]:
        suffix = path.removeprefix(PREFIXES[0]).removeprefix(PREFIXES[1])
        method = SUFFIXES.get(suffix, ("GET", "discovery"))[0].lower()
        operation = paths[path][method]
        (realm,) = operation["parameters"]
        assert (realm["name"], realm["schema"]["enum"]) == ("realm", [server.realm])
        assert operation["tags"] == ["oauth"]
    assert document["components"]["securitySchemes"]["clientBasic"]["scheme"] == "basic"


def test_oauth_answers_match_the_document(
    server: Server, factory: Factory, schema: BaseSchema
) -> None:
    client = factory.client()
    url = f"{server.url}/realms/{server.realm}/protocol/openid-connect"
    form = {"client_id": client.client_id, "client_secret": client.client_secret}
    token = httpx.post(f"{url}/token", data={**form, "grant_type": "client_credentials"})
    assert token.status_code == 200
    check(schema, "/realms/{realm}/protocol/openid-connect/token", token)
    wrong = httpx.post(
        f"{url}/token", data={"grant_type": "client_credentials"}, headers=basic("x", "y")
    )
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert wrong.headers["www-authenticate"].startswith("Basic ")
    check(schema, "/realms/{realm}/protocol/openid-connect/token", wrong)
    bad = httpx.post(f"{url}/token", data={**form, "grant_type": "password"})
    assert (bad.status_code, bad.json()["error"]) == (400, "unsupported_grant_type")
    check(schema, "/realms/{realm}/protocol/openid-connect/token", bad)

    bearer = token.json()["access_token"]
    sent: list[tuple[str, dict[str, str] | None]] = [
        ("token/introspect", {**form, "token": bearer}),
        ("revoke", {**form, "token": bearer}),
        ("auth/device", {"client_id": "cardvault-cli"}),
        ("auth/device", {"client_id": "other"}),
        ("certs", None),
    ]
    for suffix, data in sent:
        if data is None:
            answer = httpx.get(f"{url}/{suffix}")
        else:
            answer = httpx.post(f"{url}/{suffix}", data=data)
        assert answer.status_code == (400 if data == {"client_id": "other"} else 200)
        check(schema, f"/realms/{{realm}}/protocol/openid-connect/{suffix}", answer)
        if suffix == "revoke":
            assert answer.content == b""  # a revocation answers no body
    discovery = httpx.get(f"{server.url}{RFC8414_PREFIX}/auth/realms/{server.realm}")
    check(schema, f"{RFC8414_PREFIX}/auth/realms/{{realm}}", discovery)


def test_another_realm_is_a_documented_404(server: Server, schema: BaseSchema) -> None:
    answer = httpx.get(f"{server.url}/auth/realms/elsewhere/protocol/openid-connect/certs")
    assert (answer.status_code, answer.json()) == (404, {"error": "Realm does not exist"})
    check(schema, "/auth/realms/{realm}/protocol/openid-connect/certs", answer)


def test_api_operations_take_a_bearer_token(server: Server, schema: BaseSchema) -> None:
    document = httpx.get(f"{server.url}/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    api = [
        op
        for item in document["paths"].values()
        for op in item.values()
        if "oauth" not in op.get("tags", [])
    ]
    assert len(api) >= 35
    assert all(op["security"] == [{"bearer": []}] for op in api)
    refused = httpx.get(f"{server.url}/cards")
    assert refused.headers["www-authenticate"].startswith("Bearer ")
    check(schema, "/cards", refused)


def _bearer(server: Server, client: Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token(server, client)}"}


def test_enrolling_a_known_card_answers_the_documented_200(
    server: Server, factory: Factory, schema: BaseSchema
) -> None:
    headers = _bearer(server, factory.client())
    card = {"pan": "4111111111111111", "exp_month": 12, "exp_year": 2031}
    first = httpx.post(f"{server.url}/cards", json=card, headers=headers)
    again = httpx.post(f"{server.url}/cards", json=card, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    check(schema, "/cards", again)


def test_bulk_upload_and_results_are_documented(
    server: Server, factory: Factory, schema: BaseSchema
) -> None:
    document: dict[str, Any] = httpx.get(f"{server.url}/openapi.json").json()
    upload = document["paths"]["/network-tokens/bulk"]["post"]["requestBody"]["content"]
    assert upload["multipart/form-data"]["schema"]["required"] == ["file"]
    assert "text/csv" in upload
    headers = _bearer(server, factory.client(scopes=["cards:write", "network-tokens:write"]))
    job = httpx.post(
        f"{server.url}/network-tokens/bulk",
        files={"file": ("cards.csv", b"pan,exp_month,exp_year\n4111111111111111,12,2031\n")},
        headers=headers,
    )
    assert job.status_code == 202, job.text
    check(schema, "/network-tokens/bulk", job)
    status = httpx.get(f"{server.url}/network-tokens/bulk/{job.json()['id']}", headers=headers)
    check(schema, "/network-tokens/bulk/{job_id}", status)
    results = httpx.get(
        f"{server.url}/network-tokens/bulk/{job.json()['id']}/results", headers=headers
    )
    assert results.status_code == 200
    check(schema, "/network-tokens/bulk/{job_id}/results", results)
