"""``/webhooks``: a vault's webhook endpoints, their signing secrets and deliveries."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, Field

from cardvault.audit import AuditRecord, write_audit
from cardvault.events.models import iso
from cardvault.store.event_models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from cardvault.web.auth import VaultCaller
from cardvault.web.http import Call, Route
from cardvault.webhooks import deliveries, endpoints
from cardvault.webhooks.addresses import MAX_URL
from cardvault.webhooks.errors import DeliveryNotFound


class EndpointIn(BaseModel):
    url: Annotated[str, Field(min_length=1, max_length=MAX_URL)]
    events: Annotated[
        list[Annotated[str, Field(max_length=64)]], Field(min_length=1, max_length=16)
    ]


class DeliveryListing(BaseModel):
    limit: Annotated[int, Field(ge=1, le=100)] = 50


class RotateIn(BaseModel):
    # Seconds the old secret keeps signing next to the new one (0: it stops at once).
    grace_seconds: Annotated[int, Field(ge=0, le=7 * 86400)] = 0


def endpoint_out(endpoint: WebhookEndpoint, secret: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": endpoint.events,
        "created_at": iso(endpoint.created_at),
        "updated_at": iso(endpoint.updated_at),
    }
    if endpoint.previous_secret_expires_at is not None:
        out["previous_secret_expires_at"] = iso(endpoint.previous_secret_expires_at)
    if secret is not None:
        out["secret"] = secret
    return out


def _attempt_out(attempt: WebhookAttempt) -> dict[str, Any]:
    return {
        "attempted_at": iso(attempt.attempted_at),
        "status_code": attempt.status_code,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
    }


def delivery_out(
    delivery: WebhookDelivery, event_id: str, event: str, attempts: list[WebhookAttempt]
) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "event_id": event_id,
        "event": event,
        "state": delivery.state,
        "attempts": [_attempt_out(a) for a in attempts],
        "next_attempt_at": iso(delivery.next_attempt_at) if delivery.state == "pending" else None,
        "delivered_at": iso(delivery.delivered_at) if delivery.delivered_at else None,
        "created_at": iso(delivery.created_at),
    }


def _audit(caller: VaultCaller, action: str, target_id: str | None, **details: Any) -> AuditRecord:
    return caller.record(action, "webhook_endpoint", target_id, **details)


async def create_endpoint(call: Call) -> dict[str, Any]:
    """Add an endpoint; the answer holds its signing ``secret``, shown only this once."""
    caller: VaultCaller = call.caller
    body: EndpointIn = call.body
    runtime = call.runtime
    endpoints.check_events(body.events)
    await runtime.webhook_policy.check(body.url)
    cipher = runtime.vault_keys.cipher(caller.vault_id)

    def create() -> dict[str, Any]:
        with runtime.db.transaction() as session:
            endpoint, secret = endpoints.create_endpoint(
                session,
                cipher,
                org_id=caller.org_id,
                url=body.url,
                events=body.events,
                limit=runtime.settings.max_webhooks_per_vault,
            )
            write_audit(session, _audit(caller, "webhook.create", endpoint.id, events=body.events))
            return endpoint_out(endpoint, secret)

    return await runtime.run_db(create)


def list_endpoints(call: Call) -> dict[str, Any]:
    """The vault's webhook endpoints."""
    caller: VaultCaller = call.caller
    with call.runtime.db.sessions() as session:
        data = [endpoint_out(e) for e in endpoints.list_endpoints(session, caller.vault_id)]
    return {"data": data}


def get_endpoint(call: Call) -> dict[str, Any]:
    """One endpoint (its secret is never shown again)."""
    caller: VaultCaller = call.caller
    endpoint_id = call.params["endpoint_id"]
    with call.runtime.db.sessions() as session:
        return endpoint_out(endpoints.get_endpoint(session, caller.vault_id, endpoint_id))


def delete_endpoint(call: Call) -> None:
    """Delete the endpoint; its pending deliveries are dropped."""
    caller: VaultCaller = call.caller
    endpoint_id = call.params["endpoint_id"]
    with call.runtime.db.transaction() as session:
        endpoints.delete_endpoint(session, caller.vault_id, endpoint_id)
        write_audit(session, _audit(caller, "webhook.delete", endpoint_id))


def rotate_secret(call: Call) -> dict[str, Any]:
    """A new signing secret, shown once; the old one signs too for ``grace_seconds``."""
    caller: VaultCaller = call.caller
    endpoint_id = call.params["endpoint_id"]
    grace = dt.timedelta(seconds=(call.body or RotateIn()).grace_seconds)
    cipher = call.runtime.vault_keys.cipher(caller.vault_id)
    with call.runtime.db.transaction() as session:
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


def list_deliveries(call: Call) -> dict[str, Any]:
    """The endpoint's latest deliveries, newest event first, with every attempt."""
    caller: VaultCaller = call.caller
    with call.runtime.db.sessions() as session:
        endpoint = endpoints.get_endpoint(session, caller.vault_id, call.params["endpoint_id"])
        found = deliveries.list_deliveries(session, endpoint.id, limit=call.query.limit)
        return {"data": [delivery_out(*row) for row in found]}


def retry_delivery(call: Call) -> dict[str, Any]:
    """Deliver the event again now, whatever became of the earlier attempts."""
    caller: VaultCaller = call.caller
    delivery_id = call.params["delivery_id"]
    horizon = dt.timedelta(seconds=call.runtime.settings.webhook_retry_horizon)
    with call.runtime.db.transaction() as session:
        endpoint = endpoints.get_endpoint(session, caller.vault_id, call.params["endpoint_id"])
        delivery = deliveries.retry(session, endpoint.id, delivery_id, horizon)
        if delivery is None:
            raise DeliveryNotFound(f"delivery {delivery_id} not found")
        write_audit(session, _audit(caller, "webhook.retry", endpoint.id, delivery=delivery_id))
        return {"id": delivery.id, "state": delivery.state}


TAGS = ("webhooks",)
READ, WRITE = "webhooks:read", "webhooks:write"
ROUTES = [
    Route(
        "POST", "/webhooks", create_endpoint, scope=WRITE, body=EndpointIn, status=201, tags=TAGS
    ),
    Route("GET", "/webhooks", list_endpoints, scope=READ, tags=TAGS),
    Route("GET", "/webhooks/{endpoint_id}", get_endpoint, scope=READ, tags=TAGS),
    Route("DELETE", "/webhooks/{endpoint_id}", delete_endpoint, scope=WRITE, status=204, tags=TAGS),
    Route(
        "POST",
        "/webhooks/{endpoint_id}/rotate-secret",
        rotate_secret,
        scope=WRITE,
        body=RotateIn,
        body_required=False,
        tags=TAGS,
    ),
    Route(
        "GET",
        "/webhooks/{endpoint_id}/deliveries",
        list_deliveries,
        scope=READ,
        query=DeliveryListing,
        tags=TAGS,
    ),
    Route(
        "POST",
        "/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry",
        retry_delivery,
        scope=WRITE,
        status=202,
        tags=TAGS,
    ),
]
