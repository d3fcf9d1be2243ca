"""The device authorization grant (RFC 8628) for people signing in the CLI.

``cardvault login`` asks for a device code (§3.1-3.2), shows the person a short user
code and the verification URI, and polls the token endpoint (§3.4-3.5) while the
person approves or denies the request in the dashboard. The access token issued is
the person's: ``sub`` is the person, the scopes follow their access level.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.accounts.people import Identity, identity, person_scopes
from cardvault.audit import Actor, AuditBuffer, AuditRecord, write_audit
from cardvault.crypto import KeyRing, SecretHasher, generate_token, generate_user_code
from cardvault.oauth.errors import (
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    InvalidGrant,
    InvalidRequest,
    OAuthError,
    SlowDown,
    UnauthorizedClient,
)
from cardvault.oauth.token_endpoint import count_refusal
from cardvault.observability import labelled, metrics
from cardvault.store.db import Database
from cardvault.store.models import DeviceAuthorization

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_GRANT_NAME = "device_code"  # its label in the metrics
CLI_CLIENT_ID = "cardvault-cli"  # the public client of our own CLI
PUBLIC_CLIENTS = frozenset({CLI_CLIENT_ID})
LIFETIME = dt.timedelta(minutes=10)


def normalize_user_code(text: str) -> str:
    """``bcdf-ghjk`` or ``BCDF GHJK`` → ``BCDFGHJK`` (§6.1: case and dashes are noise)."""
    return "".join(ch for ch in text.upper() if ch.isalpha())[:16]


def display_user_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def pending_request(session: Session, user_code: str, now: dt.datetime) -> DeviceAuthorization:
    """The undecided, unexpired request for ``user_code``; raises :class:`InvalidGrant`."""
    row = session.scalar(
        select(DeviceAuthorization).where(
            DeviceAuthorization.user_code == normalize_user_code(user_code)
        )
    )
    if row is None or row.status != "pending" or row.expires_at <= now:
        raise InvalidGrant("Unknown, expired or already used code")
    return row


def decide(
    session: Session,
    user_code: str,
    who: Identity,
    approve: bool,
    now: dt.datetime,
    *,
    actor: Actor,
) -> str:
    """Record the person's decision on a pending request; returns the new status.
    Audited as ``device.approve`` or ``device.deny`` by ``actor``."""
    row = pending_request(session, user_code, now)
    row.status = "approved" if approve else "denied"
    row.person_id = who.person_id
    row.org_id = who.org_id
    write_audit(
        session,
        actor.record(
            "device.approve" if approve else "device.deny",
            target_type="device_code",
            target_id=display_user_code(normalize_user_code(user_code)),
        ),
    )
    return row.status


@dataclass
class DeviceFlow:
    """The device authorization endpoint and the device-code grant of the token endpoint."""

    db: Database
    hasher: SecretHasher
    keyring: Callable[[], KeyRing]
    audit: AuditBuffer
    issuer: str
    audience: str
    verification_uri: str
    interval: int
    token_lifespan: int

    def authorize(self, form: Mapping[str, str]) -> dict[str, Any]:
        """§3.2: a device code, a user code and where to enter it."""
        self._check_client(form)
        device_code, user_code = generate_token(), generate_user_code()
        now = dt.datetime.now(dt.UTC)
        with self.db.transaction() as session:
            session.add(
                DeviceAuthorization(
                    device_code_hash=self.hasher.hash(device_code),
                    user_code=user_code,
                    client_id=form["client_id"],
                    status="pending",
                    interval=self.interval,
                    created_at=now,
                    expires_at=now + LIFETIME,
                )
            )
        shown = display_user_code(user_code)
        return {
            "device_code": device_code,
            "user_code": shown,
            "verification_uri": self.verification_uri,
            "verification_uri_complete": f"{self.verification_uri}?user_code={shown}",
            "expires_in": int(LIFETIME.total_seconds()),
            "interval": self.interval,
        }

    def token(self, form: Mapping[str, str], source_ip: str) -> dict[str, Any]:
        """§3.4-3.5: the person's access token once approved, else the waiting error."""
        try:
            answer = self._token(form, source_ip)
        except OAuthError as error:
            count_refusal(error)
            raise
        labelled(metrics().tokens_issued, DEVICE_GRANT_NAME).inc()
        return answer

    def _token(self, form: Mapping[str, str], source_ip: str) -> dict[str, Any]:
        client_id = self._check_client(form)
        device_code = form.get("device_code")
        if not device_code:
            raise InvalidRequest("Missing parameter: device_code")
        now = dt.datetime.now(dt.UTC)
        with self.db.transaction() as session:
            # Errors are returned, not raised, so the poll's bookkeeping is committed.
            outcome = self._settle(session, self.hasher.hash(device_code), client_id, now)
        if isinstance(outcome, OAuthError):
            raise outcome
        return self._issue(outcome, client_id, source_ip, int(now.timestamp()))

    @staticmethod
    def _check_client(form: Mapping[str, str]) -> str:
        client_id = form.get("client_id")
        if not client_id:
            raise InvalidRequest("Missing parameter: client_id")
        if client_id not in PUBLIC_CLIENTS:
            raise UnauthorizedClient("This client may not use the device authorization grant")
        return client_id

    @staticmethod
    def _settle(
        session: Session, key: bytes, client_id: str, now: dt.datetime
    ) -> Identity | OAuthError:
        row = session.get(DeviceAuthorization, key)
        if row is None or row.client_id != client_id or row.status == "used":
            return InvalidGrant("Unknown or already used device_code")
        if row.expires_at <= now:
            return ExpiredToken("The device code expired; run the login again")
        if row.status == "denied":
            return AccessDenied("The request was denied")
        if row.status == "pending":
            too_fast = row.last_polled_at and now - row.last_polled_at < dt.timedelta(
                seconds=row.interval - 1
            )
            row.last_polled_at = now
            if too_fast:
                row.interval += 5
                return SlowDown(f"Polling too fast; wait {row.interval} seconds between requests")
            return AuthorizationPending("Waiting for the person to approve the request")
        row.status = "used"
        who = identity(session, row.person_id or "")
        if who is None:
            return AccessDenied("The approving person is no longer a member")
        return who

    def _issue(self, who: Identity, client_id: str, source_ip: str, now: int) -> dict[str, Any]:
        scopes = person_scopes(who.access)
        jti = secrets.token_urlsafe(16)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": who.person_id,
            "aud": self.audience,
            "client_id": client_id,
            "azp": client_id,
            "scope": " ".join(scopes),
            "org_id": who.org_id,
            "vault_id": None,
            "email": who.email,
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifespan,
            "jti": jti,
        }
        token = self.keyring().sign(claims, dt.datetime.now(dt.UTC))
        self.audit.add(
            AuditRecord(
                actor_type="person",
                actor_id=who.email,
                action="token.issue",
                outcome="success",
                org_id=who.org_id,
                target_type="access_token",
                target_id=jti,
                source_ip=source_ip,
                details={"grant_type": "device_code"},
            )
        )
        return {
            "access_token": token,
            "expires_in": self.token_lifespan,
            "refresh_expires_in": 0,
            "token_type": "bearer",
            "not-before-policy": 0,
            "scope": claims["scope"],
        }
