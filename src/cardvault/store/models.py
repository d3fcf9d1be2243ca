"""Declarative models. One base, named constraints, portable column types."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cardvault.store.types import UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Rows that carry their writer's transaction id: all on PostgreSQL, none on SQLite.
TXID_SET = text("txid IS NOT NULL")

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Vault(Base):
    __tablename__ = "vaults"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Person(Base):
    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ServiceAccount(Base):
    """A confidential OAuth client bound to one organization and its vault(s).

    At most two secrets are valid at once: the current one and, during a rotation's
    grace period, the previous one until ``previous_secret_expires_at``.
    """

    __tablename__ = "service_accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    vault_ids: Mapped[list[str]] = mapped_column(JSON)
    access_token_lifespan: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="active")
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    secret_created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    previous_secret_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    previous_secret_expires_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]
    deleted_at: Mapped[dt.datetime | None]


class Member(Base):
    """A person or a service account in an organization, with read or write access."""

    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("org_id", "person_id", name="uq_members_org_person"),
        UniqueConstraint("org_id", "service_account_id", name="uq_members_org_service_account"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    person_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"))
    service_account_id: Mapped[str | None] = mapped_column(ForeignKey("service_accounts.id"))
    access: Mapped[str] = mapped_column(String(8), default="write")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_active_at: Mapped[dt.datetime | None]


class SigningKey(Base):
    """An access-token signing key; the private part is wrapped by the KEK."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(8))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    private_key_wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    activates_at: Mapped[dt.datetime]
    retired_at: Mapped[dt.datetime | None]


class WrappedSecret(Base):
    """Instance-wide secrets (e.g. the client-secret pepper), wrapped by the KEK."""

    __tablename__ = "wrapped_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InstallationState(Base):
    """Key/value facts about this installation (e.g. what ``cardvault init`` created)."""

    __tablename__ = "installation_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)


class AuditEvent(Base):
    """Append-only audit log (PCI DSS 10.2): who, what, when, where, outcome."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_org_time", "org_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    occurred_at: Mapped[dt.datetime]
    actor_type: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[str | None] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(128))
    org_id: Mapped[str | None] = mapped_column(String(40))
    vault_id: Mapped[str | None] = mapped_column(String(40))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(128))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Change(Base):
    """Changes every worker must apply promptly: revoked clients and tokens, new keys."""

    __tablename__ = "changes"
    __table_args__ = (
        # Readers follow the commit order (cardvault.store.feeds): by txid on
        # PostgreSQL; SQLite commits in id order and leaves txid empty (and so this
        # index too).
        Index(
            "ix_changes_txid",
            "txid",
            "id",
            sqlite_where=TXID_SET,
            postgresql_where=TXID_SET,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The writer's transaction id on PostgreSQL (a server default); NULL on SQLite.
    txid: Mapped[int | None] = mapped_column(BigInteger, server_default=FetchedValue())


class RevokedToken(Base):
    """Access tokens revoked before their expiry (RFC 7009); kept until ``expires_at``."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    revoked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DataKey(Base):
    """A vault's data-encryption key, one row per version, wrapped by the KEK."""

    __tablename__ = "data_keys"
    __table_args__ = (UniqueConstraint("vault_id", "version", name="uq_data_keys_vault_version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    vault_id: Mapped[str] = mapped_column(ForeignKey("vaults.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Card(Base):
    """An enrolled card. The PAN is stored only encrypted under the vault's data key;
    ``fingerprint`` is a keyed HMAC of the PAN (per organization) for de-duplication."""

    __tablename__ = "cards"
    __table_args__ = (
        UniqueConstraint("vault_id", "fingerprint", name="uq_cards_vault_fingerprint"),
        Index("ix_cards_vault_created", "vault_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    vault_id: Mapped[str] = mapped_column(ForeignKey("vaults.id"))
    org_id: Mapped[str] = mapped_column(String(40))
    pan_alias: Mapped[str] = mapped_column(String(40), unique=True)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    pan_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    data_key_version: Mapped[int] = mapped_column(Integer)
    bin: Mapped[str] = mapped_column(String(8))
    last4: Mapped[str] = mapped_column(String(4))
    brand: Mapped[str] = mapped_column(String(16))
    exp_month: Mapped[int] = mapped_column(Integer)
    exp_year: Mapped[int] = mapped_column(Integer)
    holder_info: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IdempotencyKey(Base):
    """The first answer to a POST with an ``Idempotency-Key``, kept for 24 hours."""

    __tablename__ = "idempotency_keys"

    vault_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    method_path: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class NetworkToken(Base):
    """A network token of a card, as the platform knows it.

    The token number is stored only encrypted under the vault's data key. At most one
    live (not DELETED or FAILED) token per card: ``live_card_id`` holds the card id
    while the token is live and NULL afterwards, under a unique constraint.
    """

    __tablename__ = "network_tokens"
    __table_args__ = (
        Index("ix_network_tokens_vault_created", "vault_id", "created_at", "id"),
        # GET /network-tokens/{pan_alias}: one index answers the alias within a vault.
        Index("ix_network_tokens_alias_vault", "pan_alias", "vault_id"),
        # The settling worker looks for PENDING tokens twice a second: without this it
        # would read every token of every vault each time.
        Index(
            "ix_network_tokens_pending",
            "updated_at",
            sqlite_where=text("state = 'PENDING'"),
            postgresql_where=text("state = 'PENDING'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    vault_id: Mapped[str] = mapped_column(ForeignKey("vaults.id"))
    org_id: Mapped[str] = mapped_column(String(40))
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id"), index=True)
    live_card_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    pan_alias: Mapped[str] = mapped_column(String(40))
    network: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    token_last4: Mapped[str | None] = mapped_column(String(4))
    token_exp_month: Mapped[int | None] = mapped_column(Integer)
    token_exp_year: Mapped[int | None] = mapped_column(Integer)
    payment_account_reference: Mapped[str | None] = mapped_column(String(29))
    failure_reason: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SimulatedToken(Base):
    """State kept by the built-in card-network simulators (the "network side")."""

    __tablename__ = "simulated_tokens"
    __table_args__ = (
        UniqueConstraint("network", "token_number", name="uq_simulated_tokens_network_number"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    network: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    token_number: Mapped[str] = mapped_column(String(19))
    exp_month: Mapped[int] = mapped_column(Integer)
    exp_year: Mapped[int] = mapped_column(Integer)
    card_exp_month: Mapped[int] = mapped_column(Integer)
    card_exp_year: Mapped[int] = mapped_column(Integer)
    card_last4: Mapped[str] = mapped_column(String(4))
    par: Mapped[str] = mapped_column(String(29))
    cryptogram_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    counter: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(16))
    settle_at: Mapped[dt.datetime | None]
    failure_reason: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SimulatedCryptogram(Base):
    """A cryptogram issued by a simulator, verifiable exactly once."""

    __tablename__ = "simulated_cryptograms"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_id: Mapped[str] = mapped_column(ForeignKey("simulated_tokens.id"), index=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    amount: Mapped[str | None] = mapped_column(String(32))
    currency_code: Mapped[str | None] = mapped_column(String(3))
    used_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DashboardSession(Base):
    """A person's browser session; only a keyed hash of the cookie value is stored."""

    __tablename__ = "dashboard_sessions"

    id_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), index=True)
    org_id: Mapped[str] = mapped_column(String(40))
    csrf_token: Mapped[str] = mapped_column(String(64))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class Invitation(Base):
    """A one-time link with which an invited person sets a password (hash stored only)."""

    __tablename__ = "invitations"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    created_by: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class DeviceAuthorization(Base):
    """A pending device authorization (RFC 8628 §3.2); the device code is stored hashed."""

    __tablename__ = "device_authorizations"

    device_code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    user_code: Mapped[str] = mapped_column(String(16), unique=True)
    client_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    person_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"))
    org_id: Mapped[str | None] = mapped_column(String(40))
    interval: Mapped[int] = mapped_column(Integer)
    last_polled_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


__all__ = [
    "AuditEvent",
    "Base",
    "Card",
    "Change",
    "DashboardSession",
    "DataKey",
    "DeviceAuthorization",
    "IdempotencyKey",
    "InstallationState",
    "Invitation",
    "Member",
    "NetworkToken",
    "Organization",
    "Person",
    "RevokedToken",
    "ServiceAccount",
    "SigningKey",
    "SimulatedCryptogram",
    "SimulatedToken",
    "Vault",
    "WrappedSecret",
]
