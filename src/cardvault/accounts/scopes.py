"""Scopes a service account can hold, how they imply each other, and who may grant them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

CARD_SCOPES = (
    "cards:write",
    "cards:read",
    "network-tokens:write",
    "network-tokens:read",
    "webhooks:write",
    "webhooks:read",
)
MANAGEMENT_SCOPES = (
    "organization:admin",
    "service-accounts:write",
    "service-accounts:read",
    "members:write",
    "members:read",
    "vaults:write",
    "vaults:read",
)
ALL_SCOPES = CARD_SCOPES + MANAGEMENT_SCOPES


def person_scopes(access: str) -> list[str]:
    """Management scopes of a person's CLI token: all with ``write``, reading with ``read``."""
    if access == "write":
        return ["organization:admin"]
    return ["service-accounts:read", "members:read", "vaults:read"]


def is_known(scope: str) -> bool:
    return scope in ALL_SCOPES


def satisfies(granted: Iterable[str], required: str) -> bool:
    """True if ``granted`` covers ``required``.

    ``X:write`` implies ``X:read``; ``organization:admin`` implies every management scope.
    """
    held = set(granted)
    if required in held:
        return True
    area, _, level = required.partition(":")
    if level == "read" and f"{area}:write" in held:
        return True
    return required in MANAGEMENT_SCOPES and "organization:admin" in held


ADMIN = "organization:admin"


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


@dataclass(frozen=True)
class Holding:
    """Scopes someone holds and the vaults they are bound to.

    No vaults means bound to none. An organization admin bound to none reaches every
    vault of its organization; anyone else bound to none reaches no vault.
    """

    scopes: tuple[str, ...]
    vault_ids: tuple[str, ...] = ()

    @classmethod
    def of(cls, scopes: Iterable[str], vault_ids: Iterable[str] = ()) -> Holding:
        return cls(_unique(scopes), _unique(vault_ids))

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.scopes

    @property
    def reaches_every_vault(self) -> bool:
        return self.is_admin and not self.vault_ids

    def reaches(self, vault_id: str) -> bool:
        return self.reaches_every_vault or vault_id in self.vault_ids

    def may_grant_scope(self, scope: str) -> bool:
        """True if the scope is held (``X:write`` covers ``X:read``, the admin covers the
        management scopes); an organization admin also grants card scopes, on the vaults
        it reaches."""
        return satisfies(self.scopes, scope) or (scope in CARD_SCOPES and self.is_admin)


@dataclass(frozen=True)
class RefusedGrant:
    """The first scope a caller may not grant, and the vault when that is the reason."""

    scope: str
    vault_id: str | None = None


def refused_grant(caller: Holding, wanted: Holding) -> RefusedGrant | None:
    """May ``caller`` grant ``wanted``? ``None`` if so, else the first scope (and vault)
    refused. A pure function: the one statement of the rule (DESIGN §3).

    - every scope of ``wanted`` must be one ``caller`` may grant (:meth:`Holding.may_grant_scope`);
    - ``organization:admin`` bound to no vault reaches every vault, so only a caller
      that reaches every vault may grant it that way;
    - every vault of ``wanted`` must be one ``caller`` reaches; the refusal names the
      first scope granted there.
    """
    for scope in wanted.scopes:
        if not caller.may_grant_scope(scope):
            return RefusedGrant(scope)
        if scope == ADMIN and not wanted.vault_ids and not caller.reaches_every_vault:
            return RefusedGrant(scope)
    for vault_id in wanted.vault_ids:
        if wanted.scopes and not caller.reaches(vault_id):
            return RefusedGrant(wanted.scopes[0], vault_id)
    return None
