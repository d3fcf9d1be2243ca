"""Errors of the accounts domain."""


class AccountsError(Exception):
    """Base class; ``code`` is machine-readable, the message is safe to show."""

    code = "accounts-error"


class NotFound(AccountsError):
    code = "not-found"


class ValidationFailed(AccountsError):
    code = "invalid-format"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class LimitReached(AccountsError):
    """A configured cap (e.g. service accounts per organization) would be exceeded."""

    code = "limit-reached"
