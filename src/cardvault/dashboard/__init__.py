"""The dashboard: server-rendered pages under ``/dashboard`` for people.

Jinja2 templates and one stylesheet shipped in the package; no JavaScript build step
and no request to another host. Every page works without JavaScript.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from cardvault.accounts.errors import AccountsError, NotFound
from cardvault.dashboard import credentials, organization, pages, signin
from cardvault.dashboard.common import HERE, Refusal, SignInRequired, redirect, render, sign_in_url
from cardvault.oauth.throttle import FailureThrottle
from cardvault.settings import Settings
from cardvault.store.unavailable import DATABASE_ERRORS, RETRY_AFTER, is_unavailable
from cardvault.web.errors import database_handler, http_error_handler, problem_handler
from cardvault.web.unavailable import log_unavailable

PREFIX = "/dashboard"

__all__ = ["install"]


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the pages, the static files and the page-rendering error handlers."""
    for module in (signin, organization, credentials, pages):
        app.include_router(module.router, prefix=PREFIX, include_in_schema=False)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")
    app.state.signin_throttle = FailureThrottle(
        per_client_ip=settings.signin_email_ip_failures,
        per_ip=settings.signin_ip_failures,
        per_client=settings.signin_email_failures,
    )
    app.add_exception_handler(Refusal, _refusal)
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(AccountsError, _accounts_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for database_error in DATABASE_ERRORS:
        app.add_exception_handler(database_error, _unavailable)


async def _refusal(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refusal)
    return render(request, "error.html", status=exc.status, title=exc.title, message=exc.message)


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return redirect(sign_in_url(exc.next_path))


def _is_page(request: Request) -> bool:
    return request.url.path.startswith(PREFIX + "/") or request.url.path == PREFIX


async def _accounts_error(request: Request, exc: Exception) -> Response:
    if not _is_page(request):
        return await problem_handler(request, exc)
    assert isinstance(exc, AccountsError)
    status = 404 if isinstance(exc, NotFound) else 400
    return render(request, "error.html", status=status, title="Not possible", message=str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    if not _is_page(request):
        return await http_error_handler(request, exc)
    assert isinstance(exc, StarletteHTTPException)
    title = "Page not found" if exc.status_code == 404 else "Request refused"
    message = "There is no such page." if exc.status_code == 404 else str(exc.detail)
    return render(request, "error.html", status=exc.status_code, title=title, message=message)


async def _unavailable(request: Request, exc: Exception) -> Response:
    """The database is out of reach: a 503 page (a bug is re-raised: a 500)."""
    if not _is_page(request):
        return await database_handler(request, exc)
    if not is_unavailable(exc):
        raise exc
    log_unavailable(request.method, request.url.path, exc)
    page = render(
        request,
        "error.html",
        status=503,
        title="Temporarily unavailable",
        message="The service cannot reach its database right now. Try again in a moment.",
    )
    page.headers["Retry-After"] = str(RETRY_AFTER)
    return page
