"""HTTP layer of the authorization server, as a small raw ASGI application.

The token endpoint may serve thousands of requests a second; a framework's request
and response objects cost about as much as issuing the token, so these few routes
read the ASGI scope directly. Every route answers under ``/auth/realms/{realm}/…``
and ``/realms/{realm}/…`` so clients written for either Keycloak layout work; other
paths go to the wrapped application unchanged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from cardvault.oauth.client_auth import ClientAuthenticator
from cardvault.oauth.device import DEVICE_GRANT, DeviceFlow
from cardvault.oauth.discovery import metadata
from cardvault.oauth.errors import InvalidRequest, OAuthError
from cardvault.oauth.forms import parse_form
from cardvault.oauth.introspection import IntrospectionEndpoint
from cardvault.oauth.revocation import RevocationEndpoint
from cardvault.oauth.token_endpoint import TokenEndpoint, TokenRequest
from cardvault.runtime import Runtime
from cardvault.store.types import utcnow
from cardvault.store.unavailable import is_unavailable
from cardvault.web.unavailable import HEADERS, OAUTH_BODY, log_unavailable

log = logging.getLogger(__name__)

JSON = (b"content-type", b"application/json")
NO_STORE = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
PREFIXES = ("/auth/realms/{realm}", "/realms/{realm}")
SUFFIXES = {
    "/protocol/openid-connect/token": ("POST", "token"),
    "/protocol/openid-connect/token/introspect": ("POST", "introspect"),
    "/protocol/openid-connect/revoke": ("POST", "revoke"),
    "/protocol/openid-connect/auth/device": ("POST", "device"),
    "/protocol/openid-connect/certs": ("GET", "certs"),
    "/.well-known/openid-configuration": ("GET", "discovery"),
    "/.well-known/oauth-authorization-server": ("GET", "discovery"),
}
# RFC 8414 §3: the well-known segment goes between the host and the issuer's path.
RFC8414_PREFIX = "/.well-known/oauth-authorization-server"
_REALM_PATH = re.compile(r"^(?:/\.well-known/oauth-authorization-server)?/(?:auth/)?realms/[^/]+")


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]


def reply(
    body: object, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None
) -> Reply:
    return Reply(status, orjson.dumps(body), [JSON, *(headers or [])])


def error_reply(error: OAuthError) -> Reply:
    extra = [(k.lower().encode(), v.encode()) for k, v in error.headers().items()]
    return reply(error.body(), error.status, NO_STORE + extra)


REALM_NOT_FOUND = reply({"error": "Realm does not exist"}, 404)
SERVER_ERROR = reply({"error": "server_error", "error_description": "Internal error"}, 500)
# The database is out of reach: RFC 6749's shape, 503 and Retry-After.
UNAVAILABLE = Reply(
    503, OAUTH_BODY, [JSON, *((k.lower().encode(), v.encode()) for k, v in HEADERS.items())]
)


@dataclass(frozen=True)
class Call:
    """What an OAuth handler needs from the HTTP request."""

    body: bytes
    content_type: str | None
    authorization: str | None
    source_ip: str


class OAuthService:
    """The OAuth endpoints, built from the runtime; plain calls in, :class:`Reply` out."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.runtime = runtime
        clients = ClientAuthenticator(
            runtime.clients.get, runtime.hasher, runtime.throttle, settings.realm
        )
        self.token_endpoint = TokenEndpoint(
            clients=clients,
            keyring=lambda: runtime.keyring,
            audit=runtime.audit,
            issuer=settings.issuer,
            audience=settings.audience,
            max_lifespan=settings.access_token_lifespan_max,
        )
        self.introspection = IntrospectionEndpoint(clients, runtime.verifier, runtime.audit)
        self.revocation = RevocationEndpoint(
            clients,
            lambda: runtime.keyring,
            runtime.db,
            settings.issuer,
            settings.audience,
            settings.token_leeway,
        )
        self.device_flow = DeviceFlow(
            db=runtime.db,
            hasher=runtime.hasher,
            keyring=lambda: runtime.keyring,
            audit=runtime.audit,
            issuer=settings.issuer,
            audience=settings.audience,
            verification_uri=f"{settings.url}/dashboard/device",
            interval=settings.device_poll_interval,
            token_lifespan=settings.access_token_lifespan_max,
        )
        self.discovery_reply = reply(
            metadata(settings.issuer, [settings.signing_alg]),
            headers=[(b"cache-control", b"public, max-age=300")],
        )

    async def token(self, call: Call) -> Reply:
        try:
            form = parse_form(call.content_type, call.body)
            if form.get("grant_type") == DEVICE_GRANT:
                answer = await run_in_threadpool(self.device_flow.token, form, call.source_ip)
            else:
                answer = self.token_endpoint.handle(
                    TokenRequest(form, call.authorization, call.source_ip)
                )
        except OAuthError as error:
            return error_reply(error)
        return reply(answer, headers=NO_STORE)

    async def introspect(self, call: Call) -> Reply:
        try:
            form = parse_form(call.content_type, call.body)
            answer = self.introspection.handle(form, call.authorization, call.source_ip)
        except OAuthError as error:
            return error_reply(error)
        return reply(answer, headers=NO_STORE)

    async def revoke(self, call: Call) -> Reply:
        try:
            form = parse_form(call.content_type, call.body)
            await run_in_threadpool(
                self.revocation.handle, form, call.authorization, call.source_ip
            )
        except OAuthError as error:
            return error_reply(error)
        return Reply(200, b"", NO_STORE)

    async def device(self, call: Call) -> Reply:
        """RFC 8628 §3.1: the device authorization endpoint."""
        try:
            form = parse_form(call.content_type, call.body)
            answer = await run_in_threadpool(self.device_flow.authorize, form)
        except OAuthError as error:
            return error_reply(error)
        return reply(answer, headers=NO_STORE)

    async def certs(self, _call: Call) -> Reply:
        jwks = self.runtime.keyring.jwks(utcnow())
        return reply(jwks, headers=[(b"cache-control", b"public, max-age=60")])

    async def discovery(self, _call: Call) -> Reply:
        return self.discovery_reply


Handler = Callable[[Call], Awaitable[Reply]]


class OAuthRoutes:
    """ASGI front: the configured realm's OAuth paths, then the wrapped application."""

    def __init__(self, app: ASGIApp, realm: str, service: Callable[[], OAuthService]) -> None:
        self.app = app
        self._service = service
        self._max_body = 0
        self._routes: dict[str, tuple[str, str]] = {}
        for prefix in PREFIXES:
            for suffix, route in SUFFIXES.items():
                self._routes[prefix.replace("{realm}", realm) + suffix] = route
        self._routes[f"{RFC8414_PREFIX}/auth/realms/{realm}"] = ("GET", "discovery")

    def configure(self, max_body: int) -> None:
        self._max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        route = self._routes.get(path)
        if route is None:
            if _REALM_PATH.match(path) and _is_oauth_suffix(path):
                await _send(send, REALM_NOT_FOUND)
            else:
                await self.app(scope, receive, send)
            return
        method, name = route
        if scope["method"] != method:
            await _send(
                send, reply({"error": "method_not_allowed"}, 405, [(b"allow", method.encode())])
            )
            return
        try:
            call = await self._read(scope, receive)
            result = await getattr(self._service(), name)(call)
        except OAuthError as error:
            result = error_reply(error)
        except Exception as error:
            if is_unavailable(error):
                log_unavailable(method, path, error)
                result = UNAVAILABLE
            else:
                log.exception("unhandled error on %s", path)
                result = SERVER_ERROR
        await _send(send, result)

    async def _read(self, scope: Scope, receive: Receive) -> Call:
        content_type = authorization = None
        length = -1
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-length":
                length = int(value) if value.isdigit() else self._max_body + 1
        if length > self._max_body:
            raise InvalidRequest("Request body too large")
        body = b""
        more = scope["method"] == "POST"
        while more:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > self._max_body:
                raise InvalidRequest("Request body too large")
            more = message.get("more_body", False)
        client = scope.get("client")
        return Call(body, content_type, authorization, client[0] if client else "unknown")


def _is_oauth_suffix(path: str) -> bool:
    return path.startswith(RFC8414_PREFIX) or any(path.endswith(s) for s in SUFFIXES)


async def _send(send: Send, result: Reply) -> None:
    headers = [*result.headers, (b"content-length", str(len(result.body)).encode())]
    await send({"type": "http.response.start", "status": result.status, "headers": headers})
    await send({"type": "http.response.body", "body": result.body})
