"""Signing in and out, and accepting an invitation."""

from __future__ import annotations

import datetime as dt
import re
import time
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Request
from starlette.responses import Response

from cardvault.accounts import people
from cardvault.accounts.errors import AccountsError, ValidationFailed
from cardvault.audit import AuditRecord, write_audit
from cardvault.dashboard.common import (
    FORM_COOKIE,
    SESSION_COOKIE,
    check_csrf,
    field,
    form_token,
    read_form,
    redirect,
    render,
    runtime_of,
    set_cookie,
    signed_form,
    source_ip,
    with_form_cookie,
)
from cardvault.dashboard.sessions import end_session, start_session
from cardvault.oauth.throttle import FailureThrottle
from cardvault.observability import labelled, metrics
from cardvault.runtime import Runtime
from cardvault.store.types import utcnow

router = APIRouter()
_UNSAFE_IN_NEXT = re.compile(r"[\x00-\x20\x7f\\]")


HOME = "/dashboard/settings"


def _safe_next(target: str) -> str:
    """Only a plainly written path inside the dashboard, else the home page: no scheme or
    host, and nothing a browser would resolve elsewhere (backslashes, control
    characters, ``..`` segments, even percent-encoded)."""
    parts = urlsplit(target)
    path = unquote(parts.path)
    if (
        parts.scheme
        or parts.netloc
        or not (path == "/dashboard" or path.startswith("/dashboard/"))
        or _UNSAFE_IN_NEXT.search(target)
        or _UNSAFE_IN_NEXT.search(path)
        or ".." in path.split("/")
        or "." in path.split("/")
    ):
        return HOME
    return target


@router.get("")
@router.get("/")
def home() -> Response:
    return redirect(HOME)


@router.get("/sign-in")
def sign_in_page(request: Request, next: str = HOME) -> Response:
    token = form_token(request)
    page = render(request, "sign_in.html", form_token=token, next=_safe_next(next))
    return with_form_cookie(request, page, token)


def _throttle(request: Request) -> FailureThrottle:
    throttle: FailureThrottle = request.app.state.signin_throttle
    return throttle


def _sign_in(runtime: Runtime, email: str, password: str, ip: str | None) -> str | None:
    """The new session's cookie for a correct email and password, else ``None``."""
    with runtime.db.transaction() as session:
        who = people.authenticate(session, email, password)
        if who is None:
            return None
        lifetime = dt.timedelta(hours=runtime.settings.dashboard_session_hours)
        cookie = start_session(
            session, runtime.hasher, who, source_ip=ip, now=utcnow(), lifetime=lifetime
        )
        write_audit(
            session,
            AuditRecord(
                actor_type="person",
                actor_id=who.email,
                action="dashboard.sign_in",
                outcome="success",
                org_id=who.org_id,
                target_type="person",
                target_id=who.email,
                source_ip=ip,
            ),
        )
        return cookie


def _refused(request: Request, email: str, next_path: str, status: int, message: str) -> Response:
    token = form_token(request)
    page = render(
        request,
        "sign_in.html",
        status=status,
        form_token=token,
        next=next_path,
        email=email,
        error=message,
    )
    return with_form_cookie(request, page, token)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await read_form(request)
    check_csrf(form, request.cookies.get(FORM_COOKIE))
    runtime = runtime_of(request)
    email = field(form, "email").lower()[:254]
    next_path = _safe_next(field(form, "next"))
    ip = source_ip(request) or "unknown"
    throttle, now = _throttle(request), time.monotonic()
    wait = throttle.retry_after(email, ip, now)
    if wait:
        labelled(metrics().throttled, "signin").inc()
        runtime.audit.add_repeated(
            AuditRecord(
                actor_type="anonymous",
                actor_id=email or None,
                action="dashboard.sign_in",
                outcome="failure",
                reason="too many failed sign-ins",
                source_ip=ip,
            )
        )
        page = _refused(
            request, email, next_path, 429, f"Too many failed sign-ins. Try again in {wait} s."
        )
        page.headers["Retry-After"] = str(wait)
        return page
    password = form.get("password", [""])[0]
    cookie = await runtime.run_db(_sign_in, runtime, email, password, ip)
    if cookie is None:
        throttle.failure(email, ip, now)
        runtime.audit.add(
            AuditRecord(
                actor_type="anonymous",
                actor_id=email or None,
                action="dashboard.sign_in",
                outcome="failure",
                reason="wrong email or password",
                source_ip=ip,
            )
        )
        return _refused(request, email, next_path, 401, "Wrong email or password.")
    throttle.success(email, ip, now)
    response = redirect(next_path)
    age = runtime.settings.dashboard_session_hours * 3600
    set_cookie(request, response, SESSION_COOKIE, cookie, age)
    response.delete_cookie(FORM_COOKIE, path="/dashboard")
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    await signed_form(request, write=False)
    runtime = runtime_of(request)
    cookie = request.cookies.get(SESSION_COOKIE, "")
    with runtime.db.transaction() as session:
        end_session(session, runtime.hasher, cookie)
    response = redirect("/dashboard/sign-in")
    response.delete_cookie(SESSION_COOKIE, path="/dashboard")
    return response


@router.get("/invitations/{token}")
def invitation_page(token: str, request: Request) -> Response:
    runtime = runtime_of(request)
    try:
        with runtime.db.sessions() as session:
            _invitation, email = people.pending_invitation(session, runtime.hasher, token, utcnow())
    except AccountsError as error:
        return render(request, "error.html", status=404, title="Invitation", message=str(error))
    csrf = form_token(request)
    page = render(request, "accept.html", form_token=csrf, email=email, token=token)
    return with_form_cookie(request, page, csrf)


@router.post("/invitations/{token}")
async def accept_invitation(token: str, request: Request) -> Response:
    form = await read_form(request)
    check_csrf(form, request.cookies.get(FORM_COOKIE))
    runtime = runtime_of(request)
    password = form.get("password", [""])[0]
    try:
        with runtime.db.transaction() as session:
            if password != form.get("confirm", [""])[0]:
                raise ValidationFailed("password", "the two passwords differ")
            people.accept_invitation(session, runtime.hasher, token, password, utcnow())
    except AccountsError as error:
        csrf = form_token(request)
        page = render(
            request,
            "accept.html",
            status=400,
            form_token=csrf,
            email=field(form, "email"),
            token=token,
            error=str(error),
        )
        return with_form_cookie(request, page, csrf)
    return redirect("/dashboard/sign-in?welcome=1")
