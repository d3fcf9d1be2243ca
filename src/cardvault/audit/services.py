"""Audit records (PCI DSS 10.2): who, what, when, from where, outcome.

Administrative changes are written in the same transaction as the change
(:func:`write_audit`). The token endpoint, which may issue thousands of tokens a
second, hands its records to an :class:`AuditBuffer` that writes them in batches every
``audit_flush_interval`` (50 ms by default) and on shutdown; the same batch records
when each service account last obtained a token (``last_used_at``).

Refusals that an attacker can repeat at will (forged bearer tokens, throttled guesses)
go through :meth:`AuditBuffer.add_repeated`: the first of each (action, actor, reason,
source address) in a minute is written as it comes, the others of that minute are
counted and written as one record carrying ``details.repeated`` (how many) and
``details.since``. Every attempt is accounted for, and a flood of garbage costs one row
per source a minute instead of one per request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections import OrderedDict, deque
from typing import Any

from sqlalchemy import Connection, bindparam, insert, update
from sqlalchemy.orm import Session

from cardvault.crypto.pan import mask_pans
from cardvault.crypto.secrets import mask_secrets
from cardvault.store.db import Database
from cardvault.store.direct import Bound, Direct, Source
from cardvault.store.models import Base, ServiceAccount
from cardvault.store.types import utcnow

log = logging.getLogger(__name__)

MAX_PENDING = 200_000
REPEAT_WINDOW = 60.0  # seconds
MAX_REPEAT_KEYS = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class AuditRecord:
    actor_type: str  # service_account | person | system | anonymous
    actor_id: str | None
    action: str  # e.g. token.issue, service_account.delete
    outcome: str  # success | failure
    reason: str | None = None
    org_id: str | None = None
    vault_id: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    source_ip: str | None = None
    details: dict[str, Any] | None = None
    occurred_at: dt.datetime = dataclasses.field(default_factory=utcnow)


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, in which organization, and from where: the author of the audit
    records of an action. The front ends build it from their caller (a bearer token,
    a dashboard session); the services that perform the action write the records."""

    type: str  # service_account | person | system
    id: str | None
    org_id: str | None
    source_ip: str | None = None

    def record(
        self,
        action: str,
        *,
        target_type: str,
        target_id: str | None,
        outcome: str = "success",
        reason: str | None = None,
        vault_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditRecord:
        return AuditRecord(
            actor_type=self.type,
            actor_id=self.id,
            action=action,
            outcome=outcome,
            reason=reason,
            org_id=self.org_id,
            vault_id=vault_id,
            target_type=target_type,
            target_id=target_id,
            source_ip=self.source_ip,
            details=details,
        )


_FIELDS = tuple(f.name for f in dataclasses.fields(AuditRecord))
_INSERT = Direct(insert(Base.metadata.tables["audit_events"]))


def _row(record: AuditRecord) -> dict[str, Any]:
    """The stored form of ``record``: what a caller may have typed (the target, the
    reason, the details) with card numbers masked and secrets cut to their prefix."""
    row = {name: getattr(record, name) for name in _FIELDS}
    for name in ("target_id", "reason"):
        if row[name]:
            row[name] = _shown(row[name])
    if row["details"]:
        row["details"] = {
            key: _shown(value) if isinstance(value, str) else value
            for key, value in row["details"].items()
        }
    return row


def _shown(text: str) -> str:
    return mask_secrets(mask_pans(text))


def _last_uses(batch: list[AuditRecord]) -> dict[str, dt.datetime]:
    """When each service account last got a token, from a batch of records."""
    used: dict[str, dt.datetime] = {}
    for record in batch:
        if record.action == "token.issue" and record.outcome == "success" and record.actor_id:
            previous = used.get(record.actor_id)
            if previous is None or record.occurred_at > previous:
                used[record.actor_id] = record.occurred_at
    return used


def write_audit(session: Session | Connection, record: AuditRecord | Bound) -> None:
    """Append ``record`` (or records bound by :func:`bind_audit`) inside the caller's
    transaction (ORM session or Core)."""
    conn = session.connection() if isinstance(session, Session) else session
    _INSERT.execute(conn, record if isinstance(record, Bound) else [_row(record)])


def bind_audit(source: Source, *records: AuditRecord) -> Bound:
    """Records to write with :func:`write_audit`, bound ahead of the transaction."""
    return _INSERT.bind(source, [_row(record) for record in records])


@dataclasses.dataclass(slots=True)
class _Repeats:
    """A window of one kind of refusal: when it opened, its first and last record, and
    how many came after the first."""

    opened: float
    first: AuditRecord
    last: AuditRecord
    count: int = 0

    def summary(self) -> AuditRecord:
        details = {**(self.last.details or {}), "repeated": self.count}
        details["since"] = self.first.occurred_at.isoformat()
        return dataclasses.replace(self.last, details=details)


_RepeatKey = tuple[str, str | None, str | None, str | None]


class AuditBuffer:
    """Thread-safe queue of records, written in batches by :meth:`flush`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: deque[AuditRecord] = deque()
        self._repeats: OrderedDict[_RepeatKey, _Repeats] = OrderedDict()
        self._lock = threading.Lock()
        self.dropped = 0

    def add_repeated(self, record: AuditRecord, now: float | None = None) -> None:
        """Queue a refusal that may come in floods: written at once if it is the first
        of its kind from its source in ``REPEAT_WINDOW`` seconds, else counted into the
        window's summary record (written when the window closes, or on shutdown)."""
        now = time.monotonic() if now is None else now
        key = (record.action, record.actor_id, record.reason, record.source_ip)
        closed: list[_Repeats] = []
        with self._lock:
            repeats = self._repeats.get(key)
            if repeats is not None and now - repeats.opened < REPEAT_WINDOW:
                repeats.count += 1
                repeats.last = record
                return
            if repeats is not None:
                closed.append(self._repeats.pop(key))
            self._repeats[key] = _Repeats(now, record, record)
            if len(self._repeats) > MAX_REPEAT_KEYS:
                closed.append(self._repeats.popitem(last=False)[1])
        for window in closed:
            if window.count:
                self.add(window.summary())
        self.add(record)

    def _close_windows(self, now: float, *, every: bool) -> None:
        with self._lock:
            ended = [
                key
                for key, window in self._repeats.items()
                if every or now - window.opened >= REPEAT_WINDOW
            ]
            closed = [self._repeats.pop(key) for key in ended]
        for window in closed:
            if window.count:
                self.add(window.summary())

    def add(self, record: AuditRecord) -> None:
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            log.error("audit buffer full; dropping a record", extra={"action": record.action})
            return
        self._pending.append(record)

    def __len__(self) -> int:
        """Records waiting to be written, counting each open window with repeats."""
        with self._lock:
            counting = sum(1 for window in self._repeats.values() if window.count)
        return len(self._pending) + counting

    def flush(self, *, final: bool = False, now: float | None = None) -> int:
        """Write everything queued so far, with the summaries of the windows of repeated
        refusals that have closed (all of them if ``final``); on failure the records
        stay queued."""
        self._close_windows(time.monotonic() if now is None else now, every=final)
        batch: list[AuditRecord] = []
        while self._pending:
            batch.append(self._pending.popleft())
        if not batch:
            return 0
        try:
            with self._db.write_connection() as conn:
                _INSERT.execute(conn, [_row(r) for r in batch])
                used = _last_uses(batch)
                if used:
                    conn.execute(
                        update(ServiceAccount)
                        .where(ServiceAccount.client_id == bindparam("cid"))
                        .values(last_used_at=bindparam("used")),
                        [{"cid": cid, "used": when} for cid, when in used.items()],
                    )
        except Exception:
            self._pending.extendleft(reversed(batch))
            raise
        return len(batch)
