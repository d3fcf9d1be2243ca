"""The input layer over HTTP: every front (FastAPI, the fast path, the OAuth routes)
refuses bad input with a clear 4xx, never a 500, and never echoes a card number."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cardvault.crypto.pan import find_pan
from cardvault.store.paging import KEY_LABEL, MAC_SIZE
from tests.factories import Client, Factory
from tests.functional.api.test_cards import random_pan
from tests.functional.dashboard.helpers import admin as dashboard_admin
from tests.functional.oauth.helpers import access_token
from tests.servers import Server

PAN = "4242424242424242"
MASKED = "424242…4242"
NEXT_YEAR = dt.date.today().year + 1
VAULT_SCOPES = [
    "cards:write",
    "network-tokens:write",
    "webhooks:write",
]


class Caller:
    def __init__(self, server: Server, client: Client) -> None:
        self.server, self.client = server, client
        self.headers = {"Authorization": f"Bearer {access_token(server, client)}"}

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return httpx.request(method, self.server.url + path, headers=headers, **kwargs)

    def raw(self, method: str, path: str, body: bytes, **headers: str) -> httpx.Response:
        headers = {"Content-Type": "application/json", **headers}
        return self.call(method, path, content=body, headers=headers)


@pytest.fixture(scope="module")
def vault(server: Server, factory: Factory) -> Caller:
    return Caller(server, factory.client(scopes=VAULT_SCOPES))


@pytest.fixture(scope="module")
def org_admin(server: Server, factory: Factory) -> Caller:
    return Caller(server, factory.client(scopes=["organization:admin"]))


@pytest.fixture(autouse=True)
def clean_log(server: Server) -> Iterator[None]:
    """After each test: no traceback and no card number in the server's log."""
    yield
    log = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
    assert "Traceback" not in log
    assert PAN not in log and "4242-4242-4242-4242" not in log


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert PAN not in response.text
    (error,) = response.json()["errors"]
    assert (error["status"], error["code"]) == (status, code)
    return dict(error)


def card(**extra: object) -> dict[str, object]:
    return {"pan": random_pan(), "exp_month": 7, "exp_year": NEXT_YEAR, **extra}


def json_bytes(value: object) -> bytes:
    return json.dumps(value).encode()


# ------------------------------------------------------------------ lone surrogates


SURROGATE_BODIES = [
    (
        "POST",
        "/cards",
        b'{"pan":"4000056655665556","exp_month":7,"exp_year":2099,'
        b'"holder_info":{"name":"Ada \\ud800"}}',
    ),
    ("POST", "/network-tokens", b'{"pan_alias":"\\ud800"}'),  # an alias, fast path
    ("POST", "/webhooks", b'{"url":"https://example.com/h","events":["\\udc00"]}'),  # event
    ("PATCH", "/cards/card_x", b'{"holder_info":{"email":"\\udfff"}}'),
    ("POST", "/cards", b'{"\\ud800":1}'),  # in a key
]


@pytest.mark.parametrize(("method", "path", "body"), SURROGATE_BODIES)
def test_a_lone_surrogate_in_json_is_400_invalid_encoding(
    vault: Caller, method: str, path: str, body: bytes
) -> None:
    refused(vault.raw(method, path, body), 400, "invalid-encoding")


def test_a_lone_surrogate_in_a_vault_id_is_400(org_admin: Caller) -> None:
    path = f"/organizations/{org_admin.client.org_id}/service-accounts"
    body = b'{"name":"calm","scopes":["cards:write"],"vault_ids":["\\ud800"]}'
    refused(org_admin.raw("POST", path, body), 400, "invalid-encoding")


@pytest.mark.parametrize(
    "path",
    [
        "/cards/%ED%A0%80",  # UTF-8 of a surrogate: FastAPI route and fast path
        "/network-tokens/%ED%A0%80",
        "/network-tokens/%FF",
        "/cards/card%00x",
        "/cards?cursor=%ED%A0%80",
        "/events?after=%ED%A0%80",
        "/network-tokens?state=%0A",
    ],
)
def test_bad_text_in_path_or_query_is_400_invalid_encoding(vault: Caller, path: str) -> None:
    response = httpx.get(vault.server.url + path, headers=vault.headers)
    refused(response, 400, "invalid-encoding")


def test_bad_utf8_in_a_body_is_400(vault: Caller) -> None:
    refused(vault.raw("POST", "/cards", b'{"pan":"\xff"}'), 400, "invalid-encoding")


# ------------------------------------------------------------------ JSON structure


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/cards", b'{"pan":"4000056655665556","pan":"4000056655665556","exp_month":7}'),
        (
            "/cards",
            b'{"pan":"x","exp_month":7,"exp_year":2099,"holder_info":{"name":"a","name":"b"}}',
        ),
        ("/network-tokens", b'{"pan_alias":"a","pan_alias":"b"}'),
        ("/webhooks", b'{"url":"https://example.com","events":[],"events":[]}'),
    ],
)
def test_a_repeated_key_is_400_duplicate_key(vault: Caller, path: str, body: bytes) -> None:
    error = refused(vault.raw("POST", path, body), 400, "duplicate-key")
    assert "is repeated" in error["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 40 + b"]" * 40,  # deeper than allowed
        b"[" * 30_000 + b"]" * 30_000,  # deeper than the parser goes
        b'{"pan":NaN}',
        b'{"pan":',
        b'\xef\xbb\xbf{"pan":"x"}',  # a byte-order mark
    ],
)
def test_malformed_json_is_400_invalid_json(vault: Caller, body: bytes) -> None:
    refused(vault.raw("POST", "/cards", body), 400, "invalid-json")


def test_a_body_too_large_is_413(vault: Caller) -> None:
    body = json_bytes({"pan": "x", "pad": "y" * 70_000})
    refused(vault.raw("POST", "/cards", body), 413, "payload-too-large")


# ------------------------------------------------------------------ numbers


@pytest.mark.parametrize("number", ["1" + "0" * 30, "1e400", "-1" + "0" * 20, "9" * 5000])
def test_numbers_beyond_the_json_range_are_422(vault: Caller, number: str) -> None:
    body = f'{{"pan":"x","exp_month":7,"exp_year":{number}}}'.encode()
    error = refused(vault.raw("POST", "/cards", body), 422, "invalid-format")
    assert "numbers must be finite" in error["detail"]


BIG = 10**15  # within JSON's range: each field's own bound refuses it


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/cards", {"pan": "x", "exp_month": 7, "exp_year": BIG}, "exp_year"),
        ("POST", "/cards", {"pan": "x", "exp_month": BIG, "exp_year": 2030}, "exp_month"),
        ("PATCH", "/cards/card_x", {"exp_month": BIG, "exp_year": 2030}, "exp_month"),
        ("POST", "/network-tokens", {"pan_alias": "a", "exp_year": BIG}, "exp_year"),
        ("POST", "/network-tokens", {"pan_alias": "a", "exp_month": "²"}, "exp_month"),
        ("POST", "/webhooks/whk_x/rotate-secret", {"grace_seconds": BIG}, "grace_seconds"),
    ],
)
def test_vault_numbers_are_bounded_per_field(
    vault: Caller, method: str, path: str, body: dict[str, object], field: str
) -> None:
    error = refused(vault.call(method, path, json=body), 422, "invalid-format")
    assert error["source"] == {"field": field}


@pytest.mark.parametrize(
    ("suffix", "body", "field"),
    [
        ("", {"name": "calm", "scopes": [], "access_token_lifespan": BIG}, "access_token_lifespan"),
        ("/sa_x/rotate-secret", {"grace_period": BIG}, "grace_period"),
        ("/sa_x/rotate-secret", {"grace_period": "²"}, "grace_period"),
    ],
)
def test_admin_numbers_are_bounded_per_field(
    org_admin: Caller, suffix: str, body: dict[str, object], field: str
) -> None:
    path = f"/organizations/{org_admin.client.org_id}/service-accounts{suffix}"
    error = refused(org_admin.call("POST", path, json=body), 422, "invalid-format")
    assert error["source"] == {"field": field}


@pytest.mark.parametrize("limit", ["1" + "0" * 30, "²", "-1", "0"])
@pytest.mark.parametrize("path", ["/cards", "/network-tokens", "/events"])
def test_query_numbers_are_bounded(vault: Caller, path: str, limit: str) -> None:
    response = vault.call("GET", path, params={"limit": limit})
    error = refused(response, 422, "invalid-format")
    assert error["source"] == {"field": "limit"}


def test_dashboard_numbers_are_bounded(server: Server) -> None:
    browser = dashboard_admin(server)
    for before in ("1" + "0" * 30, "²"):
        response = browser.http.get("/dashboard/audit", params={"before": before})
        assert response.status_code == 422, response.text
    for lifespan in ("²", "9" * 40):
        browser.open("/dashboard/service-accounts/new")
        response = browser.post(
            "/dashboard/service-accounts",
            {"name": "calm", "scopes": "cards:write", "vault": "", "lifespan": lifespan},
        )
        assert response.status_code == 400, response.text
        assert "access_token_lifespan" in response.text


# ------------------------------------------------------------------ card numbers


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/network-tokens/{PAN}"),  # fast path
        ("GET", f"/cards/{PAN}"),  # fast path
        ("GET", "/cards/4242-4242-4242-4242"),
        ("PATCH", f"/cards/{PAN}"),  # FastAPI
        ("DELETE", f"/network-tokens/{PAN}"),
        ("GET", f"/cards?cursor={PAN}"),
        ("GET", f"/events?after=x&note=card+{PAN}"),
    ],
)
def test_a_card_number_in_path_or_query_is_422_masked(
    vault: Caller, method: str, path: str
) -> None:
    error = refused(
        vault.call(method, path, json={} if method == "PATCH" else None), 422, "invalid-format"
    )
    assert MASKED in error["detail"]


@pytest.mark.parametrize(
    ("path", "body", "pointer"),
    [
        ("/cards", card(holder_info={"name": f"card {PAN}"}), "/holder_info/name"),
        (
            "/cards",
            card(holder_info={"billing_address": {"address2": PAN}}),
            "/holder_info/billing_address/address2",
        ),
        ("/cards", card(holder_info={"name": int(PAN)}), "/holder_info/name"),  # a number
        ("/network-tokens", {"card_id": PAN}, "/card_id"),  # fast path
        ("/network-tokens", {"pan_alias": "4242 4242 4242 4242"}, "/pan_alias"),
        ("/webhooks", {"url": f"https://example.com/h?c={PAN}", "events": ["x"]}, "/url"),
        ("/webhooks", {"url": "https://example.com/h", "events": [PAN]}, "/events/0"),
    ],
)
def test_a_card_number_where_none_belongs_is_422_masked(
    vault: Caller, path: str, body: dict[str, object], pointer: str
) -> None:
    error = refused(vault.call("POST", path, json=body), 422, "invalid-format")
    assert MASKED in error["detail"]
    assert error["source"] == {"pointer": pointer}


def test_a_card_number_is_accepted_in_the_pan_field(vault: Caller) -> None:
    response = vault.call("POST", "/cards", json=card())
    assert response.status_code == 201, response.text


def test_a_card_number_as_idempotency_key_is_422_masked(vault: Caller) -> None:
    for key in (PAN, "4242-4242-4242-4242"):
        response = vault.call("POST", "/cards", json=card(), headers={"Idempotency-Key": key})
        error = refused(response, 422, "invalid-format")
        assert MASKED in error["detail"] and error["source"] == {"header": "Idempotency-Key"}
    response = vault.call("POST", "/cards", json=card(), headers={"Idempotency-Key": "k" * 256})
    refused(response, 422, "invalid-format")


def test_a_uuid_idempotency_key_is_a_key_whatever_its_digits(vault: Caller) -> None:
    """About one random UUID in two hundred has groups of digits only that join into a
    Luhn-valid run; clients send UUIDs as keys, and a UUID is never a card number."""
    uuids = (str(uuid.uuid4()) for _ in range(100_000))
    looks_like_a_card = [key for key in uuids if find_pan(key) is not None][:3]
    assert looks_like_a_card
    for key in looks_like_a_card:
        body = card()
        first = vault.call("POST", "/cards", json=body, headers={"Idempotency-Key": key})
        again = vault.call("POST", "/cards", json=body, headers={"Idempotency-Key": key})
        assert first.status_code == 201, first.text
        assert (again.status_code, again.json()) == (201, first.json())  # replayed


def test_a_card_number_in_an_oauth_form_is_invalid_request_masked(server: Server) -> None:
    for form in (
        {"grant_type": "client_credentials", "client_id": PAN, "client_secret": "x"},
        {"grant_type": "client_credentials", "client_id": "a", "scope": f"x {PAN}"},
    ):
        response = httpx.post(server.token_url, data=form)
        assert response.status_code == 400
        body = response.json()
        assert body["error"] == "invalid_request" and MASKED in body["error_description"]
        assert PAN not in response.text


def test_a_control_character_in_an_oauth_form_is_invalid_request(server: Server) -> None:
    response = httpx.post(
        server.token_url,
        content=b"grant_type=client_credentials&client_id=a%00b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


# ------------------------------------------------------------------ cursors


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _sign(factory: Factory, listing: str, payload: bytes) -> str:
    key = factory.hasher.hash(KEY_LABEL)
    tag = hmac.new(key, listing.encode() + b"\n" + payload, hashlib.sha256).digest()
    return b64(payload + tag[:MAC_SIZE])


@pytest.mark.parametrize(
    "cursor",
    [
        b64(b"[" * 1000 + b"]" * 1000),  # deeply nested JSON
        b64(json.dumps({"t": "0001-01-01T00:00:00+00:00", "i": "x"}).encode()),  # old shape
        "%%%garbage%%%",
        "A" * 300,
        b64(bytes(range(256))),
    ],
)
@pytest.mark.parametrize("path", ["/cards", "/network-tokens"])
def test_crafted_cursors_are_400_invalid_cursor(vault: Caller, path: str, cursor: str) -> None:
    error = refused(vault.call("GET", path, params={"cursor": cursor}), 400, "invalid-cursor")
    assert error["source"] == {"parameter": "cursor"}


def test_a_well_signed_cursor_out_of_range_is_400(vault: Caller, factory: Factory) -> None:
    listing = f"cards:{vault.client.vault_ids[0]}"
    for payload in (b"1.card_x", b"-5.card_x", b"1747000000000000.card x"):
        cursor = _sign(factory, listing, payload)
        refused(vault.call("GET", "/cards", params={"cursor": cursor}), 400, "invalid-cursor")


def test_someone_elses_or_a_tampered_cursor_is_400(
    server: Server, vault: Caller, factory: Factory
) -> None:
    for _ in range(2):
        assert vault.call("POST", "/cards", json=card()).status_code == 201
    page = vault.call("GET", "/cards", params={"limit": 1}).json()
    cursor = page["next_cursor"]
    assert vault.call("GET", "/cards", params={"cursor": cursor}).status_code == 200
    other = Caller(server, factory.client(scopes=VAULT_SCOPES))
    refused(other.call("GET", "/cards", params={"cursor": cursor}), 400, "invalid-cursor")
    tampered = ("B" if cursor[0] == "A" else "A") + cursor[1:]
    refused(vault.call("GET", "/cards", params={"cursor": tampered}), 400, "invalid-cursor")


def test_admin_cursors_are_400_invalid_cursor(org_admin: Caller) -> None:
    path = f"/organizations/{org_admin.client.org_id}/service-accounts"
    response = org_admin.call("GET", path, params={"cursor": "not-a-cursor"})
    refused(response, 400, "invalid-cursor")


# ------------------------------------------------------------------ the document


def test_openapi_describes_the_error_envelope_on_every_operation(server: Server) -> None:
    document = httpx.get(f"{server.url}/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    envelope = schemas["Errors"]
    assert envelope["required"] == ["errors"]
    assert envelope["properties"]["errors"]["items"]["required"] == ["status", "code", "detail"]
    ref = {"$ref": "#/components/schemas/Errors"}
    # The authorization server's operations answer RFC 6749's errors instead.
    operations = [
        (path, method, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if op.get("tags") != ["oauth"]
    ]
    assert len(operations) > 20
    for path, method, op in operations:
        for status in ("400", "401", "403", "404", "422", "503"):
            answer = op["responses"][status]
            assert answer["content"]["application/json"]["schema"] == ref, (path, method, status)
        if method in ("post", "patch", "delete"):
            assert op["responses"]["409"]["content"]["application/json"]["schema"] == ref
