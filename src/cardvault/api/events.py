"""``/events``: the vault's lifecycle events, oldest first, for polling and backfill."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Response

from cardvault.api.vault import VaultCaller, vault_caller
from cardvault.events import list_events

router = APIRouter(prefix="/events", tags=["events"])

Reader = Annotated[VaultCaller, Depends(vault_caller("webhooks:read"))]


@router.get("")
def get_events(
    caller: Reader,
    after: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    """Events written after the event ``after`` (all from the first if absent); the
    same documents the webhooks carry. ``next_after`` continues the listing."""
    with caller.runtime.db.sessions() as session:
        found = list_events(session, caller.vault_id, after=after, limit=limit)
        payloads = [row.payload for row in found]
        last = found[-1].id if found else after
    caller.runtime.audit.add(caller.record("event.list", "event", None, count=len(payloads)))
    data = b"[" + b",".join(p.encode() for p in payloads) + b"]"
    body = b'{"data":' + data + b',"next_after":' + orjson.dumps(last) + b"}"
    return Response(body, media_type="application/json")
