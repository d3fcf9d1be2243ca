"""`cardvault keys rotate`: tokens signed before, during and after a rotation verify."""

from __future__ import annotations

import json

import httpx

from tests.conftest import MakeServer
from tests.factories import Factory
from tests.functional.oauth.helpers import access_token, eventually, unverified, whoami
from tests.servers import Server

LIFESPAN = 20  # seconds; retired keys stay published for this long (+ leeway): the
# tokens signed before the rotation must outlive its DELAY on a loaded machine
DELAY = 5  # long enough to see the new key published but unused, even on a loaded machine


def _kids(server: Server) -> list[str]:
    certs = httpx.get(f"{server.issuer}/protocol/openid-connect/certs").json()
    return [key["kid"] for key in certs["keys"]]


def test_rotation_publishes_first_then_signs_then_retires(make_server: MakeServer) -> None:
    server = make_server(
        "sqlite",
        access_token_lifespan=LIFESPAN,
        access_token_lifespan_max=LIFESPAN,
        token_leeway=1,
    )
    factory = Factory(server)
    try:
        client = factory.client()
        (old_kid,) = _kids(server)
        before = access_token(server, client)
        assert unverified(before)[0]["kid"] == old_kid

        rotated = json.loads(server.cli("keys", "rotate", "--delay", str(DELAY)).stdout)
        new_kid = rotated["kid"]
        # Published at once (within a poll), before it signs anything.
        eventually(lambda: set(_kids(server)) == {old_kid, new_kid})
        during = access_token(server, client)
        assert unverified(during)[0]["kid"] == old_kid

        eventually(
            lambda: unverified(access_token(server, client))[0]["kid"] == new_kid,
            timeout=DELAY + 1,
        )
        after = access_token(server, client)
        for token in (before, during, after):
            assert whoami(server, token).status_code == 200

        # Once every token of the old key has expired, the old key leaves the set.
        eventually(lambda: _kids(server) == [new_kid], timeout=LIFESPAN + 4)
        assert whoami(server, access_token(server, client)).status_code == 200
        assert whoami(server, before).status_code == 401
    finally:
        factory.close()


def test_rotation_survives_a_restart(make_server: MakeServer) -> None:
    server = make_server("sqlite")
    factory = Factory(server)
    try:
        client = factory.client()
        token = access_token(server, client)
        server.cli("keys", "rotate", "--delay", "0")
        server.stop()
        server.start()
        assert whoami(server, token).status_code == 200
        assert unverified(access_token(server, client))[0]["kid"] != unverified(token)[0]["kid"]
    finally:
        factory.close()
