"""Managing the webhook endpoints of the caller's vault: create, list, read, delete,
rotate the signing secret, list and retry deliveries.

Each use case takes the :class:`~cardvault.callers.VaultCaller` and plain values,
runs its own transaction and writes its own audit record (the changes are audited;
the reads are not); it answers with the documents of ``webhooks/documents.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cardvault.audit import AuditRecord, write_audit
from cardvault.callers import VaultCaller
from cardvault.webhooks import deliveries, endpoints
from cardvault.webhooks.addresses import AddressPolicy
from cardvault.webhooks.documents import delivery_out, endpoint_out
from cardvault.webhooks.errors import DeliveryNotFound


def _audit(caller: VaultCaller, action: str, target_id: str | None, **details: Any) -> AuditRecord:
    return caller.record(action, "webhook_endpoint", target_id, **details)


async def create_endpoint(caller: VaultCaller, url: str, events: list[str]) -> dict[str, Any]:
    """A new endpoint for ``events`` at ``url`` (an address the installation's policy
    permits); the answer holds its signing ``secret``, shown only this once."""
    services = caller.runtime
    settings = services.settings
    endpoints.check_events(events)
    await AddressPolicy(settings.webhook_networks).check(url)
    cipher = services.vault_keys.cipher(caller.vault_id)

    def create() -> dict[str, Any]:
        with services.db.transaction() as session:
            endpoint, secret = endpoints.create_endpoint(
                session,
                cipher,
                org_id=caller.org_id,
                url=url,
                events=events,
                limit=settings.max_webhooks_per_vault,
            )
            write_audit(session, _audit(caller, "webhook.create", endpoint.id, events=events))
            return endpoint_out(endpoint, secret)

    return await services.run_db(create)


def list_endpoints(caller: VaultCaller) -> dict[str, Any]:
    """The vault's endpoints, oldest first."""
    with caller.runtime.db.sessions() as session:
        data = [endpoint_out(e) for e in endpoints.list_endpoints(session, caller.vault_id)]
    return {"data": data}


def read_endpoint(caller: VaultCaller, endpoint_id: str) -> dict[str, Any]:
    """One endpoint of the vault (its secret is never shown again)."""
    with caller.runtime.db.sessions() as session:
        return endpoint_out(endpoints.get_endpoint(session, caller.vault_id, endpoint_id))


def delete_endpoint(caller: VaultCaller, endpoint_id: str) -> None:
    """Delete the endpoint; its pending deliveries are dropped."""
    with caller.runtime.db.transaction() as session:
        endpoints.delete_endpoint(session, caller.vault_id, endpoint_id)
        write_audit(session, _audit(caller, "webhook.delete", endpoint_id))


def rotate_secret(caller: VaultCaller, endpoint_id: str, grace_seconds: int) -> dict[str, Any]:
    """A new signing secret, shown once; the old one signs too for ``grace_seconds``."""
    services = caller.runtime
    grace = dt.timedelta(seconds=grace_seconds)
    cipher = services.vault_keys.cipher(caller.vault_id)
    with services.db.transaction() as session:
        endpoint, secret = endpoints.rotate_secret(session, cipher, endpoint_id, grace=grace)
        write_audit(
            session,
            _audit(
                caller,
                "webhook.rotate_secret",
                endpoint.id,
                grace_seconds=int(grace.total_seconds()),
            ),
        )
        return endpoint_out(endpoint, secret)


def list_deliveries(caller: VaultCaller, endpoint_id: str, *, limit: int) -> dict[str, Any]:
    """The endpoint's latest deliveries, newest event first, with every attempt."""
    with caller.runtime.db.sessions() as session:
        endpoint = endpoints.get_endpoint(session, caller.vault_id, endpoint_id)
        found = deliveries.list_deliveries(session, endpoint.id, limit=limit)
        return {"data": [delivery_out(*row) for row in found]}


def retry_delivery(caller: VaultCaller, endpoint_id: str, delivery_id: str) -> dict[str, Any]:
    """Deliver the event again now, whatever became of the earlier attempts (with a
    fresh retry horizon)."""
    services = caller.runtime
    horizon = dt.timedelta(seconds=services.settings.webhook_retry_horizon)
    with services.db.transaction() as session:
        endpoint = endpoints.get_endpoint(session, caller.vault_id, endpoint_id)
        delivery = deliveries.retry(session, endpoint.id, delivery_id, horizon)
        if delivery is None:
            raise DeliveryNotFound(f"delivery {delivery_id} not found")
        write_audit(session, _audit(caller, "webhook.retry", endpoint.id, delivery=delivery_id))
        return {"id": delivery.id, "state": delivery.state}
