"""Webhook endpoints of a vault: create, list, delete, rotate the signing secret.

A signing secret must be usable for HMAC, so it cannot be stored as a hash: it is
encrypted under the vault's data key (bound to the endpoint's id) and shown once, when
it is created or rotated.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from cardvault.crypto import random_id
from cardvault.crypto.envelope import VaultCipher
from cardvault.events import EVENT_TYPES
from cardvault.events.services import lock_for_endpoint
from cardvault.store.event_models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from cardvault.store.types import utcnow
from cardvault.webhooks.errors import EndpointNotFound, InvalidEvents, TooManyEndpoints

SECRET_FIELD = "webhook_secret"  # noqa: S105 (a field name)
PREVIOUS_FIELD = "webhook_previous_secret"
SECRET_PREFIX = "cvwh_"  # noqa: S105 (a prefix)


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_events(events: Sequence[str]) -> list[str]:
    """The subscribed event names, de-duplicated in the documented order."""
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise InvalidEvents(f"events: unknown event {unknown[0]}")
    if not events:
        raise InvalidEvents("events: name at least one event")
    return [name for name in EVENT_TYPES if name in events]


def create_endpoint(
    session: Session,
    cipher: VaultCipher,
    *,
    org_id: str,
    url: str,
    events: Sequence[str],
    limit: int,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint of the cipher's vault and its signing secret (shown once).

    The vault's row is locked first: events being written in the vault are either
    committed before (the endpoint gets none of them) or after this endpoint, and two
    endpoints made at once cannot both pass the limit."""
    names = check_events(events)
    lock_for_endpoint(session.connection(), cipher.vault_id)
    count = session.scalar(
        select(func.count())
        .select_from(WebhookEndpoint)
        .where(WebhookEndpoint.vault_id == cipher.vault_id)
    )
    if (count or 0) >= limit:
        raise TooManyEndpoints(f"a vault may have at most {limit} webhook endpoints")
    endpoint_id, secret, now = random_id("whe_"), _new_secret(), utcnow()
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        vault_id=cipher.vault_id,
        org_id=org_id,
        url=url,
        events=names,
        secret_encrypted=cipher.encrypt(secret.encode(), record_id=endpoint_id, field=SECRET_FIELD),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def list_endpoints(session: Session, vault_id: str) -> Sequence[WebhookEndpoint]:
    return session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.vault_id == vault_id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    ).all()


def get_endpoint(session: Session, vault_id: str, endpoint_id: str) -> WebhookEndpoint:
    """The vault's endpoint; other vaults' endpoints do not exist here."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.vault_id != vault_id:
        raise EndpointNotFound(f"webhook endpoint {endpoint_id} not found")
    return endpoint


def delete_endpoint(session: Session, vault_id: str, endpoint_id: str) -> None:
    """Delete the endpoint with its deliveries and their attempts."""
    endpoint = get_endpoint(session, vault_id, endpoint_id)
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)))
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    session.delete(endpoint)


def rotate_secret(
    session: Session, cipher: VaultCipher, endpoint_id: str, *, grace: dt.timedelta
) -> tuple[WebhookEndpoint, str]:
    """A new signing secret; the old one keeps signing too for ``grace`` (0: stops now)."""
    endpoint = get_endpoint(session, cipher.vault_id, endpoint_id)
    now = utcnow()
    if grace > dt.timedelta(0):
        old = cipher.decrypt(endpoint.secret_encrypted, record_id=endpoint.id, field=SECRET_FIELD)
        endpoint.previous_secret_encrypted = cipher.encrypt(
            old, record_id=endpoint.id, field=PREVIOUS_FIELD
        )
        endpoint.previous_secret_expires_at = now + grace
    else:
        endpoint.previous_secret_encrypted = None
        endpoint.previous_secret_expires_at = None
    secret = _new_secret()
    endpoint.secret_encrypted = cipher.encrypt(
        secret.encode(), record_id=endpoint.id, field=SECRET_FIELD
    )
    endpoint.updated_at = now
    return endpoint, secret


def signing_secrets(
    cipher: VaultCipher,
    endpoint_id: str,
    current: bytes,
    previous: bytes | None,
    previous_expires_at: dt.datetime | None,
    now: dt.datetime,
) -> list[bytes]:
    """The secrets that sign a delivery now: the current one, and the previous one
    while its grace period lasts."""
    found = [cipher.decrypt(current, record_id=endpoint_id, field=SECRET_FIELD)]
    if previous is not None and previous_expires_at is not None and previous_expires_at > now:
        found.append(cipher.decrypt(previous, record_id=endpoint_id, field=PREVIOUS_FIELD))
    return found
