"""Who acts: the verified caller of a request (:class:`Principal`) and, for the vault
APIs, that caller bound to its vault (:class:`VaultCaller`), with the services a use
case reaches through it. The HTTP layer makes them from a verified access token
(``web/auth.py``); the use cases in the domain packages take them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from cardvault.accounts.scopes import satisfies
from cardvault.audit import AuditBuffer, AuditRecord
from cardvault.crypto import SecretHasher
from cardvault.keys.vault_keys import VaultKeys
from cardvault.networks.provider import Providers
from cardvault.problems import InsufficientScope
from cardvault.settings import Settings
from cardvault.store.db import Database
from cardvault.store.group_commit import GroupCommit

T = TypeVar("T")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the service account (or person signed in with ``cardvault login``),
    its organization, vault and scopes."""

    client_id: str
    service_account_id: str
    org_id: str
    vault_id: str | None
    scopes: tuple[str, ...]
    person_email: str | None = None

    @property
    def actor_type(self) -> str:
        return "service_account" if self.person_email is None else "person"

    @property
    def actor_id(self) -> str:
        return self.client_id if self.person_email is None else self.person_email

    def require(self, scope: str) -> None:
        """Raise :class:`InsufficientScope` (audited where it is rendered) unless the
        caller's scopes cover ``scope``."""
        if not satisfies(self.scopes, scope):
            raise InsufficientScope(scope, actor=(self.actor_type, self.actor_id))


class Services(Protocol):
    """What the vault's use cases use of the running service (``runtime.Runtime``)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def db(self) -> Database: ...
    @property
    def vault_keys(self) -> VaultKeys: ...
    @property
    def hasher(self) -> SecretHasher: ...
    @property
    def writes(self) -> GroupCommit: ...
    @property
    def audit(self) -> AuditBuffer: ...
    @property
    def providers(self) -> Providers: ...
    async def run_db(self, fn: Callable[..., T], *args: Any) -> T: ...


@dataclass(frozen=True)
class VaultCaller:
    """A vault-bound caller: who, which vault, where from, and the services it uses."""

    principal: Principal
    vault_id: str
    source_ip: str | None
    runtime: Services

    @property
    def org_id(self) -> str:
        return self.principal.org_id

    def record(
        self, action: str, target_type: str, target_id: str | None, **details: Any
    ) -> AuditRecord:
        """An audit record of this caller acting on a resource of its vault."""
        return AuditRecord(
            actor_type="service_account",
            actor_id=self.principal.client_id,
            action=action,
            outcome="success",
            org_id=self.org_id,
            vault_id=self.vault_id,
            target_type=target_type,
            target_id=target_id,
            source_ip=self.source_ip,
            details=details or None,
        )
