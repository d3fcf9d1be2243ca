"""The public documents of a webhook endpoint and of its deliveries (never a secret,
except the new one in the answer that creates or rotates it)."""

from __future__ import annotations

from typing import Any

from cardvault.events.models import iso
from cardvault.store.event_models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


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
