"""Keyset pagination, newest first (created_at, id), with opaque signed cursors."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Integer, Select, and_, bindparam, or_
from sqlalchemy.orm import Session

from cardvault.problems import Problem
from cardvault.store.direct import Direct, Source


class InvalidCursor(Problem, ValueError):
    """The cursor was not produced by this service for this listing."""

    code = "invalid-cursor"

    def __init__(self, reason: str) -> None:
        super().__init__(f"cursor: {reason}", source={"parameter": "cursor"})


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
MAX_CURSOR = 160  # characters: a 64-character id makes a cursor of about 120
MAC_SIZE = 16
KEY_LABEL = "cardvault/pagination-cursor/v1"
_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_CURSOR}}}")
_PAYLOAD = re.compile(rb"([0-9]{1,17})\.([A-Za-z0-9_-]{1,64})")


@dataclass(frozen=True)
class Cursor:
    """A position in a listing, newest first: the last row's (created_at, id)."""

    created_at: dt.datetime
    id: str


class CursorCodec:
    """Cursors as opaque, signed strings: base64url of ``<microseconds>.<id>`` and an
    HMAC-SHA-256 tag (16 bytes) over that and the listing it belongs to.

    The key must be the same on every node (it is derived from the installation's
    pepper, which all nodes share), so that a page started on one node continues on
    another. A cursor is only valid for the listing (``scope``: e.g. the vault's cards)
    it was made for. :meth:`decode` parses a fixed shape with bounded lengths and a
    date in range, and raises :class:`InvalidCursor` for anything else.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("a cursor key has at least 256 bits")
        self._key = key

    @classmethod
    def derived(cls, keyed_hash: Callable[[str], bytes]) -> CursorCodec:
        """The codec whose key is ``keyed_hash`` (an HMAC under a shared secret) of a
        fixed label."""
        return cls(keyed_hash(KEY_LABEL))

    def _tag(self, scope: str, payload: bytes) -> bytes:
        message = scope.encode() + b"\n" + payload
        return hmac.new(self._key, message, hashlib.sha256).digest()[:MAC_SIZE]

    def encode(self, cursor: Cursor, scope: str) -> str:
        micros = (cursor.created_at - EPOCH) // dt.timedelta(microseconds=1)
        payload = f"{micros}.{cursor.id}".encode()
        raw = payload + self._tag(scope, payload)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, value: str, scope: str) -> Cursor:
        if not _SHAPE.fullmatch(value):
            raise InvalidCursor("not a cursor of this service")
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            raise InvalidCursor("not a cursor of this service") from None
        payload, tag = raw[:-MAC_SIZE], raw[-MAC_SIZE:]
        if len(raw) <= MAC_SIZE or not hmac.compare_digest(tag, self._tag(scope, payload)):
            raise InvalidCursor("not a cursor of this listing")
        shape = _PAYLOAD.fullmatch(payload)
        if shape is None:
            raise InvalidCursor("not a cursor of this service")
        created = EPOCH + dt.timedelta(microseconds=int(shape.group(1)))
        if not EARLIEST <= created <= LATEST:
            raise InvalidCursor("the cursor's date is out of range")
        return Cursor(created, shape.group(2).decode("ascii"))


M = TypeVar("M")
R = TypeVar("R")


class NewestFirst(Generic[R]):
    """Keyset pages of ``query``'s records, newest first on (``created_at``, ``id``),
    run by the executor: two statements compiled once (the first page, and a page
    after a cursor). ``row`` makes a record of each row, ``position`` its place in the
    order (its ``created_at`` and ``id``). Stable while rows are added, no OFFSET."""

    def __init__(
        self,
        query: Select[Any],
        created_at: ColumnElement[dt.datetime],
        id_: ColumnElement[str],
        row: Callable[..., R],
        position: Callable[[R], Cursor],
    ) -> None:
        self._position = position
        newest = (created_at.desc(), id_.desc())
        after = or_(
            created_at < bindparam("b_after_at"),
            and_(created_at == bindparam("b_after_at"), id_ < bindparam("b_after_id")),
        )
        limit = bindparam("b_limit", type_=Integer)
        self._first = Direct(query.order_by(*newest).limit(limit), row)
        self._after = Direct(query.where(after).order_by(*newest).limit(limit), row)

    def page(
        self, source: Source, params: dict[str, Any], *, limit: int, cursor: Cursor | None
    ) -> tuple[list[R], Cursor | None]:
        """One page (the statement's own parameters in ``params``) and the cursor of
        the next page, or None."""
        if cursor is None:
            rows = self._first.all(source, {**params, "b_limit": limit + 1})
        else:
            after = {"b_after_at": cursor.created_at, "b_after_id": cursor.id}
            rows = self._after.all(source, {**params, **after, "b_limit": limit + 1})
        page = rows[:limit]
        if len(rows) <= limit:
            return page, None
        return page, self._position(page[-1])


def newest_first(
    session: Session, model: Any, query: Select[M], *, limit: int, cursor: Cursor | None
) -> tuple[Sequence[M], Cursor | None]:
    """One page of ``query`` (a ``select(model)``; the model has ``created_at`` and
    ``id`` columns), newest first, and the cursor of the next page or None.

    Keyset pagination on (created_at, id): stable while rows are added, no OFFSET.
    """
    if cursor is not None:
        query = query.where(
            or_(
                model.created_at < cursor.created_at,
                (model.created_at == cursor.created_at) & (model.id < cursor.id),
            )
        )
    rows = session.scalars(
        query.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)
    ).all()
    page = rows[:limit]
    if len(rows) <= limit:
        return page, None
    last: Any = page[-1]
    return page, Cursor(last.created_at, last.id)
