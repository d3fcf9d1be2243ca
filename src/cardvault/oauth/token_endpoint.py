"""The token endpoint (RFC 6749 §3.2) for the client credentials grant (§4.4).

Written as the RFC's checklist: read parameters, authenticate the client, check the
grant type, settle the scope, issue the token. Plain values in, plain values out; the
HTTP layer is in :mod:`cardvault.api.oauth`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cardvault.accounts.scopes import satisfies
from cardvault.accounts.services import ClientRecord
from cardvault.audit import AuditBuffer, AuditRecord
from cardvault.crypto import KeyRing
from cardvault.oauth.access_tokens import build_claims
from cardvault.oauth.client_auth import ClientAuthenticator, Credentials
from cardvault.oauth.errors import (
    InvalidRequest,
    InvalidScope,
    OAuthError,
    TooManyFailures,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from cardvault.observability import labelled, metrics
from cardvault.store.types import utcnow

CLIENT_CREDENTIALS = "client_credentials"
THROTTLED = "slow_down: too many failed authentication attempts"
# Grant types this server knows but never grants to a service account.
NOT_FOR_SERVICE_ACCOUNTS = {
    "refresh_token": "Service accounts get no refresh tokens; ask again with client_credentials",
}


@dataclass(frozen=True)
class TokenRequest:
    form: Mapping[str, str]
    authorization: str | None
    source_ip: str


@dataclass
class TokenEndpoint:
    clients: ClientAuthenticator
    keyring: Callable[[], KeyRing]
    audit: AuditBuffer
    issuer: str
    audience: str
    max_lifespan: int

    async def handle(self, request: TokenRequest) -> dict[str, Any]:
        """The token response; raises an :class:`OAuthError` for every refusal."""
        now = time.time()
        creds: Credentials | None = None
        try:
            grant_type = self._require_grant_type(request.form)
            creds = self.clients.read(request.form, request.authorization)
            client = await self.clients.verify(creds, request.source_ip, now)
            self._check_grant_type(grant_type)
            scopes = self._settle_scope(client, request.form.get("scope"))
            return self._issue(client, scopes, request.source_ip, int(now))
        except OAuthError as error:
            self._record_refusal(error, creds, request)
            count_refusal(error)
            raise

    @staticmethod
    def _require_grant_type(form: Mapping[str, str]) -> str:
        grant_type = form.get("grant_type")
        if not grant_type:
            raise InvalidRequest("Missing parameter: grant_type")
        return grant_type

    @staticmethod
    def _check_grant_type(grant_type: str) -> None:
        if grant_type == CLIENT_CREDENTIALS:
            return
        if grant_type in NOT_FOR_SERVICE_ACCOUNTS:
            raise UnauthorizedClient(NOT_FOR_SERVICE_ACCOUNTS[grant_type])
        raise UnsupportedGrantType(f"Unsupported grant_type: {grant_type[:64]}")

    @staticmethod
    def _settle_scope(client: ClientRecord, requested: str | None) -> list[str]:
        """The client's scopes, or the requested subset of them (RFC 6749 §3.3)."""
        if requested is None or not requested.strip():
            return list(client.scopes)
        scopes = list(dict.fromkeys(requested.split()))
        for scope in scopes:
            if not satisfies(client.scopes, scope):
                raise InvalidScope(f"Scope not granted to this client: {scope[:64]}")
        return scopes

    def _issue(
        self, client: ClientRecord, scopes: list[str], source_ip: str, now: int
    ) -> dict[str, Any]:
        lifespan = min(client.lifespan, self.max_lifespan)
        claims = build_claims(
            client, scopes, issuer=self.issuer, audience=self.audience, now=now, lifespan=lifespan
        )
        token = self.keyring().sign(claims, utcnow())
        labelled(metrics().tokens_issued, CLIENT_CREDENTIALS).inc()
        self.audit.add(
            AuditRecord(
                actor_type="service_account",
                actor_id=client.client_id,
                action="token.issue",
                outcome="success",
                org_id=client.org_id,
                vault_id=claims["vault_id"],
                target_type="access_token",
                target_id=claims["jti"],
                source_ip=source_ip,
            )
        )
        return {
            "access_token": token,
            "expires_in": lifespan,
            "refresh_expires_in": 0,
            "token_type": "bearer",
            "not-before-policy": 0,
            "scope": claims["scope"],
        }

    def _record_refusal(
        self, error: OAuthError, creds: Credentials | None, request: TokenRequest
    ) -> None:
        client_id = creds.client_id if creds else request.form.get("client_id")
        # A throttled caller may keep knocking: those refusals are counted, not each
        # written, under one reason (the detail names the seconds left, which change).
        throttled = isinstance(error, TooManyFailures)
        add = self.audit.add_repeated if throttled else self.audit.add
        add(
            AuditRecord(
                actor_type="service_account" if client_id else "anonymous",
                actor_id=client_id[:128] if client_id else None,
                action="token.issue",
                outcome="failure",
                reason=THROTTLED if throttled else f"{error.error}: {error.detail}"[:128],
                source_ip=request.source_ip,
            )
        )


def count_refusal(error: OAuthError) -> None:
    """A refused token request in the metrics, by its RFC 6749 error code (throttled
    ones apart)."""
    reason = "throttled" if isinstance(error, TooManyFailures) else error.error
    labelled(metrics().tokens_refused, reason).inc()
