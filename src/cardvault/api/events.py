"""``/events``: the vault's lifecycle events, oldest first, for polling and backfill."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from cardvault.events.feed import read_feed
from cardvault.web.http import Call, Route
from cardvault.web.reply import Reply


class Listing(BaseModel):
    after: str | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100


def get_events(call: Call) -> Reply:
    """Events after ``after`` (from the first if absent), oldest first: the same
    documents the webhooks carry. ``next_after`` continues the listing; following it
    reads every event exactly once, including events whose transactions commit late.
    ``after`` may also be an event id: the events listed after that one."""
    query: Listing = call.query
    return Reply.raw_json(read_feed(call.caller, after=query.after, limit=query.limit))


ROUTES = [
    Route("GET", "/events", get_events, scope="webhooks:read", query=Listing, tags=("events",))
]
