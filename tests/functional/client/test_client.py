"""`cardvault.client.Client`: token caching, renewal before expiry and after a 401."""

from __future__ import annotations

import time

import httpx
import pytest

from cardvault.client import CardvaultError, Client
from tests.conftest import MakeServer
from tests.factories import Factory
from tests.functional.oauth.helpers import unverified
from tests.servers import Server


class CountingTransport(httpx.HTTPTransport):
    """A real transport that counts the token requests it carries."""

    def __init__(self) -> None:
        super().__init__()
        self.token_requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            self.token_requests += 1
        return super().handle_request(request)


def test_token_is_cached_and_renewed_before_expiry(make_server: MakeServer) -> None:
    # Tokens live 10 s here; the client renews with 5 s left.
    server = make_server("sqlite", access_token_lifespan=10, access_token_lifespan_max=10)
    factory = Factory(server)
    try:
        account = factory.client()
        transport = CountingTransport()
        with Client(
            server.url, account.client_id, account.client_secret, transport=transport
        ) as client:
            first = client.access_token()
            for _ in range(5):
                assert client.get("/whoami")["client_id"] == account.client_id
            assert transport.token_requests == 1
            time.sleep(5.5)
            assert client.get("/whoami")["client_id"] == account.client_id
            assert transport.token_requests == 2
            assert unverified(client.access_token())[1]["jti"] != unverified(first)[1]["jti"]
    finally:
        factory.close()


def test_a_401_fetches_a_new_token_and_retries(server: Server, factory: Factory) -> None:
    account = factory.client()
    transport = CountingTransport()
    with Client(
        server.url, account.client_id, account.client_secret, transport=transport
    ) as client:
        token = client.access_token()
        revoked = httpx.post(
            f"{server.issuer}/protocol/openid-connect/revoke",
            data={"token": token},
            auth=(account.client_id, account.client_secret),
        )
        assert revoked.status_code == 200
        time.sleep(0.5)  # the revocation reaches the worker
        assert client.get("/whoami")["client_id"] == account.client_id
        assert transport.token_requests == 2


def test_errors_carry_status_and_code(server: Server, factory: Factory) -> None:
    account = factory.client()
    with (
        Client(server.url, account.client_id, account.client_secret) as client,
        pytest.raises(CardvaultError) as raised,
    ):
        client.get(f"/organizations/{account.org_id}/vaults")
    assert (raised.value.status, raised.value.code) == (403, "insufficient-scope")
    with (
        Client(server.url, account.client_id, "cvs_wrong") as client,
        pytest.raises(CardvaultError) as raised,
    ):
        client.get("/whoami")
    assert (raised.value.status, raised.value.code) == (401, "invalid_client")
    with (
        Client("http://127.0.0.1:9", account.client_id, "x") as client,
        pytest.raises(CardvaultError) as raised,
    ):
        client.get("/whoami")
    assert raised.value.code == "unreachable"
