"""``/events``: the vault's lifecycle events, oldest first, for polling and backfill."""

from __future__ import annotations

import base64
import re
import struct
from typing import Annotated

import orjson
from pydantic import BaseModel, Field

from cardvault.events import list_events
from cardvault.problems import Problem
from cardvault.store.feeds import START, Position
from cardvault.web.auth import VaultCaller
from cardvault.web.http import Call, Route
from cardvault.web.reply import Reply

# ``after`` is a cursor from ``next_after`` (``ec_`` and 22 base64url characters: two
# unsigned 64-bit numbers) or, as documented before cursors, an event id.
_CURSOR = re.compile(r"ec_[A-Za-z0-9_-]{22}")
_EVENT_ID = re.compile(r"evt_[A-Za-z0-9_-]{1,36}")
_PACKED = struct.Struct(">QQ")
_BIGINT = 2**63  # positions are database BIGINTs


class InvalidEventCursor(Problem):
    status = 400
    code = "invalid-cursor"

    def __init__(self) -> None:
        super().__init__(
            "after: not an event id nor a next_after of this API", source={"parameter": "after"}
        )


class Listing(BaseModel):
    after: str | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100


def encode_cursor(position: Position) -> str:
    return "ec_" + base64.urlsafe_b64encode(_PACKED.pack(position.key, position.seq)).decode()[:22]


def decode_after(value: str) -> Position | str:
    """The position a cursor stands for, or the event id given; raises
    :class:`InvalidEventCursor` for anything else (never a database error)."""
    if _EVENT_ID.fullmatch(value):
        return value
    if not _CURSOR.fullmatch(value):
        raise InvalidEventCursor
    key, seq = _PACKED.unpack(base64.urlsafe_b64decode(value[3:] + "=="))
    position = Position(key, seq)
    if key >= _BIGINT or seq >= _BIGINT or encode_cursor(position) != value:
        raise InvalidEventCursor  # out of range, or not the one spelling we write
    return position


def get_events(call: Call) -> Reply:
    """Events after ``after`` (from the first if absent), oldest first: the same
    documents the webhooks carry. ``next_after`` continues the listing; following it
    reads every event exactly once, including events whose transactions commit late.
    ``after`` may also be an event id: the events listed after that one."""
    caller: VaultCaller = call.caller
    query: Listing = call.query
    start = decode_after(query.after) if query.after is not None else None
    with call.runtime.db.sessions() as session:
        page = list_events(session, caller.vault_id, after=start, limit=query.limit)
    payloads = page.payloads
    call.runtime.audit.add(caller.record("event.list", "event", None, count=len(payloads)))
    data = b"[" + b",".join(p.encode() for p in payloads) + b"]"
    following = None if page.after == START else encode_cursor(page.after)
    body = b'{"data":' + data + b',"next_after":' + orjson.dumps(following) + b"}"
    return Reply.raw_json(body)


ROUTES = [
    Route("GET", "/events", get_events, scope="webhooks:read", query=Listing, tags=("events",))
]
