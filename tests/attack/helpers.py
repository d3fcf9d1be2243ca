"""Attackers' tools: requests from a chosen loopback address, and the audit trail."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
from sqlalchemy import select

from cardvault.store.models import AuditEvent
from tests.factories import Factory


def fresh_address() -> str:
    """A loopback address of its own (127.0.0.0/8 all reaches this machine), so that
    what the server remembers per source (audit windows, throttles) starts clean."""
    return f"127.{secrets.randbelow(250) + 2}.{secrets.randbelow(256)}.{secrets.randbelow(250) + 2}"


def client_from(address: str, base_url: str = "", **kwargs: Any) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=base_url, transport=transport, timeout=15, **kwargs)


def audit_rows(factory: Factory, **where: Any) -> list[AuditEvent]:
    with factory.db.sessions() as session:
        query = select(AuditEvent).order_by(AuditEvent.id)
        for name, value in where.items():
            query = query.where(getattr(AuditEvent, name) == value)
        return list(session.scalars(query).all())


def wait_for_audit(
    factory: Factory, count: int = 1, timeout: float = 10.0, **where: Any
) -> list[AuditEvent]:
    """At least ``count`` audit records matching ``where`` (the server writes them in
    batches every 50 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        found = audit_rows(factory, **where)
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) >= count, f"{len(found)} of {count} audit records for {where}"
            return found
        time.sleep(0.05)


def error_code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["code"])
