"""``Problem``: the one base of every error the service's API puts on the wire.

A domain raises a subclass that says what went wrong (``CardNotFound``,
``TooManyEndpoints``...); the class carries the HTTP status and the machine-readable
code, the instance a detail safe to show (never a card number or a secret) and, when
it helps, where the error is (``source``: a body field, a JSON pointer, a query
parameter or a header) and headers for the answer (``Retry-After``,
``WWW-Authenticate``). The HTTP layer renders every one of them the same way
(``web/errors.py``); nothing below the HTTP layer knows about HTTP beyond these
numbers.
"""

from __future__ import annotations


class Problem(Exception):
    status = 400
    code = "bad-request"

    def __init__(
        self,
        detail: str,
        *,
        source: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.source: dict[str, str] | None = source
        self.headers: dict[str, str] = headers or {}


class FieldProblem(Problem):
    """A problem with one field of the request's body (``field``, when known)."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail, source={"field": field} if field else None)
        self.field = field


class NotFound(Problem):
    status = 404
    code = "not-found"


class Unprocessable(Problem):
    status = 422
    code = "invalid-format"


class InsufficientScope(Problem):
    """RFC 6750 §3.1 ``insufficient_scope``: the caller's token lacks ``scope``."""

    status = 403
    code = "insufficient-scope"

    def __init__(self, scope: str, *, actor: tuple[str, str] | None = None) -> None:
        super().__init__(
            f"This request requires the scope {scope}",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )
        self.scope = scope
        self.actor = actor  # (actor type, actor id) of the caller, for the audit record
