"""Behind a trusted load balancer, the caller is the address it forwards."""

from __future__ import annotations

import time

import httpx
from sqlalchemy import select

from cardvault.store.models import AuditEvent
from tests.conftest import MakeServer
from tests.factories import Factory
from tests.servers import Server

CALLER, OTHER = "203.0.113.7", "198.51.100.20"


def _token(server: Server, client_id: str, secret: str, forwarded_for: str) -> httpx.Response:
    return httpx.post(
        server.token_url,
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        headers={"X-Forwarded-For": forwarded_for},
    )


def _sources(factory: Factory, actor_id: str, count: int) -> list[str | None]:
    """The audited source addresses of ``actor_id``'s first ``count`` records."""
    deadline = time.monotonic() + 5
    while True:
        with factory.db.sessions() as session:
            rows = list(
                session.scalars(
                    select(AuditEvent.source_ip)
                    .where(AuditEvent.actor_id == actor_id)
                    .order_by(AuditEvent.id)
                )
            )
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_the_audit_and_the_throttle_see_the_forwarded_caller(make_server: MakeServer) -> None:
    server = make_server("sqlite", trusted_proxies="127.0.0.1/32", throttle_ip_failures=3)
    factory = Factory(server)
    try:
        client = factory.client()
        # The balancer (127.0.0.1) forwards what it saw after what the client sent.
        assert (
            _token(server, client.client_id, client.client_secret, f"1.2.3.4, {CALLER}").status_code
            == 200
        )
        assert _sources(factory, client.client_id, 1) == [CALLER]

        # Failures count against the forwarded address, not the balancer's: one
        # caller is throttled, another behind the same balancer is not.
        statuses = [
            _token(server, f"cv-nobody-{n}", "cvs_wrong", CALLER).status_code for n in range(5)
        ]
        assert statuses[:3] == [401, 401, 401] and statuses[-1] == 429
        assert _token(server, client.client_id, client.client_secret, OTHER).status_code == 200
    finally:
        factory.close()


def test_without_trusted_proxies_the_header_is_anyones_and_ignored(
    server: Server, factory: Factory
) -> None:
    client = factory.client()
    assert _token(server, client.client_id, client.client_secret, CALLER).status_code == 200
    assert _sources(factory, client.client_id, 1) == ["127.0.0.1"]
