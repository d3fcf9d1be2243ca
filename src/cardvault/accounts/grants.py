"""Who may grant what (DESIGN §3): the caller's holding and the checks that every
change of a credential or a membership runs, whatever the path (API, CLI, dashboard).

The rule itself is :func:`cardvault.accounts.scopes.refused_grant`; this module turns
its answer into :class:`~cardvault.accounts.errors.InsufficientScope`.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.accounts.errors import InsufficientScope
from cardvault.accounts.scopes import ADMIN, Holding, person_scopes, refused_grant, satisfies
from cardvault.store.models import ServiceAccount

# The local operator (``cardvault init``, operator commands): an organization admin
# bound to no vault, who may grant anything in the organization.
OPERATOR = Holding.of([ADMIN])


def person_holding(access: str) -> Holding:
    """A person's holding: the scopes of their access level, bound to no vault."""
    return Holding.of(person_scopes(access))


def account_holding(account: ServiceAccount) -> Holding:
    """What a service account holds: its scopes on its vaults."""
    return Holding.of(account.scopes, account.vault_ids)


def caller_holding(
    session: Session, *, org_id: str, scopes: Iterable[str], service_account_id: str | None
) -> Holding:
    """The holding of an API caller: the scopes of its token, on the vaults of its
    service account (``service_account_id``), or on none for a person (``None``).

    A service account that is gone or not in ``org_id`` holds nothing.
    """
    if service_account_id is None:
        return Holding.of(scopes)
    vault_ids = session.scalar(
        select(ServiceAccount.vault_ids).where(
            ServiceAccount.id == service_account_id,
            ServiceAccount.org_id == org_id,
            ServiceAccount.status == "active",
        )
    )
    if vault_ids is None:
        return Holding(())
    return Holding.of(scopes, vault_ids)


def require(caller: Holding, scope: str, *, parameter: str) -> None:
    """Raise :class:`InsufficientScope` unless ``caller`` holds ``scope``, the
    permission of the change itself (``parameter`` names the change's target)."""
    if not satisfies(caller.scopes, scope):
        raise InsufficientScope(
            f"this change needs the scope {scope}, which you do not hold",
            scope=scope,
            field=parameter,
            parameter=True,
        )


def check_grant(
    caller: Holding,
    wanted: Holding,
    *,
    field: str,
    vault_field: str | None = None,
    parameter: bool = False,
) -> None:
    """Raise :class:`InsufficientScope` unless ``caller`` may grant ``wanted``.

    ``field`` names where the scopes came from and ``vault_field`` where the vaults
    came from (``field`` too when not given); ``parameter`` says they are path
    parameters rather than body fields.
    """
    refused = refused_grant(caller, wanted)
    if refused is None:
        return
    scope, vault_id = refused.scope, refused.vault_id
    if vault_id is not None:
        message = f"you may not grant {scope} on vault {vault_id}: you are not bound to it"
        field = vault_field or field
    elif scope == ADMIN and satisfies(caller.scopes, ADMIN):
        message = (
            f"you may not grant {ADMIN} bound to no vault, which reaches every vault: "
            "you are bound to some vaults only"
        )
        field = vault_field or field
    else:
        message = f"you may not grant {scope}: you do not hold it"
    raise InsufficientScope(
        message, scope=scope, field=field, vault_id=vault_id, parameter=parameter
    )
