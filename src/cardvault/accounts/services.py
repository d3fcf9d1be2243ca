"""Service functions of the accounts domain. They take a session and plain values."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from cardvault.accounts.auditing import record, refusals
from cardvault.accounts.errors import LimitReached, NotFound, ValidationFailed
from cardvault.accounts.grants import check_grant, require
from cardvault.accounts.scopes import CARD_SCOPES, Holding, is_known
from cardvault.audit import Actor
from cardvault.crypto import (
    ClientSecret,
    SecretHasher,
    generate_client_id,
    generate_client_secret,
    random_id,
)
from cardvault.store.changes import publish_change
from cardvault.store.db import Database
from cardvault.store.direct import Direct, Source
from cardvault.store.models import Member, Organization, ServiceAccount, Vault

NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MIN_LIFESPAN, MAX_LIFESPAN = 60, 3600


@dataclass(frozen=True)
class ClientRecord:
    """What the token endpoint needs to know about a client, as plain values."""

    service_account_id: str
    client_id: str
    org_id: str
    vault_ids: tuple[str, ...]
    scopes: tuple[str, ...]
    lifespan: int
    secrets: tuple[tuple[bytes, float | None], ...]  # (hash, valid until as Unix time)
    refusal: str | None  # why the client may not get tokens, or None

    def valid_hashes(self, now: float) -> list[bytes]:
        """Hashes of the secrets valid at ``now``: the current one, and the previous
        one during a rotation's grace period."""
        return [h for h, until in self.secrets if until is None or until > now]


CLIENT_QUERY = (
    select(
        ServiceAccount.id,
        ServiceAccount.client_id,
        ServiceAccount.org_id,
        ServiceAccount.vault_ids,
        ServiceAccount.scopes,
        ServiceAccount.access_token_lifespan,
        ServiceAccount.status,
        ServiceAccount.secret_hash,
        ServiceAccount.previous_secret_hash,
        ServiceAccount.previous_secret_expires_at,
        Member.access,
    )
    .outerjoin(Member, Member.service_account_id == ServiceAccount.id)
    .where(ServiceAccount.client_id == bindparam("client_id"))
)


def client_record(row: Any) -> ClientRecord:
    """Turn a row of :data:`CLIENT_QUERY` into a :class:`ClientRecord`."""
    secrets: list[tuple[bytes, float | None]] = [(row.secret_hash, None)]
    expires = row.previous_secret_expires_at
    if row.previous_secret_hash is not None and expires is not None:
        secrets.append((row.previous_secret_hash, expires.timestamp()))
    refusal = None
    if row.status != "active":
        refusal = f"client {row.status}"
    elif row.access is None:
        refusal = "client is not a member of its organization"
    elif row.access != "write":
        refusal = "membership has read access only"
    return ClientRecord(
        service_account_id=row.id,
        client_id=row.client_id,
        org_id=row.org_id,
        vault_ids=tuple(row.vault_ids or ()),
        scopes=tuple(row.scopes or ()),
        lifespan=row.access_token_lifespan,
        secrets=tuple(secrets),
        refusal=refusal,
    )


_CLIENT = Direct(CLIENT_QUERY)  # run by the executor: the token endpoint reads it each time


def load_client(source: Source, client_id: str) -> ClientRecord | None:
    """The client named ``client_id``, or ``None`` if there is none (read with the
    database's reader, or in the transaction of a session or connection)."""
    row = _CLIENT.first(source, {"client_id": client_id})
    return None if row is None else client_record(row)


async def aload_client(db: Database, client_id: str) -> ClientRecord | None:
    """:func:`load_client` from the event loop (see :meth:`Database.aread`)."""
    row = await _CLIENT.afirst(db, {"client_id": client_id})
    return None if row is None else client_record(row)


def create_organization(session: Session, name: str) -> Organization:
    org = Organization(id=random_id("org_"), name=name)
    session.add(org)
    session.flush()
    return org


def create_vault(session: Session, org_id: str, name: str, *, actor: Actor | None) -> Vault:
    """A new vault of the organization, recorded as ``vault.create`` by ``actor``."""
    vault = Vault(id=random_id("vlt_"), org_id=org_id, name=name)
    session.add(vault)
    session.flush()
    record(
        session, actor, "vault.create", target_type="vault", target_id=vault.id, vault_id=vault.id
    )
    return vault


def _validate_service_account(
    session: Session,
    org_id: str,
    name: str,
    scopes: Sequence[str],
    vault_ids: Sequence[str],
    lifespan: int,
) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise ValidationFailed("name", "must be 1-64 characters of A-Z a-z 0-9 . _ -")
    unknown = [s for s in scopes if not is_known(s)]
    if unknown:
        raise ValidationFailed("scopes", f"unknown scope {unknown[0]!r}")
    if not scopes:
        raise ValidationFailed("scopes", "at least one scope is required")
    if not vault_ids and any(s in CARD_SCOPES for s in scopes):
        raise ValidationFailed("vault_ids", "card scopes need a vault")
    if not MIN_LIFESPAN <= lifespan <= MAX_LIFESPAN:
        raise ValidationFailed(
            "access_token_lifespan", f"must be between {MIN_LIFESPAN} and {MAX_LIFESPAN} seconds"
        )
    if vault_ids:
        found = set(
            session.scalars(
                select(Vault.id).where(Vault.org_id == org_id, Vault.id.in_(list(vault_ids)))
            )
        )
        missing = [v for v in vault_ids if v not in found]
        if missing:
            raise ValidationFailed("vault_ids", f"vault {missing[0]!r} is not in the organization")


def _check_cap(session: Session, org_id: str, cap: int) -> None:
    """Raise :class:`LimitReached` if the organization already has ``cap`` accounts."""
    count = session.scalar(
        select(func.count())
        .select_from(ServiceAccount)
        .where(ServiceAccount.org_id == org_id, ServiceAccount.status != "deleted")
    )
    if (count or 0) >= cap:
        raise LimitReached(f"the organization already has {cap} service accounts (the limit)")


def create_service_account(
    session: Session,
    hasher: SecretHasher,
    *,
    grantor: Holding,
    actor: Actor | None,
    org_id: str,
    name: str,
    scopes: Sequence[str],
    vault_ids: Sequence[str],
    lifespan: int,
    cap: int | None = None,
) -> tuple[ServiceAccount, ClientSecret]:
    """Create an account, its write membership and its first secret (returned once).

    ``grantor`` is what the caller holds: it needs ``service-accounts:write`` and may
    grant only what it holds, on the vaults it reaches (raises
    :class:`InsufficientScope`). ``cap``: the most live accounts the organization may
    have (raises :class:`LimitReached`). Recorded as ``service_account.create`` by
    ``actor``, refusals included.
    """
    with refusals(actor, "service_account.create", target_type="service_account", target_id=None):
        if cap is not None:
            _check_cap(session, org_id, cap)
        account, secret = _create_service_account(
            session, hasher, grantor, org_id, name, scopes, vault_ids, lifespan
        )
    details = {"scopes": account.scopes, "vault_ids": account.vault_ids}
    record(
        session,
        actor,
        "service_account.create",
        target_type="service_account",
        target_id=account.client_id,
        details=details,
    )
    return account, secret


def _create_service_account(
    session: Session,
    hasher: SecretHasher,
    grantor: Holding,
    org_id: str,
    name: str,
    scopes: Sequence[str],
    vault_ids: Sequence[str],
    lifespan: int,
) -> tuple[ServiceAccount, ClientSecret]:
    scopes = list(dict.fromkeys(scopes))
    vault_ids = list(dict.fromkeys(vault_ids))
    require(grantor, "service-accounts:write", parameter="org_id")
    _validate_service_account(session, org_id, name, scopes, vault_ids, lifespan)
    check_grant(grantor, Holding.of(scopes, vault_ids), field="scopes", vault_field="vault_ids")
    secret = generate_client_secret()
    account = ServiceAccount(
        id=random_id("sa_"),
        org_id=org_id,
        client_id=generate_client_id(),
        name=name,
        scopes=scopes,
        vault_ids=vault_ids,
        access_token_lifespan=lifespan,
        status="active",
        secret_hash=hasher.hash(secret),
    )
    session.add(account)
    session.flush()
    session.add(
        Member(
            id=random_id("mem_"),
            org_id=org_id,
            kind="service_account",
            service_account_id=account.id,
            access="write",
        )
    )
    session.flush()
    return account, secret


def get_service_account(session: Session, org_id: str, client_id: str) -> ServiceAccount:
    account = session.scalar(
        select(ServiceAccount).where(
            ServiceAccount.org_id == org_id,
            ServiceAccount.client_id == client_id,
            ServiceAccount.status != "deleted",
        )
    )
    if account is None:
        raise NotFound(f"service account {client_id} not found")
    return account


def delete_service_account(
    session: Session, org_id: str, client_id: str, now: dt.datetime, *, actor: Actor | None
) -> None:
    """Delete the account and its membership; every worker refuses its tokens promptly.
    Recorded as ``service_account.delete`` by ``actor``, refusals included."""
    action, kind = "service_account.delete", "service_account"
    with refusals(actor, action, target_type=kind, target_id=client_id):
        revoke_service_account(session, org_id, client_id, now)
    record(session, actor, action, target_type=kind, target_id=client_id)


def revoke_service_account(session: Session, org_id: str, client_id: str, now: dt.datetime) -> None:
    """Delete the account and its membership, as part of a change recorded by the caller
    (removing its member)."""
    account = get_service_account(session, org_id, client_id)
    account.status = "deleted"
    account.deleted_at = now
    member = session.scalar(select(Member).where(Member.service_account_id == account.id))
    if member is not None:
        session.delete(member)
    publish_change(session, "client", client_id)


def set_service_account_access(session: Session, org_id: str, client_id: str, access: str) -> None:
    if access not in ("read", "write"):
        raise ValidationFailed("access", "must be 'read' or 'write'")
    account = get_service_account(session, org_id, client_id)
    member = session.scalar(select(Member).where(Member.service_account_id == account.id))
    if member is None:
        raise NotFound(f"member {client_id} not found")
    member.access = access
    publish_change(session, "client", client_id)
