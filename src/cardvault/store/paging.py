"""Opaque cursors for keyset pagination, newest first (created_at, id)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, or_
from sqlalchemy.orm import Session


class InvalidCursor(ValueError):
    """The cursor was not produced by this service."""


@dataclass(frozen=True)
class Cursor:
    created_at: dt.datetime
    id: str

    def encode(self) -> str:
        raw = json.dumps({"t": self.created_at.isoformat(), "i": self.id}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            data = json.loads(raw)
            created = dt.datetime.fromisoformat(data["t"])
            if created.tzinfo is None or not isinstance(data["i"], str):
                raise ValueError("bad cursor")
            return cls(created, data["i"])
        except (binascii.Error, ValueError, KeyError, TypeError) as exc:
            raise InvalidCursor("cursor is not valid") from exc


M = TypeVar("M")


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
