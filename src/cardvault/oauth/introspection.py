"""Token introspection (RFC 7662).

The caller authenticates like at the token endpoint. A service account may introspect
tokens of its own organization; anything else — malformed, expired, revoked, of a
revoked client, or of another organization — is ``{"active": false}`` (§2.2).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cardvault.audit import AuditBuffer, AuditRecord
from cardvault.crypto import TokenInvalid
from cardvault.oauth.access_tokens import AccessTokenVerifier
from cardvault.oauth.client_auth import ClientAuthenticator
from cardvault.oauth.errors import InvalidRequest

INACTIVE: dict[str, Any] = {"active": False}
_SHOWN_CLAIMS = (
    "scope",
    "client_id",
    "sub",
    "aud",
    "iss",
    "exp",
    "iat",
    "nbf",
    "jti",
    "org_id",
    "vault_id",
    "vault_ids",
)


@dataclass
class IntrospectionEndpoint:
    clients: ClientAuthenticator
    verifier: AccessTokenVerifier
    audit: AuditBuffer

    async def handle(
        self, form: Mapping[str, str], authorization: str | None, source_ip: str
    ) -> dict[str, Any]:
        creds = self.clients.read(form, authorization)
        caller = await self.clients.verify(creds, source_ip, time.time())
        token = form.get("token")
        if not token:
            raise InvalidRequest("Missing parameter: token")
        try:
            verified = self.verifier.verify(token)
        except TokenInvalid as invalid:
            self._record(caller.client_id, caller.org_id, source_ip, f"inactive: {invalid.reason}")
            return INACTIVE
        if verified.org_id != caller.org_id:
            self._record(caller.client_id, caller.org_id, source_ip, "inactive: other organization")
            return INACTIVE
        self._record(caller.client_id, caller.org_id, source_ip, None, verified.jti)
        claims = verified.claims
        answer: dict[str, Any] = {"active": True, "token_type": "Bearer"}
        answer.update({name: claims[name] for name in _SHOWN_CLAIMS if name in claims})
        return answer

    def _record(
        self,
        client_id: str,
        org_id: str,
        source_ip: str,
        reason: str | None,
        jti: str | None = None,
    ) -> None:
        self.audit.add(
            AuditRecord(
                actor_type="service_account",
                actor_id=client_id,
                action="token.introspect",
                outcome="success",
                reason=reason,
                org_id=org_id,
                target_type="access_token",
                target_id=jti,
                source_ip=source_ip,
            )
        )
