"""Dependencies of the vault APIs: the caller's vault and its keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from cardvault.api.auth import Principal, authenticate, check_scope
from cardvault.audit import AuditRecord
from cardvault.runtime import Runtime
from cardvault.web.errors import ApiError


class NotBoundToVault(ApiError):
    status = 403
    code = "forbidden"


@dataclass(frozen=True)
class VaultCaller:
    """A vault-bound caller: who, which vault, and where from."""

    principal: Principal
    vault_id: str
    source_ip: str | None
    runtime: Runtime

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


def bind_vault(
    principal: Principal, scope: str, source_ip: str | None, runtime: Runtime
) -> VaultCaller:
    """The caller, if its token has ``scope`` and is bound to a vault."""
    check_scope(principal, scope)
    if principal.vault_id is None:
        raise NotBoundToVault("This token is not bound to a vault")
    return VaultCaller(principal, principal.vault_id, source_ip, runtime)


def vault_caller(scope: str) -> Callable[..., Awaitable[VaultCaller]]:
    """A dependency admitting tokens with ``scope`` that are bound to a vault."""

    async def dependency(request: Request) -> VaultCaller:
        # One flat dependency: nested FastAPI dependencies cost time on every request.
        source_ip = request.client.host if request.client else None
        return bind_vault(authenticate(request), scope, source_ip, request.app.state.runtime)

    dependency.__name__ = f"vault_{scope.replace(':', '_').replace('-', '_')}"
    return dependency
