"""Test data made through the real domain services against the server's own database."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy import update

from cardvault.accounts import services as accounts
from cardvault.accounts.grants import OPERATOR
from cardvault.crypto import KeyRing, LocalFileKeyProvider, SecretHasher
from cardvault.keys import load_keyring, load_pepper
from cardvault.store import create_database
from cardvault.store.changes import publish_change
from cardvault.store.models import ServiceAccount
from cardvault.store.types import utcnow
from tests.hygiene import CLIENT_SECRET, USED
from tests.servers import Server


@dataclass(frozen=True)
class Client:
    client_id: str
    client_secret: str
    org_id: str
    vault_ids: tuple[str, ...]
    service_account_id: str


class Factory:
    """Creates organizations, vaults and service accounts in a server's database."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.db = create_database(server.database_url)
        self.kek = LocalFileKeyProvider(server.data_dir / "kek.key", create=False)
        with self.db.sessions() as session:
            self.hasher = SecretHasher(load_pepper(session, self.kek))

    def organization(self, name: str = "Acme") -> str:
        with self.db.transaction() as session:
            return accounts.create_organization(session, name).id

    def vault(self, org_id: str, name: str = "main") -> str:
        with self.db.transaction() as session:
            return accounts.create_vault(session, org_id, name, actor=None).id

    def client(
        self,
        *,
        org_id: str | None = None,
        scopes: Sequence[str] = ("cards:write", "network-tokens:write"),
        vaults: int = 1,
        lifespan: int = 300,
        name: str = "calm",
    ) -> Client:
        org_id = org_id or self.organization()
        vault_ids = [self.vault(org_id, f"v{i}") for i in range(vaults)]
        with self.db.transaction() as session:
            account, secret = accounts.create_service_account(
                session,
                self.hasher,
                grantor=OPERATOR,
                actor=None,
                org_id=org_id,
                name=name,
                scopes=list(scopes),
                vault_ids=vault_ids,
                lifespan=lifespan,
            )
            USED.secret(CLIENT_SECRET, secret.reveal())
            return Client(account.client_id, secret.reveal(), org_id, tuple(vault_ids), account.id)

    def delete(self, client: Client) -> None:
        with self.db.transaction() as session:
            accounts.delete_service_account(
                session, client.org_id, client.client_id, utcnow(), actor=None
            )

    def disable(self, client: Client) -> None:
        """Disable the account as an operator would (status column), announcing it."""
        with self.db.transaction() as session:
            session.execute(
                update(ServiceAccount)
                .where(ServiceAccount.client_id == client.client_id)
                .values(status="disabled")
            )
            publish_change(session, "client", client.client_id)

    def set_access(self, client: Client, access: str) -> None:
        with self.db.transaction() as session:
            accounts.set_service_account_access(session, client.org_id, client.client_id, access)

    def keyring(self) -> KeyRing:
        with self.db.sessions() as session:
            return load_keyring(
                session, self.kek, retention=dt.timedelta(hours=2), allowed_algs=["ES256"]
            )

    def claims(self, client: Client, **overrides: Any) -> dict[str, Any]:
        """Claims of a token the server would issue to ``client``."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.server.issuer,
            "sub": client.service_account_id,
            "aud": self.server.url,
            "client_id": client.client_id,
            "azp": client.client_id,
            "scope": "cards:write",
            "org_id": client.org_id,
            "vault_id": client.vault_ids[0] if client.vault_ids else None,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": f"forged-{now}-{id(overrides)}",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not ...}

    def forge(self, claims: dict[str, Any], **headers: Any) -> str:
        """A token signed with the server's real current key, with chosen claims/headers."""
        key = self.keyring().current(dt.datetime.now(dt.UTC))
        header = {"kid": key.kid, "typ": "at+jwt", **headers}
        return jwt.encode(claims, key.private, algorithm=key.alg, headers=header)

    def close(self) -> None:
        self.db.dispose()
