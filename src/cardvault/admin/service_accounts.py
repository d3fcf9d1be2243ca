"""``/organizations/{org}/service-accounts``: credentials for one vault (DESIGN §1)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from cardvault.accounts import service_accounts as sa
from cardvault.accounts.errors import ValidationFailed
from cardvault.accounts.scopes import CARD_SCOPES
from cardvault.accounts.services import (
    create_service_account,
    delete_service_account,
    get_service_account,
)
from cardvault.admin.common import actor, audit_refusals, grantor, own_org, runtime_of
from cardvault.store.models import ServiceAccount
from cardvault.store.paging import CursorCodec
from cardvault.store.types import utcnow
from cardvault.web.auth import Principal, require_scope

router = APIRouter(prefix="/organizations/{org_id}/service-accounts", tags=["service accounts"])

VAULT_ANNOTATIONS = ("vgs.io/vault-id", "cardvault.io/vault-id")
Reader = Annotated[Principal, Depends(require_scope("service-accounts:read"))]
Writer = Annotated[Principal, Depends(require_scope("service-accounts:write"))]


Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Scope = Annotated[str, Field(min_length=1, max_length=64)]
Annotation = Annotated[str, Field(max_length=255)]


class ServiceAccountIn(BaseModel):
    # Wide bounds at the edge; the accounts service says precisely what it accepts.
    name: Annotated[str, Field(max_length=255)]
    scopes: Annotated[list[Scope], Field(max_length=32)]
    vault_ids: Annotated[list[Id], Field(max_length=32)] | None = None
    annotations: Annotated[dict[Annotation, Annotation], Field(max_length=32)] | None = None
    access_token_lifespan: Annotated[int, Field(ge=0, le=366 * 86_400)] | None = None


class ServiceAccountOut(BaseModel):
    id: str
    client_id: str
    name: str
    member: str
    scopes: list[str]
    vault_ids: list[str]
    access_token_lifespan: int
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    secret_created_at: dt.datetime
    previous_secret_expires_at: dt.datetime | None


class CreatedServiceAccount(ServiceAccountOut):
    client_secret: str


class ServiceAccountPage(BaseModel):
    data: list[ServiceAccountOut]
    next_cursor: str | None


class RotateIn(BaseModel):
    grace_period: int = Field(
        default=86_400, ge=0, le=7 * 86_400, description="seconds the old secret keeps working"
    )


class RotatedSecret(BaseModel):
    client_id: str
    client_secret: str
    previous_secret_expires_at: dt.datetime


def _vault_ids(body: ServiceAccountIn) -> list[str]:
    """Vaults from ``vault_ids`` or from the reference's vault annotation."""
    if body.vault_ids is not None:
        return body.vault_ids
    for key in VAULT_ANNOTATIONS:
        if body.annotations and key in body.annotations:
            return [body.annotations[key]]
    if any(scope in CARD_SCOPES for scope in body.scopes):
        raise ValidationFailed("annotations", "missing vault annotation vgs.io/vault-id")
    return []


def _out(account: ServiceAccount, domain: str) -> ServiceAccountOut:
    return ServiceAccountOut(
        id=account.id,
        client_id=account.client_id,
        name=account.name,
        member=f"{account.client_id}@{domain}",
        scopes=list(account.scopes),
        vault_ids=list(account.vault_ids),
        access_token_lifespan=account.access_token_lifespan,
        created_at=account.created_at,
        last_used_at=account.last_used_at,
        secret_created_at=account.secret_created_at,
        previous_secret_expires_at=account.previous_secret_expires_at,
    )


@router.post("", response_model=CreatedServiceAccount, status_code=201)
def create(
    org_id: str, body: ServiceAccountIn, request: Request, principal: Writer
) -> CreatedServiceAccount:
    """Create credentials; the secret is in this response only.

    The caller grants only scopes it holds, on vaults it is bound to (an organization
    admin bound to no vault reaches them all). Otherwise 403 ``insufficient-scope``
    with ``source: {"field": "scopes" | "vault_ids", "scope": …[, "vault_id": …]}``.
    """
    own_org(org_id, principal)
    runtime = runtime_of(request)
    settings = runtime.settings
    with audit_refusals(request), runtime.db.transaction() as session:
        account, secret = create_service_account(
            session,
            runtime.hasher,
            grantor=grantor(session, principal),
            actor=actor(principal, request),
            org_id=org_id,
            name=body.name,
            scopes=body.scopes,
            vault_ids=_vault_ids(body),
            lifespan=body.access_token_lifespan or settings.access_token_lifespan,
            cap=settings.max_service_accounts_per_org,
        )
        return CreatedServiceAccount(
            **_out(account, settings.members_domain).model_dump(), client_secret=secret.reveal()
        )


@router.get("", response_model=ServiceAccountPage)
def list_accounts(
    org_id: str,
    request: Request,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> ServiceAccountPage:
    own_org(org_id, principal)
    runtime = runtime_of(request)
    codec, listing = CursorCodec.derived(runtime.hasher.hash), f"service-accounts:{org_id}"
    after = codec.decode(cursor, listing) if cursor else None  # else 400 invalid-cursor
    with runtime.db.sessions() as session:
        page, following = sa.list_service_accounts(session, org_id, limit=limit, cursor=after)
        domain = runtime.settings.members_domain
        return ServiceAccountPage(
            data=[_out(a, domain) for a in page],
            next_cursor=codec.encode(following, listing) if following else None,
        )


@router.get("/{client_id}", response_model=ServiceAccountOut)
def get(org_id: str, client_id: str, request: Request, principal: Reader) -> ServiceAccountOut:
    own_org(org_id, principal)
    runtime = runtime_of(request)
    with runtime.db.sessions() as session:
        account = get_service_account(session, org_id, client_id)
        return _out(account, runtime.settings.members_domain)


@router.delete("/{client_id}", status_code=204)
def delete(org_id: str, client_id: str, request: Request, principal: Writer) -> Response:
    own_org(org_id, principal)
    runtime = runtime_of(request)
    with audit_refusals(request), runtime.db.transaction() as session:
        delete_service_account(
            session, org_id, client_id, utcnow(), actor=actor(principal, request)
        )
    return Response(status_code=204)


@router.post("/{client_id}/rotate-secret", response_model=RotatedSecret)
def rotate(
    org_id: str,
    client_id: str,
    request: Request,
    principal: Writer,
    body: RotateIn | None = None,
) -> RotatedSecret:
    """A new secret; the old one works for the grace period.

    The new secret acts as the account, so the caller must be able to grant all the
    account holds: otherwise 403 ``insufficient-scope`` with
    ``source: {"parameter": "client_id", "scope": …}``.
    """
    own_org(org_id, principal)
    runtime = runtime_of(request)
    grace = dt.timedelta(seconds=(body or RotateIn()).grace_period)
    with audit_refusals(request), runtime.db.transaction() as session:
        account, secret = sa.rotate_secret(
            session,
            runtime.hasher,
            org_id,
            client_id,
            grantor=grantor(session, principal),
            actor=actor(principal, request),
            grace=grace,
            now=utcnow(),
        )
        assert account.previous_secret_expires_at is not None
        return RotatedSecret(
            client_id=client_id,
            client_secret=secret.reveal(),
            previous_secret_expires_at=account.previous_secret_expires_at,
        )
