"""Throttling of failed client authentication (README "Throttling")."""

from __future__ import annotations

import httpx

from tests.conftest import MakeServer
from tests.factories import Client, Factory
from tests.servers import Server


def _attempt(server: Server, client: Client, secret: str, source: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport) as http:
        return http.post(
            server.token_url,
            data={"grant_type": "client_credentials"},
            auth=(client.client_id, secret),
        )


def test_guessing_is_throttled_but_the_owner_keeps_working(make_server: MakeServer) -> None:
    server = make_server(
        "sqlite",
        throttle_client_ip_failures=3,
        throttle_ip_failures=5,
        throttle_client_failures=4,
    )
    factory = Factory(server)
    try:
        victim = factory.client()
        owner, attacker = "127.0.0.1", "127.0.0.2"
        assert _attempt(server, victim, victim.client_secret, owner).status_code == 200

        answers = [_attempt(server, victim, "cvs_guess", attacker) for _ in range(4)]
        assert [r.status_code for r in answers] == [401, 401, 401, 429]
        throttled = answers[-1]
        assert throttled.json()["error"] == "slow_down"
        assert 1 <= int(throttled.headers["retry-after"]) <= 60
        # Even the right secret is refused from the throttled address: nothing is learnt.
        assert _attempt(server, victim, victim.client_secret, attacker).status_code == 429

        # More failures from a third address push the client over its global limit ...
        third = "127.0.0.3"
        assert _attempt(server, victim, "cvs_guess", third).status_code == 401
        assert _attempt(server, victim, victim.client_secret, third).status_code == 429
        # ... but the owner, known good at its own address, is not locked out.
        assert _attempt(server, victim, victim.client_secret, owner).status_code == 200
    finally:
        factory.close()


def test_spraying_many_client_ids_from_one_address_is_throttled(make_server: MakeServer) -> None:
    server = make_server("sqlite", throttle_ip_failures=5)
    factory = Factory(server)
    try:
        sprayer = "127.0.0.4"
        statuses = [
            _attempt(server, factory.client(), "cvs_guess", sprayer).status_code for _ in range(6)
        ]
        assert statuses == [401] * 5 + [429]
        fresh = factory.client()
        assert _attempt(server, fresh, fresh.client_secret, "127.0.0.5").status_code == 200
    finally:
        factory.close()
