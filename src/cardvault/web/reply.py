"""``Reply``: an answer of the HTTP layer (``web/http.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
from pydantic import BaseModel

JSON = b"application/json"
Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Reply:
    """An answer: status, body (or a stream of body chunks) and headers."""

    status: int
    body: bytes = b""
    headers: Headers = field(default_factory=list)
    stream: AsyncIterator[bytes] | None = None

    @classmethod
    def json(cls, value: object, status: int = 200, headers: Headers | None = None) -> Reply:
        body = value.model_dump_json().encode() if isinstance(value, BaseModel) else None
        return cls(
            status,
            body if body is not None else orjson.dumps(value),
            [(b"content-type", JSON), *(headers or [])],
        )

    @classmethod
    def raw_json(cls, body: bytes, status: int = 200) -> Reply:
        return cls(status, body, [(b"content-type", JSON)])
