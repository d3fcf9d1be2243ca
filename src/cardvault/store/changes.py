"""Writing to the change feed: one row per change, in the transaction of the change.

Domain services call :func:`publish_change` when a client, a revoked token or the
keys change; :mod:`cardvault.sync.changes` reads the rows back on every worker.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from cardvault.store.db import notify
from cardvault.store.models import Change
from cardvault.store.types import utcnow

# The channel that wakes every worker's change feed (``Database.listen``).
CHANNEL = "cardvault_changes"


def publish_change(session: Session, kind: str, subject: str) -> None:
    """Record a change inside the caller's transaction; it reaches workers on commit."""
    session.add(Change(kind=kind, subject=subject, created_at=utcnow()))
    notify(session, CHANNEL)
