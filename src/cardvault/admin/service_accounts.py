"""``/organizations/{org}/service-accounts``: credentials for one vault (DESIGN §1)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, Field

from cardvault.accounts import service_accounts as sa
from cardvault.accounts.errors import ValidationFailed
from cardvault.accounts.scopes import CARD_SCOPES
from cardvault.accounts.services import (
    create_service_account,
    delete_service_account,
    get_service_account,
)
from cardvault.admin.common import actor, audit_refusals, grantor, own_org
from cardvault.store.models import ServiceAccount
from cardvault.store.paging import CursorCodec
from cardvault.store.types import utcnow
from cardvault.web.http import Call, Route

VAULT_ANNOTATIONS = ("vgs.io/vault-id", "cardvault.io/vault-id")


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


class Listing(BaseModel):
    limit: Annotated[int, Field(ge=1, le=100)] = 50
    cursor: Annotated[
        str | None, Field(default=None, description="next_cursor of the previous page")
    ] = None


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


def create(call: Call) -> CreatedServiceAccount:
    """Create credentials; the secret is in this response only.

    The caller grants only scopes it holds, on vaults it is bound to (an organization
    admin bound to no vault reaches them all). Otherwise 403 ``insufficient-scope``
    with ``source: {"field": "scopes" | "vault_ids", "scope": …[, "vault_id": …]}``.
    """
    org_id, principal = own_org(call)
    body: ServiceAccountIn = call.body
    runtime = call.runtime
    settings = runtime.settings
    with audit_refusals(call), runtime.db.transaction() as session:
        account, secret = create_service_account(
            session,
            runtime.hasher,
            grantor=grantor(session, principal),
            actor=actor(call),
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


def list_accounts(call: Call) -> ServiceAccountPage:
    """The organization's service accounts, newest first, a page at a time."""
    org_id, _ = own_org(call)
    query: Listing = call.query
    runtime = call.runtime
    codec, listing = CursorCodec.derived(runtime.hasher.hash), f"service-accounts:{org_id}"
    after = codec.decode(query.cursor, listing) if query.cursor else None
    with runtime.db.sessions() as session:
        page, following = sa.list_service_accounts(session, org_id, limit=query.limit, cursor=after)
        domain = runtime.settings.members_domain
        return ServiceAccountPage(
            data=[_out(a, domain) for a in page],
            next_cursor=codec.encode(following, listing) if following else None,
        )


def get(call: Call) -> ServiceAccountOut:
    """One service account (never its secret)."""
    org_id, _ = own_org(call)
    runtime = call.runtime
    with runtime.db.sessions() as session:
        account = get_service_account(session, org_id, call.params["client_id"])
        return _out(account, runtime.settings.members_domain)


def delete(call: Call) -> None:
    """Delete the service account: its tokens stop working at once."""
    org_id, _ = own_org(call)
    client_id = call.params["client_id"]
    with audit_refusals(call), call.runtime.db.transaction() as session:
        delete_service_account(session, org_id, client_id, utcnow(), actor=actor(call))


def rotate(call: Call) -> RotatedSecret:
    """A new secret; the old one works for the grace period.

    The new secret acts as the account, so the caller must be able to grant all the
    account holds: otherwise 403 ``insufficient-scope`` with
    ``source: {"parameter": "client_id", "scope": …}``.
    """
    org_id, principal = own_org(call)
    client_id = call.params["client_id"]
    runtime = call.runtime
    grace = dt.timedelta(seconds=(call.body or RotateIn()).grace_period)
    with audit_refusals(call), runtime.db.transaction() as session:
        account, secret = sa.rotate_secret(
            session,
            runtime.hasher,
            org_id,
            client_id,
            grantor=grantor(session, principal),
            actor=actor(call),
            grace=grace,
            now=utcnow(),
        )
        assert account.previous_secret_expires_at is not None
        return RotatedSecret(
            client_id=client_id,
            client_secret=secret.reveal(),
            previous_secret_expires_at=account.previous_secret_expires_at,
        )


PATH, TAGS = "/organizations/{org_id}/service-accounts", ("service accounts",)
READ, WRITE = "service-accounts:read", "service-accounts:write"
ROUTES = [
    Route(
        "POST",
        PATH,
        create,
        scope=WRITE,
        vault=False,
        body=ServiceAccountIn,
        status=201,
        response=CreatedServiceAccount,
        tags=TAGS,
    ),
    Route(
        "GET",
        PATH,
        list_accounts,
        scope=READ,
        vault=False,
        query=Listing,
        response=ServiceAccountPage,
        tags=TAGS,
    ),
    Route(
        "GET",
        PATH + "/{client_id}",
        get,
        scope=READ,
        vault=False,
        response=ServiceAccountOut,
        tags=TAGS,
    ),
    Route("DELETE", PATH + "/{client_id}", delete, scope=WRITE, vault=False, status=204, tags=TAGS),
    Route(
        "POST",
        PATH + "/{client_id}/rotate-secret",
        rotate,
        scope=WRITE,
        vault=False,
        body=RotateIn,
        body_required=False,
        response=RotatedSecret,
        tags=TAGS,
    ),
]
