"""``create_app``: the one ASGI application that ``cardvault serve`` runs.

The HTTP layer (``web/http.py``) answers every request: the OAuth endpoints and the
vault API from its route table; the management API, the dashboard and the health
checks from the FastAPI application behind it, which gets the same input gate,
request id and error rendering.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

from cardvault import __version__
from cardvault.admin import members, service_accounts, vaults
from cardvault.api import bulk, cards, events, network_tokens, oauth, webhooks, whoami
from cardvault.api.oauth_openapi import add_oauth
from cardvault.dashboard import install as install_dashboard
from cardvault.runtime import Runtime
from cardvault.settings import Settings, get_settings
from cardvault.store.unavailable import RETRY_AFTER
from cardvault.web import errors, metrics, openapi
from cardvault.web.auth import authenticate
from cardvault.web.http import HttpLayer, Route
from cardvault.web.logging import configure_logging


def route_table(settings: Settings, service: Any) -> list[Route]:
    """Every route of the HTTP layer, in matching order."""
    return [
        *oauth.routes(settings, service),
        *whoami.ROUTES,
        *cards.ROUTES,
        *bulk.ROUTES,  # before /network-tokens/{pan_alias}
        *network_tokens.ROUTES,
        *webhooks.ROUTES,
        *events.ROUTES,
        *vaults.ROUTES,
        *service_accounts.ROUTES,
        *members.ROUTES,
        *metrics.routes(settings),
    ]


# What the FastAPI application serves, as the metrics name it (web/metrics.py).
_FALLBACK_NAMES = {"/healthz": "healthz", "/readyz": "readyz", "/openapi.json": "docs"}


def fallback_name(path: str) -> str:
    """The metrics' name of a path the route table does not have: one of a few fixed
    names (``unmatched`` for anything unknown), never the path a caller sent."""
    if path == "/dashboard" or path.startswith("/dashboard/"):
        return "dashboard"
    if path == "/docs" or path.startswith("/docs/"):
        return "docs"
    return _FALLBACK_NAMES.get(path, "unmatched")


class _Started:
    """What start-up made, read by every request (a plain attribute: Starlette's
    ``app.state`` costs a microsecond a read). Unset before start-up finishes."""

    runtime: Runtime
    oauth: oauth.OAuthService


def create_app(settings: Settings | None = None) -> HttpLayer:
    settings = settings or get_settings()
    started = _Started()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        to_thread.current_default_thread_limiter().total_tokens = settings.threads
        runtime = Runtime.open(settings)
        app.state.runtime = started.runtime = runtime
        app.state.oauth = started.oauth = oauth.OAuthService(runtime)
        await runtime.start()
        # Long-lived objects leave the collector's view; fewer, cheaper collections
        # keep the token endpoint's tail latency low.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 50)
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="cardvault",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.add_api_route("/healthz", alive, methods=["GET"], include_in_schema=False)
    app.add_api_route("/readyz", ready, methods=["GET"], include_in_schema=False)
    errors.install(app)
    routes = route_table(settings, lambda: started.oauth)
    openapi.install(app, routes, lambda document: add_oauth(document, settings.realm))
    install_dashboard(app, settings)  # after the API's handlers: it refines them for pages
    layer = HttpLayer(
        routes,
        fallback=app,
        runtime=lambda: started.runtime,
        authenticate=authenticate,
        oauth_paths=oauth.is_oauth_path,
        fallback_name=fallback_name,
        trusted_proxies=settings.proxy_networks,
    )
    metrics.install(layer)
    return layer


def openapi_document(settings: Settings | None = None) -> dict[str, Any]:
    """The OpenAPI document the service serves at ``/openapi.json``, built without
    opening a database, starting anything or changing the caller's logging (the docs
    are generated from it)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        app: Any = create_app(settings)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    while not isinstance(app, FastAPI):  # the HTTP layer -> FastAPI
        app = app.app
    document: dict[str, Any] = app.openapi()
    return document


def alive() -> JSONResponse:
    """Liveness: the process answers. Never touches the database, so an outage of
    the database does not get healthy processes restarted."""
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> JSONResponse:
    """Readiness: the database answers a query within a short timeout, from a thread
    and from the event loop (their connections are not the same)."""
    runtime: Runtime = request.app.state.runtime
    if await to_thread.run_sync(runtime.db.ping) and await runtime.db.aping():
        return JSONResponse({"status": "ok"})
    return JSONResponse(
        {"status": "unavailable", "detail": "database unreachable"},
        503,
        headers={"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"},
    )
