"""The vault's event feed (``GET /events``): its events in commit order, a page at a
time, for polling and backfill, with the cursors that continue it.

A cursor (``next_after``) is ``ec_`` and 22 base64url characters: two unsigned 64-bit
numbers, the position in the commit order (:mod:`cardvault.store.feeds`). ``after``
may also be, as documented before cursors, an event id.
"""

from __future__ import annotations

import base64
import re
import struct

import orjson

from cardvault.callers import VaultCaller
from cardvault.events.errors import InvalidEventCursor
from cardvault.events.services import list_events
from cardvault.store.feeds import START, Position

_CURSOR = re.compile(r"ec_[A-Za-z0-9_-]{22}")
_EVENT_ID = re.compile(r"evt_[A-Za-z0-9_-]{1,36}")
_PACKED = struct.Struct(">QQ")
_BIGINT = 2**63  # positions are database BIGINTs


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


def read_feed(caller: VaultCaller, *, after: str | None, limit: int) -> bytes:
    """The page's document (JSON): ``data``, the events after ``after`` (from the first
    if None), oldest first, as the webhooks carry them, and ``next_after``, where the
    next page starts (null when there is no event at all yet)."""
    services = caller.runtime
    start = decode_after(after) if after is not None else None
    with services.db.sessions() as session:
        page = list_events(session, caller.vault_id, after=start, limit=limit)
    payloads = page.payloads
    services.audit.add(caller.record("event.list", "event", None, count=len(payloads)))
    data = b"[" + b",".join(p.encode() for p in payloads) + b"]"
    following = None if page.after == START else encode_cursor(page.after)
    return b'{"data":' + data + b',"next_after":' + orjson.dumps(following) + b"}"
