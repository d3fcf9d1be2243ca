"""Opaque cursors for keyset pagination, newest first (created_at, id)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass


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
