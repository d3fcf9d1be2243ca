"""Errors of the accounts domain."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cardvault.problems import Problem

if TYPE_CHECKING:
    from cardvault.audit import AuditRecord


class AccountsError(Problem):
    """Base class; ``code`` is machine-readable, ``status`` the HTTP status it maps to,
    ``source`` (or ``None``) names what was refused; the message is safe to show.
    ``refusal`` is the audit record of the refused change, set by the service that
    refused it (see :mod:`cardvault.accounts.auditing`); the caller writes it once the
    change's transaction has rolled back."""

    code = "accounts-error"
    status = 400
    refusal: AuditRecord | None = None


class NotFound(AccountsError):
    code = "not-found"
    status = 404


class ValidationFailed(AccountsError):
    code = "invalid-format"
    status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.source = {"field": field}


class LimitReached(AccountsError):
    """A configured cap (e.g. service accounts per organization) would be exceeded."""

    code = "limit-reached"
    status = 409


class InsufficientScope(AccountsError):
    """The caller does not hold a scope the change needs or would grant.

    ``source`` is ``{"field": <request field>, "scope": <the scope>}`` (``"parameter"``
    instead of ``"field"`` when the path names the target), plus ``"vault_id"`` when the
    scope is refused on a vault the caller is not bound to.
    """

    code = "insufficient-scope"
    status = 403

    def __init__(
        self,
        message: str,
        *,
        scope: str,
        field: str,
        vault_id: str | None = None,
        parameter: bool = False,
    ) -> None:
        super().__init__(message)
        self.scope, self.vault_id = scope, vault_id
        self.source = {("parameter" if parameter else "field"): field, "scope": scope}
        if vault_id is not None:
            self.source["vault_id"] = vault_id


class LastAdmin(AccountsError):
    """The change would leave the organization without a person with write access."""

    code = "last-admin"
    status = 409

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} is the last person with write access to the organization; "
            "give another person write access first"
        )
        self.source = {"parameter": "member"}
