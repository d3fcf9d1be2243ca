"""JWT access tokens (RFC 9068): issuing and verifying.

Header ``typ: at+jwt``, ``alg`` and ``kid``; claims ``iss sub aud client_id azp scope
iat nbf exp jti`` plus ``org_id`` and ``vault_id`` (``vault_ids`` when an account
spans several vaults).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cardvault.accounts.services import ClientRecord
from cardvault.crypto import KeyRing, TokenInvalid
from cardvault.sync.revocations import RevocationState

CACHE_SIZE = 50_000


def build_claims(
    client: ClientRecord,
    scopes: Sequence[str],
    *,
    issuer: str,
    audience: str,
    now: int,
    lifespan: int,
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": client.service_account_id,
        "aud": audience,
        "client_id": client.client_id,
        "azp": client.client_id,
        "scope": " ".join(scopes),
        "org_id": client.org_id,
        "vault_id": client.vault_ids[0] if client.vault_ids else None,
        "iat": now,
        "nbf": now,
        "exp": now + lifespan,
        "jti": secrets.token_urlsafe(16),
    }
    if len(client.vault_ids) > 1:
        claims["vault_ids"] = list(client.vault_ids)
    return claims


@dataclass(frozen=True)
class VerifiedToken:
    """A verified access token's claims, as the resource server uses them."""

    claims: dict[str, Any]

    @property
    def client_id(self) -> str:
        return str(self.claims["client_id"])

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(str(self.claims.get("scope", "")).split())

    @property
    def org_id(self) -> str:
        return str(self.claims["org_id"])

    @property
    def vault_id(self) -> str | None:
        value = self.claims.get("vault_id")
        return None if value is None else str(value)

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])

    @property
    def expires_at(self) -> int:
        return int(self.claims["exp"])


class AccessTokenVerifier:
    """Verifies tokens against the local key set and refuses revoked ones.

    A verified signature is cached until the token expires, but the revocation state
    is consulted on every call, so a revocation always wins over the cache.
    """

    def __init__(
        self,
        keyring: Callable[[], KeyRing],
        revocations: RevocationState,
        *,
        issuer: str,
        audience: str,
        leeway: int,
        sync: Callable[[], None] = lambda: None,
    ) -> None:
        self._sync = sync
        self._keyring = keyring
        self._revocations = revocations
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._cache: OrderedDict[bytes, VerifiedToken] = OrderedDict()

    def verify(self, token: str) -> VerifiedToken:
        """The token's claims; raises :class:`TokenInvalid` with a loggable reason."""
        key = hashlib.sha256(token.encode()).digest()
        verified = self._cache.get(key)
        now = time.time()
        if verified is None or verified.expires_at + self._leeway <= now:
            claims = self._keyring().verify(
                token,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                now=dt.datetime.fromtimestamp(now, dt.UTC),
            )
            verified = VerifiedToken(claims)
            self._cache[key] = verified
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        self._sync()
        if self._revocations.is_token_revoked(verified.jti):
            raise TokenInvalid("token revoked")
        if self._revocations.is_client_refused(verified.client_id):
            raise TokenInvalid("client revoked")
        return verified
