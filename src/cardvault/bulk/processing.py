"""Chunk processing: a few hundred rows of one job per write transaction.

Each chunk is one transaction that enrols the rows (through the same services as
``POST /cards`` and ``POST /network-tokens``), records their results and advances
the job's counters. A crash at any moment rolls the whole chunk back, so after a
restart its rows are simply processed again: none lost, none enrolled twice. Rows
already holding a result are never read again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from cardvault.bulk.jobs import ACTIVE_STATES, COMPLETED, PAN_FIELD, RUNNING, pan_record
from cardvault.cards import services as cards
from cardvault.cards.errors import CardError, CardNotFound
from cardvault.crypto.envelope import Fingerprinter, VaultCipher
from cardvault.crypto.pan import Pan
from cardvault.network_tokens.bulk import Provisioned, Provisioning, provision_many
from cardvault.networks.provider import ProviderError, TokenServiceProvider
from cardvault.store.bulk_models import BulkJob
from cardvault.store.models import Base, Card
from cardvault.store.types import utcnow

ProviderFor = Callable[[str], TokenServiceProvider]
FAILED_ROW = "FAILED"
NO_CARD = "no card with this pan_alias in the vault"

_ROWS = Base.metadata.tables["bulk_rows"]
_CARDS = select(*Base.metadata.tables["cards"].columns)
_RECORD_RESULT = (
    update(_ROWS)
    .where(_ROWS.c.job_id == bindparam("b_job"), _ROWS.c.row == bindparam("b_row"))
    .values(
        pan_alias=bindparam("b_alias"),
        pan_encrypted=None,
        state=bindparam("b_state"),
        network_token_last4=bindparam("b_last4"),
        expires_at=bindparam("b_expires"),
        payment_account_reference=bindparam("b_par"),
        error_code=bindparam("b_code"),
        error_detail=bindparam("b_detail"),
    )
)


@dataclass(frozen=True)
class JobKeys:
    """What a chunk of one job needs, loaded before its write transaction."""

    job_id: str
    vault_id: str
    org_id: str
    cipher: VaultCipher
    fingerprinter: Fingerprinter


@dataclass
class Outcome:
    row: int
    pan_alias: str | None
    state: str = FAILED_ROW
    last4: str | None = None
    expires_at: str | None = None
    par: str | None = None
    code: str | None = None
    detail: str | None = None

    def params(self, job_id: str) -> dict[str, Any]:
        return {
            "b_job": job_id,
            "b_row": self.row,
            "b_alias": self.pan_alias,
            "b_state": self.state,
            "b_last4": self.last4,
            "b_expires": self.expires_at,
            "b_par": self.par,
            "b_code": self.code,
            "b_detail": None if self.detail is None else self.detail[:255],
        }


@dataclass
class ChunkResult:
    job_id: str
    rows: int = 0
    succeeded: int = 0
    enrolled: int = 0
    first_row: int | None = None
    last_row: int | None = None


@dataclass
class _Cards:
    """The chunk's cards, found with one query per kind of key and kept as enrolled."""

    by_alias: dict[str, Card] = field(default_factory=dict)
    by_fingerprint: dict[bytes, Card] = field(default_factory=dict)
    new: list[Card] = field(default_factory=list)  # to insert, all at once
    prints: dict[int, bytes] = field(default_factory=dict)  # row → PAN fingerprint


def lock_job(session: Session, job_ids: Sequence[str]) -> BulkJob | None:
    """The least recently served of these jobs that is still active and that no other
    worker holds (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite has one writer)."""
    return session.scalars(
        select(BulkJob)
        .where(BulkJob.id.in_(job_ids), BulkJob.state.in_(ACTIVE_STATES))
        .order_by(BulkJob.served_at.asc().nulls_first(), BulkJob.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()


def _pending_rows(session: Session, job_id: str, limit: int) -> Sequence[Any]:
    return session.execute(
        select(_ROWS)
        .where(_ROWS.c.job_id == job_id, _ROWS.c.state.is_(None))
        .order_by(_ROWS.c.row)
        .limit(limit)
    ).all()


def _reveal(keys: JobKeys, row: Any) -> Pan:
    plain = keys.cipher.decrypt(
        row.pan_encrypted, record_id=pan_record(row.job_id, row.row), field=PAN_FIELD
    )
    return Pan(plain.decode())


def _load_cards(
    session: Session, keys: JobKeys, rows: Sequence[Any], pans: dict[int, Pan]
) -> _Cards:
    found = _Cards()
    conn = session.connection()
    aliases = {r.pan_alias for r in rows if r.pan_alias}
    if aliases:
        query = _CARDS.where(Card.vault_id == keys.vault_id, Card.pan_alias.in_(aliases))
        found.by_alias = {c.pan_alias: Card(**c._mapping) for c in conn.execute(query)}
    found.prints = {number: keys.fingerprinter.digest(pan) for number, pan in pans.items()}
    prints = set(found.prints.values())
    if prints:
        query = _CARDS.where(Card.vault_id == keys.vault_id, Card.fingerprint.in_(prints))
        found.by_fingerprint = {c.fingerprint: Card(**c._mapping) for c in conn.execute(query)}
    return found


def _enrol(
    session: Session, keys: JobKeys, found: _Cards, row: Any, pan: Pan, expiry: cards.Expiry
) -> Card:
    """The vault's card of this PAN (as ``POST /cards``: an existing one is reused)."""
    fingerprint = found.prints[row.row]
    card = found.by_fingerprint.get(fingerprint)
    if card is not None:
        cards.extend_expiry(session.connection(), card, expiry)
        return card
    card = cards.new_card(
        vault_id=keys.vault_id,
        org_id=keys.org_id,
        pan=pan,
        expiry=expiry,
        holder_info=row.holder_info,
        cipher=keys.cipher,
        fingerprint=fingerprint,
    )
    found.by_fingerprint[fingerprint] = card
    found.new.append(card)
    return card


def _card_of(
    session: Session, keys: JobKeys, found: _Cards, row: Any, pan: Pan | None, expiry: Any
) -> Card:
    if pan is not None:
        return _enrol(session, keys, found, row, pan, expiry)
    card = found.by_alias.get(row.pan_alias)
    if card is None:
        raise CardNotFound(NO_CARD)
    return card


def _prepare(
    session: Session, keys: JobKeys, found: _Cards, row: Any, pan: Pan | None, today: dt.date
) -> Outcome | Provisioning:
    """The row's card and expiry to provision, or its failure."""
    outcome = Outcome(row.row, row.pan_alias)
    if row.error_code is not None:
        outcome.code, outcome.detail = row.error_code, row.error_detail
        return outcome
    try:
        expiry = cards.normalize_expiry(row.exp_month, row.exp_year, today)
        card = _card_of(session, keys, found, row, pan, expiry)
    except CardError as error:
        outcome.code, outcome.detail = error.code, error.detail
        return outcome
    return Provisioning(card, expiry.month, expiry.year)


def _outcome(row: Any, card: Card, provisioned: Provisioned) -> Outcome:
    outcome = Outcome(row.row, card.pan_alias)
    if isinstance(provisioned, ProviderError):
        outcome.code, outcome.detail = provisioned.code, provisioned.detail
        return outcome
    token = provisioned[0]
    outcome.state, outcome.last4 = token.state, token.token_last4
    outcome.par = token.payment_account_reference
    if token.token_exp_year and token.token_exp_month:
        outcome.expires_at = f"{token.token_exp_year:04d}-{token.token_exp_month:02d}"
    return outcome


def _process(
    session: Session,
    keys: JobKeys,
    provider_for: ProviderFor,
    rows: Sequence[Any],
    pans: dict[int, Pan],
) -> tuple[list[Outcome], int]:
    """Outcomes of the rows in row order, and how many cards were enrolled."""
    found = _load_cards(session, keys, rows, pans)
    today = dt.date.today()
    prepared = [_prepare(session, keys, found, r, pans.get(r.row), today) for r in rows]
    cards.insert_cards(session.connection(), found.new)
    todo = [(row, p) for row, p in zip(rows, prepared, strict=True) if isinstance(p, Provisioning)]
    done = provision_many(session, provider_for, [p for _row, p in todo], keys.cipher)
    by_row = {
        row.row: _outcome(row, p.card, result) for (row, p), result in zip(todo, done, strict=True)
    }
    outcomes = [
        p if isinstance(p, Outcome) else by_row[r.row] for r, p in zip(rows, prepared, strict=True)
    ]
    return outcomes, len(found.new)


def _advance(job: BulkJob, outcomes: Sequence[Outcome]) -> None:
    now = utcnow()
    good = sum(1 for o in outcomes if o.code is None)
    job.processed += len(outcomes)
    job.succeeded += good
    job.failed += len(outcomes) - good
    job.started_at = job.started_at or now
    job.served_at = now
    job.state = RUNNING
    if job.processed >= job.total:
        job.state, job.finished_at = COMPLETED, now


def run_chunk(
    session: Session, keys: JobKeys, provider_for: ProviderFor, job: BulkJob, limit: int
) -> ChunkResult:
    """Process up to ``limit`` unprocessed rows of ``job`` (locked by the caller)."""
    result = ChunkResult(job.id)
    rows = _pending_rows(session, job.id, limit)
    if not rows:  # counters say otherwise only if rows were lost: close the job anyway
        job.state, job.finished_at, job.served_at = COMPLETED, utcnow(), utcnow()
        return result
    pans = {r.row: _reveal(keys, r) for r in rows if r.pan_encrypted and not r.error_code}
    outcomes, result.enrolled = _process(session, keys, provider_for, rows, pans)
    session.connection().execute(_RECORD_RESULT, [o.params(job.id) for o in outcomes])
    _advance(job, outcomes)
    result.rows = len(outcomes)
    result.succeeded = sum(1 for o in outcomes if o.code is None)
    result.first_row, result.last_row = rows[0].row, rows[-1].row
    return result


def fail_next_row(session: Session, job: BulkJob) -> None:
    """Record the job's next row as failed: it raised something unexpected on its own."""
    rows = _pending_rows(session, job.id, 1)
    if not rows:
        return
    outcome = Outcome(rows[0].row, rows[0].pan_alias)
    outcome.code, outcome.detail = "internal-error", "the row could not be processed"
    session.connection().execute(_RECORD_RESULT, [outcome.params(job.id)])
    _advance(job, [outcome])
