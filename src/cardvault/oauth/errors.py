"""OAuth error responses (RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 6750 §3.1).

One class per wire error. ``description`` is shown to the client; ``detail`` is for the
audit log and server log only. Neither ever contains a secret.
"""

from __future__ import annotations


class OAuthError(Exception):
    """Base class; renders as ``{"error": …, "error_description": …}``."""

    error = "server_error"
    status = 400

    def __init__(self, description: str, *, detail: str | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.detail = detail or description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}

    def headers(self) -> dict[str, str]:
        return {}


class InvalidRequest(OAuthError):
    """RFC 6749 §5.2: missing, repeated or malformed parameter."""

    error = "invalid_request"


class InvalidClient(OAuthError):
    """RFC 6749 §5.2: client authentication failed. Always 401.

    The answer is the same whatever failed (unknown, disabled, deleted, wrong secret);
    ``detail`` records which for the audit log. With Basic authentication the response
    carries ``WWW-Authenticate``.
    """

    error = "invalid_client"
    status = 401

    def __init__(self, *, detail: str, basic: bool, realm: str) -> None:
        super().__init__("Invalid client or Invalid client credentials", detail=detail)
        self.basic = basic
        self.realm = realm

    def headers(self) -> dict[str, str]:
        if self.basic:
            return {"WWW-Authenticate": f'Basic realm="{self.realm}"'}
        return {}


class UnauthorizedClient(OAuthError):
    """RFC 6749 §5.2: the client may not use this grant type."""

    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    """RFC 6749 §5.2: the server does not support this grant type."""

    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    """RFC 6749 §5.2: a requested scope is unknown or not granted to the client."""

    error = "invalid_scope"


class TooManyFailures(OAuthError):
    """Throttled after repeated failed client authentication (429 with Retry-After)."""

    error = "slow_down"
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many failed authentication attempts; retry after {retry_after} seconds"
        )
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class InvalidGrant(OAuthError):
    """RFC 6749 §5.2: the grant (here a device code) is invalid, used or not this client's."""

    error = "invalid_grant"


class AuthorizationPending(OAuthError):
    """RFC 8628 §3.5: the person has not decided yet; poll again after the interval."""

    error = "authorization_pending"


class SlowDown(OAuthError):
    """RFC 8628 §3.5: polled too fast; the interval grows by 5 seconds."""

    error = "slow_down"


class AccessDenied(OAuthError):
    """RFC 8628 §3.5: the person denied the request."""

    error = "access_denied"


class ExpiredToken(OAuthError):
    """RFC 8628 §3.5: the device code expired; start again."""

    error = "expired_token"
