"""``create_app``: the one ASGI application that ``cardvault serve`` runs."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from cardvault import __version__
from cardvault.accounts.errors import AccountsError
from cardvault.admin import members, service_accounts, vaults
from cardvault.api import bulk, cards, events, network_tokens, webhooks, whoami
from cardvault.api.fast_path import FastPath
from cardvault.bulk.errors import BulkError
from cardvault.cards.errors import CardError
from cardvault.dashboard import install as install_dashboard
from cardvault.events.errors import UnknownEvent
from cardvault.network_tokens.errors import TokenNotFound
from cardvault.networks.provider import ProviderError
from cardvault.oauth.routes import OAuthRoutes, OAuthService
from cardvault.runtime import Runtime
from cardvault.settings import Settings, get_settings
from cardvault.store.paging import InvalidCursor
from cardvault.store.unavailable import RETRY_AFTER
from cardvault.web import openapi
from cardvault.web.errors import (
    ApiError,
    accounts_error_handler,
    api_error_handler,
    bulk_error_handler,
    card_error_handler,
    http_error_handler,
    invalid_cursor_handler,
    provider_error_handler,
    token_not_found_handler,
    validation_error_handler,
    webhook_error_handler,
)
from cardvault.web.inputs import InputLayer
from cardvault.web.logging import configure_logging
from cardvault.web.unavailable import DATABASE_ERRORS, unavailable_handler
from cardvault.webhooks.errors import WebhookError


def create_app(settings: Settings | None = None) -> InputLayer:
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        to_thread.current_default_thread_limiter().total_tokens = settings.threads
        runtime = Runtime.open(settings)
        app.state.runtime = runtime
        app.state.oauth = OAuthService(runtime)
        front.configure(settings.oauth_max_body)
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
    app.include_router(whoami.router)
    app.include_router(cards.router)
    app.include_router(bulk.router)  # before /network-tokens/{pan_alias}
    app.include_router(network_tokens.router)
    app.include_router(webhooks.router)
    app.include_router(events.router)
    app.include_router(vaults.router)
    app.include_router(service_accounts.router)
    app.include_router(members.router)
    app.add_api_route("/healthz", alive, methods=["GET"], include_in_schema=False)
    app.add_api_route("/readyz", ready, methods=["GET"], include_in_schema=False)
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(AccountsError, accounts_error_handler)
    app.add_exception_handler(CardError, card_error_handler)
    app.add_exception_handler(BulkError, bulk_error_handler)
    app.add_exception_handler(ProviderError, provider_error_handler)
    app.add_exception_handler(TokenNotFound, token_not_found_handler)
    app.add_exception_handler(WebhookError, webhook_error_handler)
    app.add_exception_handler(UnknownEvent, webhook_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(InvalidCursor, invalid_cursor_handler)
    openapi.install(app, settings.realm)
    for database_error in DATABASE_ERRORS:  # 503 when the database is out of reach
        app.add_exception_handler(database_error, unavailable_handler)
    install_dashboard(app, settings)  # after the API's handlers: it refines them for pages
    # The OAuth routes and the hottest vault calls sit in front and skip FastAPI.
    hot = FastPath(app, lambda: app.state.runtime)
    front = OAuthRoutes(hot, settings.realm, lambda: app.state.oauth)
    # Outermost: no route, fast or not, sees an input this layer refuses.
    return InputLayer(front)


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
    while not isinstance(app, FastAPI):  # InputLayer -> OAuthRoutes -> FastPath -> FastAPI
        app = app.app
    document: dict[str, Any] = app.openapi()
    return document


def alive() -> JSONResponse:
    """Liveness: the process answers. Never touches the database, so an outage of
    the database does not get healthy processes restarted."""
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> JSONResponse:
    """Readiness: the database answers a query within a short timeout."""
    runtime: Runtime = request.app.state.runtime
    if await to_thread.run_sync(runtime.db.ping):
        return JSONResponse({"status": "ok"})
    return JSONResponse(
        {"status": "unavailable", "detail": "database unreachable"},
        503,
        headers={"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"},
    )
