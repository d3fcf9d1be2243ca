"""The input gate: every request's path, query, selected headers and body are checked
here (step 2 of the HTTP layer, ``web/http.py``), before any route sees them.

DESIGN §3: every input is bounded at the edge (lengths, numbers, character sets) and
anything that looks like a card number is treated as one. So this layer refuses:

- text that is not UTF-8, holds a lone surrogate (even written ``\\ud800`` in JSON)
  or a control character: 400 ``invalid-encoding``;
- JSON that is malformed, nested too deeply or repeats a key: 400 ``invalid-json`` or
  ``duplicate-key``; a number beyond ±(2**53 - 1), or not finite: 422 ``invalid-format``;
- a path, query or body larger than its bound: 414 ``uri-too-long`` or 413
  ``payload-too-large``;
- a card number anywhere but the ``pan`` field of an enrolment: 422 ``invalid-format``
  with the number shown as BIN and last four only.

A JSON body is parsed once, here, under these rules; the route's model validates that
value, and the management API (FastAPI) reads the very bytes that passed. Card numbers
are expected only where a route says (its ``pan_fields``). The OAuth routes get their
refusals in RFC 6749 §5.2 form (``web/errors.py`` renders both).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import Receive, Scope

from cardvault.crypto.pan import find_pan, find_pan_in_identifier, mask_pans

MAX_PATH = 2048  # characters, once percent-decoded
MAX_SEGMENT = 256
MAX_QUERY = 4096  # bytes, as sent
MAX_BODY = 64 * 1024  # JSON and form bodies
MAX_DEPTH = 32
MAX_KEY = 256
MAX_INT = 2**53 - 1  # what every JSON implementation reads exactly
MAX_NUMBER_TEXT = 32
MAX_IDEMPOTENCY_KEY = 255

_NO_PAN: frozenset[str] = frozenset()
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORM = "application/x-www-form-urlencoded"
# C0 controls but tab, line feed and carriage return, DEL and the C1 controls.
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass
class Refused(Exception):
    """An input the gate refuses: one wire error of the API envelope."""

    status: int
    code: str
    detail: str
    source: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.detail)


def shown(text: str, limit: int = 64) -> str:
    """``text`` safe to echo: card numbers masked, surrogates escaped, cut to ``limit``."""
    text = mask_pans(text[: limit * 2])
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pan_refusal(where: str, found: str, source: dict[str, str]) -> Refused:
    return Refused(
        422,
        "invalid-format",
        f"{where}: looks like a card number ({found}); card numbers are accepted "
        "only in the pan field of an enrolment",
        source,
    )


def check_text(
    value: str, where: str, source: dict[str, str], *, lines: bool = False, pan: bool = True
) -> None:
    """Raise :class:`Refused` for a lone surrogate, a control character (tab and line
    breaks allowed when ``lines``) or, unless ``pan`` is false, a card number."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Refused(
                400, "invalid-encoding", f"{where}: not valid Unicode text", source
            ) from None
    if (_CONTROL_IN_TEXT if lines else _CONTROL).search(value):
        raise Refused(400, "invalid-encoding", f"{where}: holds a control character", source)
    found = find_pan(value) if pan else None
    if found is not None:
        raise _pan_refusal(where, found.masked, source)


def _pairs(raw: bytes, where: str) -> list[tuple[str, str]]:
    """``name=value&…`` (query or form), percent- and plus-decoded as UTF-8 text."""
    pairs = []
    try:
        for part in raw.split(b"&"):
            if part:
                name, _, value = part.partition(b"=")
                pairs.append((_decoded(name), _decoded(value)))
    except UnicodeDecodeError:
        source = {"parameter": "query"} if where == "query" else {}
        raise Refused(400, "invalid-encoding", f"{where}: not valid UTF-8", source) from None
    return pairs


def _decoded(raw: bytes) -> str:
    return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")


# ---------------------------------------------------------------------- path and query


def check_path(scope: Scope) -> None:
    raw: bytes | None = scope.get("raw_path")
    try:
        path = unquote_to_bytes(raw.split(b"?", 1)[0]).decode("utf-8") if raw else scope["path"]
        path.encode("utf-8")
    except UnicodeError:
        raise Refused(
            400, "invalid-encoding", "path: not valid UTF-8", {"parameter": "path"}
        ) from None
    if len(path) > MAX_PATH or any(len(s) > MAX_SEGMENT for s in path.split("/")):
        raise Refused(
            414,
            "uri-too-long",
            f"path: at most {MAX_PATH} characters, {MAX_SEGMENT} between slashes",
            {"parameter": "path"},
        )
    if _CONTROL.search(path):
        raise Refused(
            400, "invalid-encoding", "path: holds a control character", {"parameter": "path"}
        )
    pan = find_pan(path)
    if pan is not None:
        raise _pan_refusal("path", pan.masked, {"parameter": "path"})


def check_query(query: bytes) -> None:
    if not query:
        return
    if len(query) > MAX_QUERY:
        raise Refused(414, "uri-too-long", f"query: at most {MAX_QUERY} bytes")
    for name, value in _pairs(query, "query"):
        where = shown(name, 40)
        check_text(name, f"query parameter {where}", {"parameter": where})
        check_text(value, where, {"parameter": where})


# ---------------------------------------------------------------------- headers


@dataclass
class RequestHeaders:
    content_type: str = ""  # the media type alone, lower case
    raw_content_type: str | None = None  # as sent
    length: int = -1
    authorization: str | None = None
    idempotency_key: str | None = None


def check_headers(scope: Scope) -> RequestHeaders:
    found = RequestHeaders()
    for name, value in scope["headers"]:
        if name == b"content-type":
            if found.raw_content_type is None:
                found.raw_content_type = value.decode("latin-1")
                found.content_type = found.raw_content_type.split(";", 1)[0].strip().lower()
        elif name == b"content-length":
            found.length = int(value) if value.isdigit() and len(value) < 16 else -1
        elif name == b"authorization":
            found.authorization = value.decode("latin-1")
        elif name == b"idempotency-key":
            _check_idempotency_key(value)
            found.idempotency_key = value.decode("ascii")
    return found


def _check_idempotency_key(value: bytes) -> None:
    source = {"header": "Idempotency-Key"}
    if not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY or not all(0x20 <= b < 0x7F for b in value):
        raise Refused(
            422,
            "invalid-format",
            f"Idempotency-Key: 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters",
            source,
        )
    pan = find_pan_in_identifier(value.decode("ascii"))
    if pan is not None:
        raise _pan_refusal("Idempotency-Key", pan.masked, source)


# ---------------------------------------------------------------------- JSON bodies


class _DuplicateKey(Exception):
    pass


class _OutOfRange(Exception):
    pass


class _NotANumber(Exception):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_TEXT:
        raise _OutOfRange(text)
    value = int(text)
    if abs(value) > MAX_INT:
        raise _OutOfRange(text)
    return value


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_TEXT:
        raise _OutOfRange(text)
    value = float(text)
    if not math.isfinite(value):
        raise _OutOfRange(text)
    return value


def _constant(text: str) -> Any:
    raise _NotANumber(text)


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object, parse_int=_int, parse_float=_float, parse_constant=_constant
)


def parse_json(body: bytes, pan_fields: frozenset[str] = _NO_PAN) -> Any:
    """The value of a JSON body under the strict rules above; raises :class:`Refused`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "invalid-encoding", "body: not valid UTF-8") from None
    try:
        value = _DECODER.decode(text)
    except _DuplicateKey as dup:
        raise Refused(
            400, "duplicate-key", f'body: the key "{shown(str(dup.args[0]))}" is repeated'
        ) from None
    except _OutOfRange:
        raise Refused(
            422, "invalid-format", f"body: numbers must be finite and within ±{MAX_INT}"
        ) from None
    except _NotANumber:
        raise Refused(400, "invalid-json", "body: NaN and Infinity are not JSON") from None
    except RecursionError:
        raise Refused(400, "invalid-json", f"body: nested deeper than {MAX_DEPTH}") from None
    except ValueError as exc:
        raise Refused(400, "invalid-json", f"body: not valid JSON ({_reason(exc)})") from None
    _walk(value, (), pan_fields)
    return value


def _reason(exc: ValueError) -> str:
    return exc.msg if isinstance(exc, json.JSONDecodeError) else "malformed"


def _walk(value: Any, path: tuple[str, ...], pan_fields: frozenset[str]) -> None:
    """Check every key, string and number of ``value``; ``path`` is where it is."""
    kind = type(value)
    if kind is str:
        if _suspect(value):
            pointer = _pointer(path)
            pan = pointer not in pan_fields
            check_text(value, _field(pointer), {"pointer": pointer}, lines=True, pan=pan)
    elif kind is dict or kind is list:
        if len(path) >= MAX_DEPTH:
            raise Refused(400, "invalid-json", f"body: nested deeper than {MAX_DEPTH}")
        if kind is list:
            for index, item in enumerate(value):
                _walk(item, (*path, str(index)), pan_fields)
            return
        for key, item in value.items():
            if len(key) > MAX_KEY:
                raise Refused(422, "invalid-format", f"body: keys are at most {MAX_KEY} characters")
            if _suspect(key):
                pointer = _pointer(path)
                check_text(key, f"{_field(pointer)} (a key)", {"pointer": pointer})
            _walk(item, (*path, key), pan_fields)
    elif (kind is int or kind is float) and abs(value) >= 10**11:
        pointer = _pointer(path)
        found = find_pan(str(value) if kind is int else repr(value))
        if found is not None and pointer not in pan_fields:
            raise _pan_refusal(_field(pointer), found.masked, {"pointer": pointer})


# A run of 12 digits, maybe grouped: the cheap test before the card number detector.
_DIGITS = re.compile(r"[0-9](?:[ -]?[0-9]){11}")


def _suspect(text: str) -> bool:
    """Whether ``text`` needs a closer look: not plain printable ASCII, or digits
    enough for a card number. Most strings of a request are neither."""
    if not (text.isascii() and text.isprintable()):
        return True
    return len(text) >= 12 and _DIGITS.search(text) is not None


def _pointer(path: tuple[str, ...]) -> str:
    """RFC 6901: ``/holder_info/name``."""
    return "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in path)


def _field(pointer: str) -> str:
    """A pointer as a dotted field name for messages, e.g. ``holder_info.name``. (Its
    keys were checked on the way down: no card number or control character in them.)"""
    name = pointer.lstrip("/").replace("/", ".") or "body"
    return name if len(name) <= 80 else name[:79] + "…"


# ---------------------------------------------------------------------- form bodies


def check_form(body: bytes) -> None:
    """An ``application/x-www-form-urlencoded`` body: UTF-8 text, no controls but line
    breaks and tabs, no card number."""
    for name, value in _pairs(body, "body"):
        where = shown(name, 40)
        check_text(name, f"form field {where}", {"pointer": f"/{where}"})
        check_text(value, where, {"pointer": f"/{where}"}, lines=True)


# ---------------------------------------------------------------------- the gate


class InvalidInput(Exception):
    """A query or body that its route's model refuses (rendered as 422)."""

    def __init__(self, error: Any, where: str) -> None:
        super().__init__(where)
        self.error = error  # a pydantic ValidationError
        self.where = where


class MissingBody(Exception):
    """The route needs a body and none came (rendered as 422)."""


@dataclass
class Checked:
    """What passed the gate: the headers it read and, when read, the body."""

    headers: RequestHeaders
    body: bytes | None = None  # None: left to stream to the route
    parsed: Any = None  # a JSON body's value


def is_json(kind: str) -> bool:
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


async def check(
    scope: Scope,
    receive: Receive,
    pan_fields: frozenset[str],
    *,
    read_other: bool,
    limit: int = MAX_BODY,
) -> Checked:
    """Check the request's path, query and headers and read its body (JSON and form
    bodies, and any other when ``read_other``, within ``limit`` bytes); raises
    :class:`Refused`."""
    check_path(scope)
    check_query(scope.get("query_string", b""))
    headers = check_headers(scope)
    checked = Checked(headers)
    kind = headers.content_type
    is_form = kind == _FORM
    if scope["method"] not in _BODY_METHODS or not (is_json(kind) or is_form or read_other):
        return checked
    if headers.length > limit:
        raise _too_large(limit)
    body = checked.body = await _read(receive, limit)
    if not body:
        return checked
    if is_json(kind):
        checked.parsed = parse_json(body, pan_fields)
    elif is_form:
        check_form(body)
    return checked


def query_pairs(raw: bytes) -> list[tuple[str, str]]:
    """The query's name and value pairs (already checked by :func:`check_query`)."""
    return _pairs(raw, "query") if raw else []


def _too_large(limit: int) -> Refused:
    return Refused(413, "payload-too-large", f"body: at most {limit} bytes")


async def _read(receive: Receive, limit: int) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return body
        body += bytes(message.get("body", b""))
        if len(body) > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            return body
