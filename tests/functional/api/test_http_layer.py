"""The one HTTP layer: every route is in the document and answers as it says, every
refusal of every route is the documented body, and every answer carries its request id."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.schemas import BaseSchema

from cardvault.accounts.scopes import ALL_SCOPES
from cardvault.app import openapi_document, route_table
from cardvault.settings import Settings
from tests.factories import Factory
from tests.functional.api.test_openapi import check
from tests.functional.oauth.helpers import access_token
from tests.servers import Server

MADE_ID = r"[0-9a-f]{16}-[0-9a-f]+"  # a request id the service made: process, counter


@pytest.fixture(scope="module")
def schema(server: Server) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method.upper(), operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if "oauth" not in operation.get("tags", [])
    ]


def _url(server: Server, path: str) -> str:
    """The path with its parameters filled with ids that name nothing."""
    return server.url + re.sub(r"\{[a-z_]+\}", "nothing_here", path)


def test_the_route_table_and_the_document_name_the_same_operations(tmp_path: Any) -> None:
    """One source: the document describes exactly the routes the layer answers."""
    settings = Settings(data_dir=tmp_path)
    document = openapi_document(settings)
    documented = {(path, method) for path, method, _ in _operations(document)}
    table = {(r.path, r.method) for r in route_table(settings, lambda: None) if r.document}
    assert table == documented
    oauth = {(r.path, r.method) for r in route_table(settings, lambda: None) if r.style == "oauth"}
    assert {(p, m.upper()) for p, item in document["paths"].items() for m in item} == (
        table | oauth
    )


def test_every_refusal_of_every_operation_is_the_documented_body(
    server: Server, factory: Factory, schema: BaseSchema
) -> None:
    """Each operation, called without a token, with a token lacking its scope, and with
    every scope but ids that name nothing and an empty body: a 4xx (only a listing, or
    ``/whoami``, may answer 200 to a token), documented."""
    document = httpx.get(f"{server.url}/openapi.json").json()
    narrow = factory.client(scopes=["vaults:read"])  # none of the vault API's
    wide = factory.client(scopes=list(ALL_SCOPES))
    callers = {
        "none": {},
        "narrow": {"Authorization": f"Bearer {access_token(server, narrow)}"},
        "wide": {"Authorization": f"Bearer {access_token(server, wide)}"},
    }
    operations = _operations(document)
    assert len(operations) >= 35
    for path, method, operation in operations:
        for name, headers in callers.items():
            body = {} if "requestBody" in operation else None
            answer = httpx.request(method, _url(server, path), json=body, headers=headers)
            where = f"{method} {path} ({name}): {answer.status_code} {answer.text[:200]}"
            given_scope = name == "wide" or path == "/whoami"  # any token may ask who it is
            refusal = name == "none" or not given_scope or "{" in path or body is not None
            assert (400 <= answer.status_code < 500) if refusal else answer.is_success, where
            if refusal:
                assert answer.json()["errors"][0]["status"] == answer.status_code, where
            check(schema, path, answer)


def test_every_answer_carries_its_request_id(server: Server, factory: Factory) -> None:
    token = access_token(server, factory.client())
    bearer = {"Authorization": f"Bearer {token}"}
    requests = [
        ("GET", "/cards", bearer),  # a vault route
        ("GET", "/cards", {}),  # its refusal
        ("GET", f"/realms/{server.realm}/protocol/openid-connect/certs", {}),  # OAuth
        ("GET", "/organizations/nothing/vaults", bearer),  # the management API
        ("GET", "/healthz", {}),
        ("GET", "/no/such/path", {}),
        ("GET", "/dashboard/signin", {}),
    ]
    made_ids: list[str] = []
    for method, path, headers in requests:
        given = httpx.request(
            method, server.url + path, headers={**headers, "X-Request-Id": "req-42.a:b"}
        )
        assert given.headers["x-request-id"] == "req-42.a:b", path
        made = httpx.request(method, server.url + path, headers=headers)
        assert re.fullmatch(MADE_ID, made.headers["x-request-id"]), path
        made_ids.append(made.headers["x-request-id"])
        for odd_id in ("a b<script>", "4111111111111111"):  # not sane; a card number
            odd = httpx.request(
                method, server.url + path, headers={**headers, "X-Request-Id": odd_id}
            )
            assert re.fullmatch(MADE_ID, odd.headers["x-request-id"]), path
            made_ids.append(odd.headers["x-request-id"])
    assert len(set(made_ids)) == len(made_ids)  # a new id for every request


def test_a_wrong_method_on_a_route_is_a_405_with_allow(server: Server) -> None:
    answer = httpx.put(f"{server.url}/cards")
    assert answer.status_code == 405
    assert set(answer.headers["allow"].split(", ")) == {"GET", "POST"}
    assert answer.json()["errors"][0]["code"] == "method-not-allowed"
    token_url = f"{server.url}/realms/{server.realm}/protocol/openid-connect/token"
    oauth = httpx.get(token_url)
    assert (oauth.status_code, oauth.json()["error"]) == (405, "method_not_allowed")


def test_a_body_that_is_not_json_is_a_415(server: Server, factory: Factory) -> None:
    token = access_token(server, factory.client())
    answer = httpx.post(
        f"{server.url}/cards",
        content=b"pan=4111111111111111",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
    )
    assert answer.status_code == 415
    assert answer.json()["errors"][0]["code"] == "unsupported-media-type"
