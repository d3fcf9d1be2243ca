"""Models of lifecycle events (the outbox) and webhook endpoints and deliveries.

Kept apart from :mod:`cardvault.store.models` to keep modules small; same declarative
base. Importing this module registers the tables (the Alembic environment does).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from cardvault.store.models import TXID_SET, Base, BigId
from cardvault.store.types import utcnow


class Event(Base):
    """A lifecycle event, written in the same transaction as the change it reports
    (a transactional outbox). ``payload`` is the exact JSON body webhooks carry;
    ``dispatched`` turns true once the delivery worker has made its deliveries."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_vault_seq", "vault_id", "seq"),
        # GET /events follows the commit order (cardvault.store.feeds): by txid on
        # PostgreSQL; SQLite commits in seq order and leaves txid empty (and so this
        # index too).
        Index(
            "ix_events_vault_txid",
            "vault_id",
            "txid",
            "seq",
            sqlite_where=TXID_SET,
            postgresql_where=TXID_SET,
        ),
        Index(
            "ix_events_undispatched",
            "seq",
            sqlite_where=text("dispatched = 0"),
            postgresql_where=text("dispatched = false"),
        ),
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    event: Mapped[str] = mapped_column(String(64))
    org_id: Mapped[str] = mapped_column(String(40))
    vault_id: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[dt.datetime]
    payload: Mapped[str] = mapped_column(Text)
    dispatched: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The writer's transaction id on PostgreSQL (a server default); NULL on SQLite.
    txid: Mapped[int | None] = mapped_column(BigInteger, server_default=FetchedValue())


class WebhookEndpoint(Base):
    """A merchant's receiver of a vault's events, with its own signing secret (stored
    encrypted under the vault's data key; during a rotation's grace period the
    previous secret signs too)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    vault_id: Mapped[str] = mapped_column(ForeignKey("vaults.id"), index=True)
    org_id: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    previous_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event to one endpoint: ``pending`` until acknowledged (``succeeded``) or
    given up (``failed``). A worker claims it by setting ``locked_until``."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_seq", name="uq_webhook_deliveries_endpoint_event"),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_subject", "endpoint_id", "subject", "state", "event_seq"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event_seq: Mapped[int] = mapped_column(ForeignKey("events.seq"))
    subject: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime]
    locked_until: Mapped[dt.datetime | None]
    give_up_at: Mapped[dt.datetime]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(255))
    delivered_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery: when, the status code or the error."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    attempted_at: Mapped[dt.datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(255))
    duration_ms: Mapped[int] = mapped_column(Integer)


__all__ = ["Event", "WebhookAttempt", "WebhookDelivery", "WebhookEndpoint"]
