"""Token revocation (RFC 7009).

A client revokes its own tokens; a client holding ``organization:admin`` may revoke
any token of its organization. A revoked token's ``jti`` is denied by every worker
until the token would have expired. Unknown, malformed, expired and foreign tokens
answer 200 like a successful revocation (§2.2).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from anyio import to_thread
from sqlalchemy.exc import IntegrityError

from cardvault.accounts.scopes import satisfies
from cardvault.audit import AuditRecord, write_audit
from cardvault.crypto import KeyRing, TokenInvalid
from cardvault.oauth.client_auth import ClientAuthenticator
from cardvault.oauth.errors import InvalidRequest, UnauthorizedClient
from cardvault.store.changes import publish_change
from cardvault.store.db import Database
from cardvault.store.models import RevokedToken
from cardvault.store.types import utcnow


@dataclass
class RevocationEndpoint:
    clients: ClientAuthenticator
    keyring: Callable[[], KeyRing]
    db: Database
    issuer: str
    audience: str
    leeway: int

    async def handle(
        self, form: Mapping[str, str], authorization: str | None, source_ip: str
    ) -> None:
        creds = self.clients.read(form, authorization)
        caller = await self.clients.verify(creds, source_ip, time.time())
        token = form.get("token")
        if not token:
            raise InvalidRequest("Missing parameter: token")
        now = utcnow()
        try:
            claims = self.keyring().verify(
                token, issuer=self.issuer, audience=self.audience, leeway=self.leeway, now=now
            )
        except TokenInvalid:
            return
        if claims.get("org_id") != caller.org_id:
            return
        if claims["client_id"] != caller.client_id and not satisfies(
            caller.scopes, "organization:admin"
        ):
            raise UnauthorizedClient("The token was issued to another client")
        # A write (SQLite's may wait for the write lock): in a worker thread.
        await to_thread.run_sync(
            self._revoke, claims, caller.client_id, caller.org_id, source_ip, now
        )

    def _revoke(
        self,
        claims: Mapping[str, object],
        caller: str,
        org_id: str,
        source_ip: str,
        now: dt.datetime,
    ) -> None:
        jti = str(claims["jti"])
        expires = dt.datetime.fromtimestamp(int(str(claims["exp"])), dt.UTC)
        try:
            with self.db.transaction() as session:
                session.add(
                    RevokedToken(
                        jti=jti,
                        client_id=str(claims["client_id"]),
                        expires_at=expires,
                        revoked_at=now,
                    )
                )
                publish_change(session, "token", jti)
                write_audit(
                    session,
                    AuditRecord(
                        actor_type="service_account",
                        actor_id=caller,
                        action="token.revoke",
                        outcome="success",
                        org_id=org_id,
                        target_type="access_token",
                        target_id=jti,
                        source_ip=source_ip,
                    ),
                )
        except IntegrityError:
            pass  # already revoked
