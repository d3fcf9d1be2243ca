"""``/webhooks``: a vault's webhook endpoints, their signing secrets and deliveries."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from cardvault.web.http import Call, Route
from cardvault.webhooks import management
from cardvault.webhooks.addresses import MAX_URL


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


async def create_endpoint(call: Call) -> dict[str, Any]:
    """Add an endpoint; the answer holds its signing ``secret``, shown only this once."""
    body: EndpointIn = call.body
    return await management.create_endpoint(call.caller, body.url, body.events)


def list_endpoints(call: Call) -> dict[str, Any]:
    """The vault's webhook endpoints."""
    return management.list_endpoints(call.caller)


def get_endpoint(call: Call) -> dict[str, Any]:
    """One endpoint (its secret is never shown again)."""
    return management.read_endpoint(call.caller, call.params["endpoint_id"])


def delete_endpoint(call: Call) -> None:
    """Delete the endpoint; its pending deliveries are dropped."""
    management.delete_endpoint(call.caller, call.params["endpoint_id"])


def rotate_secret(call: Call) -> dict[str, Any]:
    """A new signing secret, shown once; the old one signs too for ``grace_seconds``."""
    grace_seconds = (call.body or RotateIn()).grace_seconds
    return management.rotate_secret(call.caller, call.params["endpoint_id"], grace_seconds)


def list_deliveries(call: Call) -> dict[str, Any]:
    """The endpoint's latest deliveries, newest event first, with every attempt."""
    query: DeliveryListing = call.query
    return management.list_deliveries(call.caller, call.params["endpoint_id"], limit=query.limit)


def retry_delivery(call: Call) -> dict[str, Any]:
    """Deliver the event again now, whatever became of the earlier attempts."""
    return management.retry_delivery(
        call.caller, call.params["endpoint_id"], call.params["delivery_id"]
    )


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
