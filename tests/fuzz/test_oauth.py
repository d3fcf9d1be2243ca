"""The OAuth endpoints, fuzzed through their forms on both backends.

The sweep of ``test_operations.py`` fuzzes them from the document like every other
operation, but its forms hold no real credentials, so it rarely gets past client
authentication. Here Hypothesis draws forms that mix real values (the fuzz account's
credentials and token, the grant types) with arbitrary names and text, sent with any
content type and sometimes a Basic header. Every answer must be a non-5xx; every
refusal the RFC 6749 §5.2 JSON shape ``{"error": <code>, "error_description":
<text>}``; and every answer of a documented operation must match ``/openapi.json``
(status, content type and body), checked by schemathesis.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import hypothesis
import pytest
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis.schemas import BaseSchema

from tests.fuzz.budget import TALLY, Budget
from tests.fuzz.conftest import Credentials
from tests.fuzz.harness import load_schema
from tests.servers import Server

# One worker runs the fuzz suites: they share a server per backend.
pytestmark = pytest.mark.xdist_group("fuzz")

POSTS = ("token", "token/introspect", "revoke", "auth/device")
GETS = ("certs",)
# RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 8628 §3.5, and the front's own 405.
ERRORS = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "unsupported_token_type",
    "slow_down",
    "authorization_pending",
    "access_denied",
    "expired_token",
    "method_not_allowed",
}
FIELDS = (
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "token",
    "token_type_hint",
    "device_code",
    "audience",
)
CONTENT_TYPES = (
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/json",
    "multipart/form-data; boundary=x",
    "text/plain",
    "",
)


@st.composite
def requests_(draw: st.DrawFn, real: dict[str, str]) -> dict[str, Any]:
    known = st.sampled_from(FIELDS)
    value = st.one_of(
        st.sampled_from(sorted(real.values())),
        st.sampled_from(["client_credentials", "urn:ietf:params:oauth:grant-type:device_code"]),
        st.text(max_size=80),
    )
    form = draw(st.lists(st.tuples(st.one_of(known, st.text(max_size=20)), value), max_size=8))
    body: bytes
    if draw(st.booleans()):
        body = httpx.QueryParams(form).__str__().encode()
    else:
        body = draw(st.binary(max_size=200))
    headers = {"content-type": draw(st.sampled_from(CONTENT_TYPES))}
    if draw(st.integers(0, 4)) == 0:
        pair = f"{draw(st.one_of(st.just(real['client_id']), st.text(max_size=20)))}:"
        pair += draw(st.one_of(st.just(real["client_secret"]), st.text(max_size=20)))
        headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    return {
        "path": draw(st.sampled_from(POSTS)),
        "prefix": draw(st.sampled_from(("/auth/realms", "/realms"))),
        "method": draw(st.sampled_from(("POST", "POST", "POST", "GET", "PUT"))),
        "body": body,
        "headers": headers,
    }


def check_answer(response: httpx.Response, request: dict[str, Any]) -> None:
    where = f"{request['method']} {request['path']} {request['headers']} {request['body']!r}"
    assert response.status_code < 500, f"{response.status_code} for {where}: {response.text}"
    if response.status_code == 200:
        return
    assert response.headers["content-type"] == "application/json", where
    body = response.json()
    assert body.get("error") in ERRORS, f"{where}: {body}"
    assert isinstance(body.get("error_description", ""), str), f"{where}: {body}"
    assert set(body) <= {"error", "error_description"}, f"{where}: {body}"
    if response.status_code == 401 and "authorization" in request["headers"]:
        assert response.headers["www-authenticate"].startswith("Basic"), where


def check_documented(schema: BaseSchema, response: httpx.Response, request: dict[str, Any]) -> None:
    """A documented operation's answer: a documented status, and the body the document
    gives for it (schemathesis raises its failures)."""
    path = f"{request['prefix']}/{{realm}}/protocol/openid-connect/{request['path']}"
    if request["method"].lower() not in list(schema[path]):
        return  # the front's 405 for a method it does not take
    operation = schema[path][request["method"]]
    documented = operation.definition.raw["responses"]
    assert str(response.status_code) in documented, f"{response.status_code} for {request}"
    operation.validate_response(response)


def test_oauth_forms(fuzz_server: Server, credentials: Credentials) -> None:
    schema = load_schema(fuzz_server)
    bearer = credentials.headers()["Authorization"].split(" ", 1)[1]
    real = {
        "client_id": credentials.client_id,
        "client_secret": credentials._secret,
        "token": bearer,
    }
    realm = fuzz_server.realm
    budget = Budget.from_env("oauth")
    with httpx.Client(base_url=fuzz_server.url, timeout=60) as client:
        for path in (*GETS, ".well-known/openid-configuration"):
            for prefix in ("/auth/realms", "/realms"):
                url = f"{prefix}/{realm}/{'protocol/openid-connect/' if path in GETS else ''}{path}"
                assert client.get(url).status_code == 200, url

        def send(request: dict[str, Any]) -> None:
            TALLY.add("oauth")
            url = f"{request['prefix']}/{realm}/protocol/openid-connect/{request['path']}"
            response = client.request(
                request["method"], url, content=request["body"], headers=request["headers"]
            )
            check_answer(response, request)
            check_documented(schema, response, request)

        for round_no in budget.rounds():
            settings = hypothesis.settings(
                max_examples=budget.examples * 40,
                deadline=None,
                database=None,
                derandomize=round_no == 0,
                suppress_health_check=list(HealthCheck),
                print_blob=False,
            )
            settings(hypothesis.given(request=requests_(real))(send))()
