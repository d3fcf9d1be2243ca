"""The authorization server's endpoints, as routes of the one HTTP layer.

Every endpoint answers under ``/auth/realms/{realm}/…`` and ``/realms/{realm}/…`` so
clients written for either Keycloak layout work; another realm's path answers
Keycloak's ``{"error": "Realm does not exist"}``. The layer reads the body (within
``oauth_max_body``) and renders every refusal in RFC 6749 §5.2's shape (the routes'
``style``); clients authenticate in the handlers, not with a bearer token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool

from cardvault.oauth.client_auth import ClientAuthenticator
from cardvault.oauth.device import DEVICE_GRANT, DeviceFlow
from cardvault.oauth.discovery import metadata
from cardvault.oauth.forms import parse_form
from cardvault.oauth.introspection import IntrospectionEndpoint
from cardvault.oauth.revocation import RevocationEndpoint
from cardvault.oauth.token_endpoint import TokenEndpoint, TokenRequest
from cardvault.runtime import Runtime
from cardvault.settings import Settings
from cardvault.store.types import utcnow
from cardvault.web.http import Call, Route
from cardvault.web.reply import Reply

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
OAUTH_PATHS = ("/auth/realms/", "/realms/", "/.well-known/")
REALM_NOT_FOUND = Reply.json({"error": "Realm does not exist"}, 404)


def is_oauth_path(path: str) -> bool:
    """Whether refusals on ``path`` take RFC 6749's shape (the realm's paths)."""
    return path.startswith(OAUTH_PATHS)


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
        self.discovery_reply = Reply.json(
            metadata(settings.issuer, [settings.signing_alg]),
            headers=[(b"cache-control", b"public, max-age=300")],
        )

    async def token(self, call: Call) -> Reply:
        """RFC 6749 §3.2: the token endpoint (client credentials, device code)."""
        form = parse_form(call.content_type, call.raw)
        if form.get("grant_type") == DEVICE_GRANT:
            answer = await run_in_threadpool(self.device_flow.token, form, call.source_ip)
        else:
            answer = await self.token_endpoint.handle(
                TokenRequest(form, call.authorization, call.source_ip)
            )
        return Reply.json(answer, headers=NO_STORE)

    async def introspect(self, call: Call) -> Reply:
        """RFC 7662: token introspection."""
        form = parse_form(call.content_type, call.raw)
        answer = await self.introspection.handle(form, call.authorization, call.source_ip)
        return Reply.json(answer, headers=NO_STORE)

    async def revoke(self, call: Call) -> Reply:
        """RFC 7009: token revocation."""
        form = parse_form(call.content_type, call.raw)
        await self.revocation.handle(form, call.authorization, call.source_ip)
        return Reply(200, b"", NO_STORE)

    async def device(self, call: Call) -> Reply:
        """RFC 8628 §3.1: the device authorization endpoint."""
        form = parse_form(call.content_type, call.raw)
        answer = await run_in_threadpool(self.device_flow.authorize, form)
        return Reply.json(answer, headers=NO_STORE)

    async def certs(self, _call: Call) -> Reply:
        """The JSON Web Key Set of the token signing keys."""
        jwks = self.runtime.keyring.jwks(utcnow())
        return Reply.json(jwks, headers=[(b"cache-control", b"public, max-age=60")])

    async def discovery(self, _call: Call) -> Reply:
        """OpenID Connect discovery and RFC 8414 metadata."""
        return self.discovery_reply


Handler = Callable[[Call], Awaitable[Reply]]


def routes(settings: Settings, service: Callable[[], OAuthService]) -> list[Route]:
    """The OAuth endpoints of ``settings.realm`` under both layouts."""

    def endpoint(name: str) -> Handler:
        async def handle(call: Call) -> Reply:
            if call.params["realm"] != settings.realm:
                return REALM_NOT_FOUND
            handler: Handler = getattr(service(), name)
            return await handler(call)

        handle.__doc__ = getattr(OAuthService, name).__doc__
        handle.__name__ = name
        return handle

    table = []
    paths = [(prefix + suffix, route) for prefix in PREFIXES for suffix, route in SUFFIXES.items()]
    paths.append((f"{RFC8414_PREFIX}/auth/realms/{{realm}}", ("GET", "discovery")))
    for path, (method, name) in paths:
        table.append(
            Route(
                method,
                path,
                endpoint(name),
                bearer=False,
                vault=False,
                style="oauth",
                max_body=settings.oauth_max_body,
                document=False,  # described by cardvault.api.oauth_openapi
            )
        )
    return table
