"""/webhooks: endpoints, secrets shown once, rotation, scopes, vault isolation, and
the refusal of non-public URLs."""

from __future__ import annotations

import httpx
import pytest

from cardvault.webhooks import InvalidSignature, verify
from tests.factories import Factory
from tests.functional.api.test_cards import random_pan
from tests.functional.oauth.helpers import access_token
from tests.functional.webhooks.conftest import Receiver, Vault
from tests.servers import Server


def error_code(response: object) -> str:
    return str(response.json()["errors"][0]["code"])  # type: ignore[attr-defined]


def test_the_secret_is_shown_once(vault: Vault, receiver: Receiver) -> None:
    created = vault.subscribe(receiver.url, ["network_token.activated"])
    assert created["secret"].startswith("cvwh_") and len(created["secret"]) > 40
    assert created["events"] == ["network_token.activated"]
    listed = vault.call("GET", "/webhooks").json()["data"]
    assert [e["id"] for e in listed] == [created["id"]]
    shown = vault.call("GET", f"/webhooks/{created['id']}").json()
    assert "secret" not in listed[0] and "secret" not in shown
    assert shown["url"] == receiver.url


def test_rotation_signs_with_the_new_secret(vault: Vault, receiver: Receiver) -> None:
    endpoint = vault.subscribe(receiver.url)
    rotated = vault.call("POST", f"/webhooks/{endpoint['id']}/rotate-secret").json()
    assert rotated["secret"] != endpoint["secret"]
    vault.provision(vault.card(random_pan()))
    receiver.wait_for(1)
    request = receiver.requests[0]
    header = request.headers["Cardvault-Signature"]
    verify(request.body, header, rotated["secret"], now=request.at)
    with pytest.raises(InvalidSignature):
        verify(request.body, header, endpoint["secret"], now=request.at)

    grace = vault.call(
        "POST", f"/webhooks/{endpoint['id']}/rotate-secret", {"grace_seconds": 3600}
    ).json()
    assert "previous_secret_expires_at" in grace
    vault.provision(vault.card(random_pan()))
    receiver.wait_for(2)
    last = receiver.requests[-1]
    header = last.headers["Cardvault-Signature"]
    assert header.count("v0=") == 2  # old and new secret both sign during the grace
    verify(last.body, header, grace["secret"], now=last.at)
    verify(last.body, header, rotated["secret"], now=last.at)


def test_endpoints_of_other_vaults_do_not_exist(
    hook_server: Server, hook_factory: Factory, vault: Vault, receiver: Receiver
) -> None:
    endpoint = vault.subscribe(receiver.url)
    stranger = Vault(hook_server, hook_factory)
    for method, path in [
        ("GET", f"/webhooks/{endpoint['id']}"),
        ("DELETE", f"/webhooks/{endpoint['id']}"),
        ("GET", f"/webhooks/{endpoint['id']}/deliveries"),
        ("POST", f"/webhooks/{endpoint['id']}/rotate-secret"),
    ]:
        response = stranger.call(method, path)
        assert response.status_code == 404 and error_code(response) == "not-found"
    assert stranger.call("GET", "/webhooks").json()["data"] == []
    assert stranger.call("GET", "/events").json()["data"] == []
    assert vault.call("DELETE", f"/webhooks/{endpoint['id']}").status_code == 204
    assert vault.call("GET", f"/webhooks/{endpoint['id']}").status_code == 404


def test_scopes(hook_server: Server, hook_factory: Factory, receiver: Receiver) -> None:
    reader = hook_factory.client(scopes=["webhooks:read"])
    headers = {"Authorization": f"Bearer {access_token(hook_server, reader)}"}
    url = f"{hook_server.url}/webhooks"
    body = {"url": receiver.url, "events": ["card.updated"]}
    refused = httpx.post(url, json=body, headers=headers)
    assert refused.status_code == 403 and error_code(refused) == "insufficient-scope"
    assert httpx.get(url, headers=headers).status_code == 200
    assert httpx.get(f"{hook_server.url}/events", headers=headers).status_code == 200
    cards_only = hook_factory.client(scopes=["cards:write"])
    headers = {"Authorization": f"Bearer {access_token(hook_server, cards_only)}"}
    assert httpx.get(url, headers=headers).status_code == 403


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "http://127.0.0.1:9/hooks", "events": ["card.updated"]}, "url-not-allowed"),
        ({"url": "http://localhost/hooks", "events": ["card.updated"]}, "url-not-allowed"),
        ({"url": "http://10.1.2.3/hooks", "events": ["card.updated"]}, "url-not-allowed"),
        ({"url": "http://169.254.169.254/latest", "events": ["card.updated"]}, "url-not-allowed"),
        ({"url": "http://[::1]/hooks", "events": ["card.updated"]}, "url-not-allowed"),
        ({"url": "http://[fd00::1]/hooks", "events": ["card.updated"]}, "url-not-allowed"),
        ({"url": "ftp://93.184.215.14/hooks", "events": ["card.updated"]}, "url-not-allowed"),
        ({"url": "http://u:p@93.184.215.14/", "events": ["card.updated"]}, "url-not-allowed"),
        ({"url": "http://93.184.215.14/", "events": ["card.created"]}, "invalid-format"),
        ({"url": "http://93.184.215.14/", "events": []}, "invalid-format"),
        ({"url": "http://93.184.215.14/"}, "required-fields-missing"),
    ],
)
def test_bad_endpoints_are_refused_and_nothing_is_written(
    server: Server, factory: Factory, body: dict[str, object], code: str
) -> None:
    """The shared server runs with the default settings: only public addresses."""
    vault = Vault(server, factory)
    response = vault.call("POST", "/webhooks", body)
    assert response.status_code == 422, response.text
    assert error_code(response) == code
    assert "secret" not in response.text
    assert vault.call("GET", "/webhooks").json()["data"] == []
