"""Revocation reaches every worker process within a second (DESIGN §1 step 5)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import BACKENDS, MakeServer
from tests.factories import Factory
from tests.functional.feeds.cluster import worker_lines
from tests.servers import Server

PROBES = 24  # fresh connections, spread by the kernel over both workers


def _statuses(server: Server, token: str) -> set[int]:
    statuses = set()
    for _ in range(PROBES):
        with httpx.Client() as fresh:
            response = fresh.get(
                f"{server.url}/whoami", headers={"Authorization": f"Bearer {token}"}
            )
            statuses.add(response.status_code)
    return statuses


def _token_status(server: Server, client_id: str, secret: str) -> int:
    with httpx.Client() as fresh:
        return fresh.post(
            server.token_url,
            data={
                "client_id": client_id,
                "client_secret": secret,
                "grant_type": "client_credentials",
            },
        ).status_code


def _revoke(server: Server, how: str, client_id: str) -> None:
    """Revoke through the management API, as the `cardvault-cli` account would."""
    creds = server.init["cli_credentials"]
    admin = httpx.post(
        server.token_url,
        data={**creds, "grant_type": "client_credentials"},
    ).json()["access_token"]
    base = f"{server.url}/organizations/{server.init['organization_id']}"
    member = f"{base}/members/{client_id}@cardvault.local"
    headers = {"Authorization": f"Bearer {admin}"}
    if how == "delete account":
        response = httpx.delete(f"{base}/service-accounts/{client_id}", headers=headers)
    elif how == "remove member":
        response = httpx.delete(member, headers=headers)
    else:
        response = httpx.patch(member, json={"access": "read"}, headers=headers)
    assert response.status_code in (200, 204), response.text


@pytest.mark.parametrize("how", ["delete account", "remove member", "lower access to read"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_revocation_reaches_every_worker(make_server: MakeServer, backend: str, how: str) -> None:
    server = make_server(backend, workers=2)
    factory = Factory(server)
    lines = worker_lines(server)  # a keep-alive line to each worker process
    try:
        client = factory.client(org_id=server.init["organization_id"])
        # Warm both workers: each has verified and cached the token.
        token = httpx.post(
            server.token_url,
            data={
                "client_id": client.client_id,
                "client_secret": client.client_secret,
                "grant_type": "client_credentials",
            },
        ).json()["access_token"]
        assert _statuses(server, token) == {200}
        assert {line.get("/whoami", token) for line in lines} == {200}

        _revoke(server, how, client.client_id)
        revoked_at = time.monotonic()
        # Tokens already issued stop working on every worker within a second: each
        # worker is asked on its own line, from the moment the revocation was answered.
        late = {line.pid for line in lines}
        while late and time.monotonic() - revoked_at <= 1.0:
            late = {
                line.pid for line in lines if line.pid in late and line.get("/whoami", token) != 401
            }
        assert not late, f"workers {sorted(late)} still accepted the token after 1 s"
        # The token endpoint refuses too, whichever worker answers (8 attempts stay
        # under the failure throttle of 10 a minute), and so does every fresh connection.
        refusals = {_token_status(server, client.client_id, client.client_secret) for _ in range(8)}
        assert refusals == {401}
        assert _statuses(server, token) == {401}
    finally:
        for line in lines:
            line.close()
        factory.close()
