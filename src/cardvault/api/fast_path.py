"""A raw ASGI front for the hottest vault calls: ``GET /network-tokens/{key}``,
``GET /cards/{key}``, ``POST /cards`` and ``POST /network-tokens``.

The input layer (``web/inputs.py``) in front of it has already checked the path,
headers and body, and parsed the JSON body under its strict rules: the handlers
validate that value (``PARSED_JSON`` in the scope), never the raw bytes again.

It runs the same functions as the FastAPI routes (token check, scope and vault
binding, the read or the enrolment, the audit record), without Starlette's
middleware, routing and dependency solving, which cost about as much as the work
itself on these calls. Only the successful answer is produced here: whenever a
request is refused (no token, wrong scope, bad body, unknown card...) it is handed,
body and all, to the FastAPI application, which answers it exactly as documented.
Refusals happen before anything is written, so answering them there is safe. The
one exception, a network's refusal of a card ``POST /network-tokens`` has just
enrolled, is answered here, as the application's handler would.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cardvault.api.auth import verify_bearer
from cardvault.api.cards import CardIn, enroll, read_card_json
from cardvault.api.network_tokens import NetworkTokenIn, provision_json, read_token_json
from cardvault.api.vault import VaultCaller, bind_vault
from cardvault.cards.errors import CardError
from cardvault.network_tokens.errors import TokenNotFound
from cardvault.networks.provider import ProviderError
from cardvault.runtime import Runtime
from cardvault.store.unavailable import is_unavailable
from cardvault.web.errors import ApiError, provider_error_response
from cardvault.web.inputs import PARSED_JSON
from cardvault.web.unavailable import log_unavailable, unavailable_response

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
JSON = b"application/json"
INTERNAL_ERROR = b'{"errors":[{"status":500,"code":"internal-error","detail":"Internal error"}]}'
REFUSED = (ApiError, CardError, TokenNotFound, ValidationError)


class Headers:
    """The few request headers the fast path reads."""

    def __init__(self, scope: Scope) -> None:
        self.authorization = ""
        self.content_type = b""
        self.idempotency_key: str | None = None
        self.length = -1
        for name, value in scope["headers"]:
            if name == b"authorization":
                self.authorization = value.decode("latin-1")
            elif name == b"content-type":
                self.content_type = value
            elif name == b"idempotency-key":
                self.idempotency_key = value.decode("latin-1")
            elif name == b"content-length":
                self.length = int(value) if value.isdigit() else -1


# The body as the input layer parsed it (strict JSON, bounded, no stray card number).
Handler = Callable[[Runtime, Scope, Headers, Any], Awaitable[tuple[int, bytes]]]


def _caller(runtime: Runtime, scope: Scope, headers: Headers, needed: str) -> VaultCaller:
    client = scope.get("client")
    principal = verify_bearer(runtime, headers.authorization)
    return bind_vault(principal, needed, client[0] if client else None, runtime)


async def _get_token(
    runtime: Runtime, scope: Scope, headers: Headers, _body: Any
) -> tuple[int, bytes]:
    caller = _caller(runtime, scope, headers, "network-tokens:read")
    return 200, await read_token_json(caller, scope["path"][len("/network-tokens/") :])


async def _get_card(
    runtime: Runtime, scope: Scope, headers: Headers, _body: Any
) -> tuple[int, bytes]:
    caller = _caller(runtime, scope, headers, "cards:read")
    return 200, await read_card_json(caller, scope["path"][len("/cards/") :])


async def _enroll(runtime: Runtime, scope: Scope, headers: Headers, body: Any) -> tuple[int, bytes]:
    caller = _caller(runtime, scope, headers, "cards:write")
    return await enroll(caller, CardIn.model_validate(body), headers.idempotency_key)


async def _provision(
    runtime: Runtime, scope: Scope, headers: Headers, body: Any
) -> tuple[int, bytes]:
    caller = _caller(runtime, scope, headers, "network-tokens:write")
    request = NetworkTokenIn.model_validate(body)
    return await provision_json(caller, request, headers.idempotency_key)


def _route(scope: Scope) -> Handler | None:
    path: str = scope["path"]
    method: str = scope["method"]
    if method == "GET":
        for prefix, handler in (("/network-tokens/", _get_token), ("/cards/", _get_card)):
            if path.startswith(prefix) and "/" not in path[len(prefix) :] and path != prefix:
                return handler
    elif method == "POST" and path == "/cards":
        return _enroll
    elif method == "POST" and path == "/network-tokens":
        return _provision
    return None


class FastPath:
    def __init__(self, app: ASGIApp, runtime: Callable[[], Runtime]) -> None:
        self.app = app
        self._runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = _route(scope) if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope)
        body, parsed = b"", None
        if scope["method"] == "POST":
            ready = 0 <= headers.length <= MAX_BODY and headers.content_type == JSON
            if not (ready and PARSED_JSON in scope):
                await self.app(scope, receive, send)
                return
            body, parsed = await _read_body(receive), scope[PARSED_JSON]
        try:
            status, payload = await handler(self._runtime(), scope, headers, parsed)
        except REFUSED:
            await self.app(scope, _replay(body, receive), send)
            return
        except ProviderError as refusal:
            await provider_error_response(refusal)(scope, receive, send)
            return
        except Exception as error:
            if is_unavailable(error):
                log_unavailable(scope["method"], scope["path"], error)
                await unavailable_response()(scope, receive, send)
                return
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            status, payload = 500, INTERNAL_ERROR
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", JSON),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body", False):
            return body


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the already-read body once, then the real channel."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
