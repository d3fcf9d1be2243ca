"""Which clients and tokens this worker must refuse, kept current by the change feed."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from cardvault.accounts.services import load_client
from cardvault.store.db import Database
from cardvault.store.models import Member, RevokedToken, ServiceAccount
from cardvault.store.types import utcnow
from cardvault.sync.changes import ChangeEvent


class RevocationState:
    """Refused client ids and revoked token ids (jti → expiry as a Unix time)."""

    def __init__(self, db: Database, *, retention: dt.timedelta) -> None:
        self._db = db
        self._retention = retention
        self._clients: frozenset[str] = frozenset()
        self._jtis: dict[str, float] = {}
        self.on_keys_changed: Callable[[], None] = lambda: None

    def load(self) -> None:
        """Load the full state (at start-up, before the feed takes over)."""
        now = utcnow()
        with self._db.sessions() as session:
            self._clients = frozenset(self._refused_clients(session, now))
            rows = session.execute(
                select(RevokedToken.jti, RevokedToken.expires_at).where(
                    RevokedToken.expires_at > now
                )
            )
            self._jtis = {r.jti: r.expires_at.timestamp() for r in rows}

    def _refused_clients(self, session: Session, now: dt.datetime) -> set[str]:
        recent = now - self._retention
        query = (
            select(ServiceAccount.client_id)
            .outerjoin(Member, Member.service_account_id == ServiceAccount.id)
            .where(
                or_(
                    (ServiceAccount.status == "deleted") & (ServiceAccount.deleted_at > recent),
                    ServiceAccount.status == "disabled",
                    (ServiceAccount.status == "active")
                    & or_(Member.access.is_(None), Member.access != "write"),
                )
            )
        )
        return set(session.scalars(query))

    def is_client_refused(self, client_id: str) -> bool:
        return client_id in self._clients

    def is_token_revoked(self, jti: str) -> bool:
        return jti in self._jtis

    def apply(self, events: Sequence[ChangeEvent]) -> None:
        """Handler for the change feed; runs in a worker thread."""
        clients = set(self._clients)
        keys_changed = False
        with self._db.sessions() as session:
            for event in events:
                if event.kind == "client":
                    record = load_client(session, event.subject)
                    if record is None or record.refusal is not None:
                        clients.add(event.subject)
                    else:
                        clients.discard(event.subject)
                elif event.kind == "token":
                    expires = session.scalar(
                        select(RevokedToken.expires_at).where(RevokedToken.jti == event.subject)
                    )
                    if expires is not None:
                        self._jtis[event.subject] = expires.timestamp()
                elif event.kind == "keys":
                    keys_changed = True
        self._clients = frozenset(clients)
        if keys_changed:
            self.on_keys_changed()

    def prune(self) -> None:
        now = time.time()
        self._jtis = {jti: exp for jti, exp in self._jtis.items() if exp > now}
