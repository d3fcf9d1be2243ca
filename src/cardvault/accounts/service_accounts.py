"""Service-account management beyond creation: listing, secret rotation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.accounts.auditing import record, refusals
from cardvault.accounts.errors import ValidationFailed
from cardvault.accounts.grants import account_holding, check_grant, require
from cardvault.accounts.scopes import Holding
from cardvault.accounts.services import get_service_account
from cardvault.audit import Actor
from cardvault.crypto import ClientSecret, SecretHasher, generate_client_secret
from cardvault.store.changes import publish_change
from cardvault.store.models import ServiceAccount
from cardvault.store.paging import Cursor, newest_first

MAX_GRACE = dt.timedelta(days=7)


def list_service_accounts(
    session: Session, org_id: str, *, limit: int, cursor: Cursor | None
) -> tuple[Sequence[ServiceAccount], Cursor | None]:
    """A page of live accounts, newest first, and the cursor of the next page (or None)."""
    query = select(ServiceAccount).where(
        ServiceAccount.org_id == org_id, ServiceAccount.status != "deleted"
    )
    return newest_first(session, ServiceAccount, query, limit=limit, cursor=cursor)


def rotate_secret(
    session: Session,
    hasher: SecretHasher,
    org_id: str,
    client_id: str,
    *,
    grantor: Holding,
    actor: Actor | None,
    grace: dt.timedelta,
    now: dt.datetime,
) -> tuple[ServiceAccount, ClientSecret]:
    """Issue a new secret; the current one stays valid for ``grace``, an older one not at all.

    At most two secrets are ever valid: the new one and the one it replaces. Whoever
    gets the new secret can act as the account, so ``grantor`` must be allowed to grant
    everything the account holds (raises :class:`InsufficientScope`). Recorded as
    ``service_account.rotate_secret`` by ``actor``, refusals included.
    """
    action, kind = "service_account.rotate_secret", "service_account"
    with refusals(actor, action, target_type=kind, target_id=client_id):
        require(grantor, "service-accounts:write", parameter="client_id")
        if grace < dt.timedelta(0) or grace > MAX_GRACE:
            raise ValidationFailed("grace_period", "must be between 0 seconds and 7 days")
        account = get_service_account(session, org_id, client_id)
        check_grant(grantor, account_holding(account), field="client_id", parameter=True)
    secret = generate_client_secret()
    account.previous_secret_hash = account.secret_hash
    account.previous_secret_expires_at = now + grace
    account.secret_hash = hasher.hash(secret)
    account.secret_created_at = now
    publish_change(session, "client", client_id)
    details = {"grace_period": int(grace.total_seconds())}
    record(session, actor, action, target_type=kind, target_id=client_id, details=details)
    return account, secret
