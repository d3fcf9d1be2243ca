"""Request helpers of the dashboard: templates, the session cookie, CSRF, refusals."""

from __future__ import annotations

import datetime as dt
import hmac
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from cardvault.accounts.errors import AccountsError
from cardvault.audit import Actor
from cardvault.crypto import generate_token
from cardvault.dashboard.sessions import SignedIn, resume_session
from cardvault.runtime import Runtime
from cardvault.store.types import utcnow

HERE = Path(__file__).parent
SESSION_COOKIE = "cardvault_session"
FORM_COOKIE = "cardvault_form"  # double-submit token for forms shown before sign-in
MAX_FORM = 64 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Same-origin: no one-time link leaves in a Referer, and browsers still send a real
    # Origin on our own form posts ("no-referrer" would make it "null").
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: dt.datetime | None) -> str:
    return "—" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _age(value: dt.datetime | None) -> str:
    if value is None:
        return "—"
    days = (utcnow() - value).days
    return "today" if days <= 0 else f"{days} day{'s' if days != 1 else ''}"


templates.filters["when"] = _when
templates.filters["age"] = _age


class Refusal(Exception):
    """A request the dashboard refuses, shown as a page with a clear message."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def source_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    signed: SignedIn | None = None,
    **context: Any,
) -> HTMLResponse:
    html = templates.get_template(template).render(
        request=request, signed=signed, path=request.url.path, **context
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def is_https(request: Request) -> bool:
    return request.url.scheme == "https" or runtime_of(request).settings.is_https


def set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        path="/dashboard",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


async def viewer(request: Request) -> SignedIn:
    """The signed-in person of this request; raises :class:`SignInRequired`."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        runtime = runtime_of(request)
        idle = dt.timedelta(minutes=runtime.settings.dashboard_idle_minutes)
        signed = await runtime.run_db(_resume, runtime, cookie, idle)
        if signed is not None:
            return signed
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise SignInRequired(target)


def _resume(runtime: Runtime, cookie: str, idle: dt.timedelta) -> SignedIn | None:
    with runtime.db.transaction() as session:
        return resume_session(session, runtime.hasher, cookie, now=utcnow(), idle=idle)


async def read_form(request: Request) -> dict[str, list[str]]:
    """The urlencoded body; the Origin header, when present, must be our own."""
    check_origin(request)
    body = await request.body()
    if len(body) > MAX_FORM:
        raise Refusal(413, "Form too large", "The form is larger than this page accepts.")
    form: dict[str, list[str]] = {}
    try:
        for name, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
            form.setdefault(name, []).append(value)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refusal(400, "Malformed form", "The form could not be read.") from exc
    return form


def field(form: dict[str, list[str]], name: str, default: str = "") -> str:
    values = form.get(name)
    return values[0].strip() if values else default


def check_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return  # not told (privacy settings): the CSRF token still decides
    own = {f"{request.url.scheme}://{request.headers.get('host', '')}"}
    own.add(runtime_of(request).settings.url)
    if origin.rstrip("/") not in own:
        raise Refusal(403, "Request refused", "This form was sent from another site.")


def check_csrf(form: dict[str, list[str]], expected: str | None) -> None:
    sent = field(form, "csrf_token")
    if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Refusal(
            403,
            "Request refused",
            "This form has expired or did not come from the dashboard (CSRF check failed). "
            "Go back, reload the page and try again.",
        )


async def signed_form(
    request: Request, *, write: bool = True
) -> tuple[SignedIn, dict[str, list[str]]]:
    """The signer and the form of a POST: session, CSRF token and (for changes) write access."""
    signed = await viewer(request)
    form = await read_form(request)
    check_csrf(form, signed.csrf_token)
    if write:
        require_write(signed)
    return signed, form


def require_write(signed: SignedIn) -> None:
    if not signed.who.can_write:
        raise Refusal(
            403, "Read-only access", "Your access is read-only: you can look but not change."
        )


def form_token(request: Request) -> str:
    """The double-submit token for a form shown before sign-in (reused if present)."""
    return request.cookies.get(FORM_COOKIE) or generate_token(24)


def with_form_cookie(request: Request, response: Response, token: str) -> Response:
    set_cookie(request, response, FORM_COOKIE, token, 3600)
    return response


def actor(signed: SignedIn, request: Request) -> Actor:
    """The signed-in person as the author of the audit records the services write."""
    return Actor("person", signed.who.email, signed.who.org_id, source_ip(request))


def audit_refusal(request: Request, error: AccountsError) -> None:
    """Write the record of a change the domain refused, once its transaction has rolled
    back (the service built it: ``AccountsError.refusal``)."""
    if error.refusal is not None:
        runtime_of(request).audit.add(error.refusal)


def sign_in_url(next_path: str) -> str:
    return "/dashboard/sign-in?next=" + quote(next_path, safe="")
