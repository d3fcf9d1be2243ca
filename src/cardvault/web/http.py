"""The one HTTP layer: every request of the service's API goes through :class:`HttpLayer`.

Routes are declared in a table (:class:`Route`: method, path, handler, the scope it
needs, its body and query models); a handler gets a :class:`Call` and gives back a
:class:`Reply` (or a value to send as JSON). The cross-cutting steps run here, once,
in this order, for every request:

1. a request id (the caller's ``X-Request-Id`` when it is sane, else a new one),
   echoed in the answer's ``X-Request-Id``; behind trusted proxies, the caller's
   address becomes the one they forwarded (``web/proxies.py``);
2. the input gate (``web/inputs.py``): encodings, sizes, strict JSON, no stray card
   number; the body is read once, here, within the route's bound;
3. the route: the table's, else the management API and dashboard (FastAPI), which get
   the checked body;
4. authentication (a bearer access token; the OAuth endpoints authenticate clients
   themselves), then the scope and the vault the route needs;
5. the query and body, validated against the route's models;
6. the handler (its use case in a domain package; idempotency and audit records are
   the use case's, with the ``Idempotency-Key`` given in the call);
7. metrics: each answer's route, status and duration go to the layer's observers
   (a path the table does not route goes under a name from a fixed set, such as
   ``dashboard`` or ``unmatched``, never under the path itself);
8. errors: whatever a step raises becomes the documented wire body (the API's
   envelope or, on the OAuth endpoints, RFC 6749 §5.2's), by :func:`render_error`.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cardvault.crypto.pan import find_pan_in_identifier
from cardvault.runtime import Runtime
from cardvault.settings import IpNetwork
from cardvault.web import inputs
from cardvault.web.errors import MethodNotAllowed, UnsupportedMediaType, render_error
from cardvault.web.logging import REQUEST_ID
from cardvault.web.proxies import caller_address
from cardvault.web.reply import Reply

log = logging.getLogger(__name__)

Style = Literal["api", "oauth"]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@dataclass(slots=True)
class Call:
    """What a handler gets of its request, once the layer's steps have run."""

    runtime: Runtime
    route: Route
    method: str
    path: str
    params: dict[str, str]
    source_ip: str
    request_id: str
    authorization: str | None
    content_type: str | None  # as sent, parameters included
    idempotency_key: str | None
    raw: bytes  # the body as sent (empty for a streamed body)
    raw_query: bytes
    parsed: Any = None  # a JSON body's value, parsed by the input gate
    body: Any = None  # the validated body model, when the route has one
    query: Any = None  # the validated query model, when the route has one
    principal: Any = None  # cardvault.web.auth.Principal, for routes that need a token
    caller: Any = None  # cardvault.web.auth.VaultCaller, for vault routes
    receive: Receive | None = None  # the body's channel, for streamed bodies


Handler = Callable[[Call], Any]


@dataclass(frozen=True)
class Route:
    """One operation of the API, as the layer runs it and the OpenAPI document
    describes it (``web/openapi.py``)."""

    method: str
    path: str  # a template: /cards/{card_id}
    handler: Handler
    scope: str | None = None  # the scope a bearer token needs (None: none needed)
    bearer: bool = True  # a bearer token is needed (OAuth endpoints: False)
    vault: bool = True  # the token must be bound to a vault
    body: type[BaseModel] | None = None
    body_required: bool = True
    query: type[BaseModel] | None = None
    status: int = 200
    response: type[BaseModel] | None = None  # the success body, for the document
    responses: dict[int, str] = field(default_factory=dict)  # more success answers
    idempotent: bool = False  # takes an Idempotency-Key
    streamed: bool = False  # the handler reads the body itself (call.receive)
    max_body: int = inputs.MAX_BODY
    style: Style = "api"
    tags: tuple[str, ...] = ()
    document: bool = True  # in the OpenAPI document
    openapi: dict[str, Any] = field(default_factory=dict)  # extra operation fields
    pan_fields: frozenset[str] = frozenset()  # JSON pointers where a PAN belongs

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    @functools.cached_property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)

    @property
    def summary(self) -> str:
        """The handler's first sentence, for the document."""
        doc = inspect.getdoc(self.handler) or ""
        first = doc.split("\n\n", 1)[0].replace("\n", " ")
        return first.split("; ", 1)[0].split(". ", 1)[0].rstrip(".")

    @property
    def description(self) -> str:
        """The handler's docstring beyond the summary, and the scope the route needs."""
        doc = (inspect.getdoc(self.handler) or "").replace("\n\n", "\0").replace("\n", " ")
        first, _, rest = doc.partition("\0")
        doc = (rest if first.rstrip(".") == self.summary else doc).replace("\0", "\n\n")
        if self.bearer and self.scope:
            doc += f"\n\nNeeds a token with the scope `{self.scope}`"
            doc += " bound to a vault." if self.vault else "."
        return doc.strip()


class Router:
    """The route table, indexed by the number of path segments and the first one: a
    request is matched against the few templates of its shape, in the table's order."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._by_shape: dict[tuple[int, str], list[tuple[Route, re.Pattern[str]]]] = {}
        for route in routes:
            first = _first_segment(route.path)
            if first.startswith("{"):
                raise ValueError(f"{route.name}: a route's first segment is a literal")
            shape = (route.path.count("/"), first)
            self._by_shape.setdefault(shape, []).append((route, _template(route.path)))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | list[str] | None:
        """The route and its path parameters; else the methods the path allows (405),
        or ``None`` when no route has this path."""
        allowed: list[str] = []
        shape = (path.count("/"), _first_segment(path))
        for route, pattern in self._by_shape.get(shape, ()):
            found = pattern.fullmatch(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict()
            allowed.append(route.method)
        return allowed or None


def _first_segment(path: str) -> str:
    parts = path.split("/", 2)
    return parts[1] if len(parts) > 1 else ""


def _template(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[a-z_]+\})", path)
    regex = "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(regex)


Observer = Callable[[str, int, float], None]  # route name, status, seconds


class HttpLayer:
    """The ASGI application ``cardvault serve`` runs (see the module's docstring)."""

    def __init__(
        self,
        routes: list[Route],
        fallback: ASGIApp,
        runtime: Callable[[], Runtime],
        authenticate: Callable[[Call], Awaitable[None]],
        oauth_paths: Callable[[str], bool],
        fallback_name: Callable[[str], str] = lambda _path: "unmatched",
        trusted_proxies: Sequence[IpNetwork] = (),
    ) -> None:
        self.router = Router(routes)
        self.app = fallback
        self._runtime = runtime
        self._authenticate = authenticate
        self._oauth_paths = oauth_paths
        # What the observers call a path the table does not route: a name from a
        # fixed set, never the path itself.
        self._fallback_name = fallback_name
        self._trusted_proxies = tuple(trusted_proxies)
        self.observers: list[Observer] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        REQUEST_ID.set(request_id)  # this request's task (and its threads) log it
        if self._trusted_proxies:  # every later step (and FastAPI) sees the caller
            _behind_proxies(scope, self._trusted_proxies)
        method: str = scope["method"]
        path: str = scope["path"]
        found = self.router.match(method, path)
        route = found[0] if isinstance(found, tuple) else None
        style: Style = route.style if route else ("oauth" if self._oauth_paths(path) else "api")
        sent: int | None = None  # the status the fallback answered with
        try:
            checked = await _gate(scope, receive, route)
            if isinstance(found, tuple):
                call = self._call(scope, receive, found[0], found[1], checked, request_id)
                reply = await self._run(call)
            else:
                sent = await self._fallback(scope, receive, send, checked, request_id, found)
        except Exception as error:  # every failure has its documented answer
            reply = render_error(error, style, method, path, self._runtime_or_none(), scope)
        if sent is None:
            await _send(send, reply, request_id)
            sent = reply.status
        name = route.name if route else self._fallback_name(path)
        elapsed = time.perf_counter() - started
        for observe in self.observers:
            observe(name, sent, elapsed)

    def _runtime_or_none(self) -> Runtime | None:
        try:
            return self._runtime()
        except AttributeError:  # before start-up finished
            return None

    def _call(
        self,
        scope: Scope,
        receive: Receive,
        route: Route,
        params: dict[str, str],
        checked: inputs.Checked,
        request_id: str,
    ) -> Call:
        client = scope.get("client")
        return Call(
            runtime=self._runtime(),
            route=route,
            method=scope["method"],
            path=scope["path"],
            params=params,
            source_ip=client[0] if client else "unknown",
            request_id=request_id,
            authorization=checked.headers.authorization,
            content_type=checked.headers.raw_content_type,
            idempotency_key=checked.headers.idempotency_key,
            raw=checked.body or b"",
            raw_query=scope.get("query_string", b""),
            parsed=checked.parsed,
            receive=receive if route.streamed else None,
        )

    async def _run(self, call: Call) -> Reply:
        route = call.route
        if route.bearer:
            await self._authenticate(call)
        if route.query is not None:
            call.query = _validate(route.query, _query(call), "query")
        if route.body is not None:
            call.body = _body(route, call)
        if route.is_async:
            result = await route.handler(call)
        else:  # blocking work (transactions, a network's answer): a worker thread
            result = await run_in_threadpool(route.handler, call)
        if isinstance(result, Reply):
            return result
        if result is None:
            return Reply(204)
        return Reply.json(result, route.status)

    async def _fallback(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        checked: inputs.Checked,
        request_id: str,
        found: list[str] | None,
    ) -> int:
        """The FastAPI application's answer (dashboard, health checks, docs); returns
        its status."""
        if found:  # the path is ours, the method is not
            raise MethodNotAllowed(found)
        if checked.body is not None:
            receive = _replay(checked.body, receive)
        echo = (b"x-request-id", request_id.encode())
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), echo]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if status is None:
                raise
            # Answered already (FastAPI's handler rendered and logged it); the server
            # need not see it again.
        return 500 if status is None else status  # no answer at all: the server's 500


def _behind_proxies(scope: Scope, trusted: Sequence[IpNetwork]) -> None:
    client = scope.get("client")
    if client:
        caller = caller_address(client[0], scope["headers"], trusted)
        if caller != client[0]:
            scope["client"] = (caller, client[1])


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text) and find_pan_in_identifier(text) is None:
                return text  # sane, and no card number: it is echoed and logged
            break
    return f"{_ID_PREFIX}{next(_ID_COUNTER):x}"


# A new request's id: this process's random prefix (unique across workers, nodes and
# restarts) and a counter; ids need only be unique, and this costs a fraction of a
# uuid4.
_ID_PREFIX = f"{secrets.token_hex(8)}-"
_ID_COUNTER = itertools.count(1)


async def _gate(scope: Scope, receive: Receive, route: Route | None) -> inputs.Checked:
    pan_fields = route.pan_fields if route else frozenset()
    if route is None or route.streamed:
        return await inputs.check(scope, receive, pan_fields, read_other=False)
    return await inputs.check(scope, receive, pan_fields, read_other=True, limit=route.max_body)


def _query(call: Call) -> dict[str, str]:
    return dict(inputs.query_pairs(call.raw_query))


def _validate(model: type[BaseModel], value: Any, where: str) -> BaseModel:
    try:
        return model.model_validate(value)
    except ValidationError as invalid:
        raise inputs.InvalidInput(invalid, where) from None


def _body(route: Route, call: Call) -> BaseModel | None:
    assert route.body is not None
    if not call.raw:
        if route.body_required:
            raise inputs.MissingBody
        return None
    kind = (call.content_type or "").split(";", 1)[0].strip().lower()
    if not inputs.is_json(kind):
        raise UnsupportedMediaType("send the body as application/json")
    return _validate(route.body, call.parsed, "body")


async def _send(send: Send, reply: Reply, request_id: str) -> None:
    headers = [*reply.headers, (b"x-request-id", request_id.encode())]
    if reply.stream is None:
        headers.append((b"content-length", str(len(reply.body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})
        return
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    async for chunk in reply.stream:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


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
