"""PostgreSQL out of reach mid-traffic: 503 ``unavailable`` with ``Retry-After`` on
every front within 5 s, never a 500 or a hang; back to normal without a restart."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.faults.conftest import Proxied
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.api.test_http_layer import MADE_ID
from tests.functional.oauth.helpers import access_token

DEADLINE = 5.0  # seconds an answer may take while the database is out of reach
SCOPES = [
    "cards:write",
    "cards:read",
    "network-tokens:write",
    "network-tokens:read",
    "vaults:write",
]
API_UNAVAILABLE = {
    "status": 503,
    "code": "unavailable",
    "detail": "The service cannot reach its database; try again shortly",
}


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    path: str
    kind: str  # "api", "oauth", "ready" or "page": the shape of a 503
    ok: tuple[int, ...]  # statuses once the database is back
    body: Callable[[], Any] | None = None  # a fresh JSON body for each request
    data: dict[str, str] | None = None
    headers: dict[str, str] | None = None


def _calls(proxied: Proxied) -> tuple[list[Call], dict[str, str]]:
    """One request per front and kind of route, with what they need made beforehand."""
    server = proxied.server
    client = proxied.factory.client(scopes=SCOPES)
    bearer = {"Authorization": f"Bearer {access_token(server, client)}"}
    card = _post(server.url + "/cards", _card_body(), bearer)
    token = _post(
        server.url + "/network-tokens",
        {"pan_alias": card["pan_alias"], "exp_month": 7, "exp_year": NEXT_YEAR},
        bearer,
    )
    form = {
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "grant_type": "client_credentials",
    }
    vaults = f"/organizations/{client.org_id}/vaults"
    sign_in = {"email": "nobody@example.com", "password": "x" * 12, "csrf_token": "t" * 24}
    calls = [
        Call(
            "token endpoint",
            "POST",
            server.token_url.removeprefix(server.url),
            "oauth",
            (200,),
            data=form,
        ),
        Call("fast GET /cards/{id}", "GET", f"/cards/{card['id']}", "api", (200,)),
        Call("fast POST /cards", "POST", "/cards", "api", (201,), body=_card_body),
        Call(
            "fast GET /network-tokens/{alias}",
            "GET",
            f"/network-tokens/{token['pan_alias']}",
            "api",
            (200,),
        ),
        Call(
            "fast POST /network-tokens",
            "POST",
            "/network-tokens",
            "api",
            (201,),
            body=lambda: (
                {
                    "card_id": _post(server.url + "/cards", _card_body(), bearer)["id"],
                    "exp_month": 7,
                    "exp_year": NEXT_YEAR,
                }
                if proxied.proxy.listening
                else {"card_id": card["id"], "exp_month": 7, "exp_year": NEXT_YEAR}
            ),
        ),
        Call("FastAPI GET /cards", "GET", "/cards", "api", (200,)),
        Call(
            "FastAPI PATCH /cards/{id}",
            "PATCH",
            f"/cards/{card['id']}",
            "api",
            (200,),
            body=lambda: {"holder_info": {"name": "Ada"}},
        ),
        Call("management GET vaults", "GET", vaults, "api", (200,)),
        Call(
            "management POST vaults",
            "POST",
            vaults,
            "api",
            (201,),
            body=lambda: {"name": f"v-{secrets.token_hex(4)}"},
        ),
        Call(
            "dashboard sign-in",
            "POST",
            "/dashboard/sign-in",
            "page",
            (401,),
            data=sign_in,
            headers={"Cookie": f"cardvault_form={'t' * 24}"},
        ),
        Call("readyz", "GET", "/readyz", "ready", (200,)),
    ]
    return calls, bearer


def _card_body() -> dict[str, object]:
    return {"pan": random_pan(), "exp_month": 7, "exp_year": NEXT_YEAR}


def _post(url: str, body: object, headers: dict[str, str]) -> dict[str, Any]:
    response = httpx.post(url, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def _send(proxied: Proxied, call: Call, bearer: dict[str, str]) -> tuple[httpx.Response, float]:
    headers = {**bearer, **(call.headers or {})}
    started = time.monotonic()
    response = httpx.request(
        call.method,
        proxied.server.url + call.path,
        json=call.body() if call.body else None,
        data=call.data,
        headers=headers,
        timeout=DEADLINE + 5,
    )
    return response, time.monotonic() - started


def _assert_unavailable(call: Call, response: httpx.Response, took: float) -> None:
    where = f"{call.name}: {response.status_code} {response.text[:300]}"
    assert response.status_code == 503, where
    assert took < DEADLINE, f"{call.name} took {took:.1f} s"
    assert int(response.headers["Retry-After"]) > 0, where
    if call.kind == "api":
        assert response.json() == {"errors": [API_UNAVAILABLE]}, where
    elif call.kind == "oauth":
        body = response.json()
        assert body["error"] == "temporarily_unavailable", where
        assert set(body) == {"error", "error_description"}, where
    elif call.kind == "ready":
        assert response.json()["status"] == "unavailable", where
    else:
        assert response.headers["content-type"].startswith("text/html"), where
        assert "Temporarily unavailable" in response.text, where


def _log_since(proxied: Proxied, offset: int) -> list[dict[str, Any]]:
    text = proxied.server.log_path.read_text(errors="replace")[offset:]
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_every_front_answers_503_while_postgresql_is_away_and_recovers(proxied: Proxied) -> None:
    calls, bearer = _calls(proxied)
    for call in calls:  # all of them work first
        response, _ = _send(proxied, call, bearer)
        assert response.status_code in call.ok, f"{call.name}: {response.text}"
    log_offset = proxied.server.log_path.stat().st_size

    proxied.proxy.cut()
    for _round in range(2):  # pooled connections reset, then refused new ones
        for call in calls:
            _assert_unavailable(call, *_send(proxied, call, bearer))
    assert httpx.get(proxied.server.url + "/healthz").status_code == 200  # alive all along

    lines = _log_since(proxied, log_offset)
    errors = [line for line in lines if line["level"] in ("error", "critical")]
    assert not errors, errors[:3]
    assert not [line for line in lines if "exception" in line], "a traceback was logged"
    assert any(line["logger"] == "cardvault.unavailable" for line in lines)
    refused = [line for line in lines if line["message"].startswith("database unavailable on ")]
    assert refused
    assert all(re.fullmatch(MADE_ID, line.get("request_id", "")) for line in refused)

    proxied.proxy.restore()
    deadline = time.monotonic() + 15
    while httpx.get(proxied.server.url + "/readyz").status_code != 200:
        assert time.monotonic() < deadline, "not ready again after the database came back"
        time.sleep(0.1)
    for call in calls:
        response, _ = _send(proxied, call, bearer)
        assert response.status_code in call.ok, f"{call.name}: {response.text}"
    assert proxied.server.process is not None and proxied.server.process.poll() is None
