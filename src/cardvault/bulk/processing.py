"""Processing a claimed chunk: prepared outside the write lock, written inside it.

:func:`prepare_chunk` reads the claimed rows that are still unprocessed, decrypts
their PANs and makes the chunk's plan (:mod:`cardvault.bulk.plan`): cards, tokens,
events. It holds no lock, so workers prepare their chunks at the same time.

:func:`write_chunk` then, in one write transaction, checks that the job is still
active, reads the plan's snapshot again (which of the rows are still unprocessed,
their cards and those cards' live tokens) and, if anything changed since (a
``POST /cards`` or ``POST /network-tokens`` for the same card, another worker that
took the rows over), makes the plan again there. It stores the plan, records the
rows' results and advances the job's counters. Only rows still unprocessed are
recorded, so no row is done twice, whatever happened to the claim; a crash rolls back
the whole write, so after a restart the rows are simply processed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.orm import Session

from cardvault.bulk.claims import Claim, lock_active_job
from cardvault.bulk.jobs import COMPLETED, PAN_FIELD, pan_record
from cardvault.bulk.plan import JobKeys, Outcome, Plan, make_plan, read_snapshot
from cardvault.cards import services as cards
from cardvault.crypto.pan import Pan
from cardvault.network_tokens.provisioning import Provisioned, store_tokens
from cardvault.network_tokens.services import ProviderFor
from cardvault.networks.provider import ProviderError
from cardvault.store.direct import Direct
from cardvault.store.models import Base
from cardvault.store.records import CardRecord
from cardvault.store.types import utcnow

_ROWS = Base.metadata.tables["bulk_rows"]
_JOBS = Base.metadata.tables["bulk_jobs"]
# Prebuilt statements: building one costs more than running it. A claim's rows are
# read by the span they lie in; rows of other claims in it are left out afterwards.
_IN_SPAN = (
    _ROWS.c.job_id == bindparam("b_job"),
    _ROWS.c.row.between(bindparam("b_first"), bindparam("b_last")),
    _ROWS.c.state.is_(None),
)
_TO_PREPARE = Direct(
    select(
        _ROWS.c.row,
        _ROWS.c.pan_alias,
        _ROWS.c.pan_encrypted,
        _ROWS.c.exp_month,
        _ROWS.c.exp_year,
        _ROWS.c.holder_info,
        _ROWS.c.error_code,
        _ROWS.c.error_detail,
    )
    .where(*_IN_SPAN)
    .order_by(_ROWS.c.row)
)
_STILL_UNPROCESSED = Direct(
    select(_ROWS.c.row, _ROWS.c.pan_alias).where(*_IN_SPAN).order_by(_ROWS.c.row)
)
_ADVANCE = Direct(
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("b_job"))
    .values(
        processed=bindparam("b_processed"),
        succeeded=bindparam("b_succeeded"),
        failed=bindparam("b_failed"),
        state=bindparam("b_state"),
        finished_at=bindparam("b_finished"),
    )
)
_RECORD_RESULT = Direct(
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
        claimed_until=None,
    )
)


@dataclass
class ChunkResult:
    job_id: str
    rows: int = 0
    succeeded: int = 0
    enrolled: int = 0
    first_row: int | None = None
    last_row: int | None = None


@dataclass(frozen=True)
class Prepared:
    """A claimed chunk, read and planned outside the write lock."""

    claim: Claim
    rows: Sequence[Any]
    pans: dict[int, Pan]  # row → its PAN (``pan`` rows)
    prints: dict[int, bytes]  # row → the PAN's fingerprint
    plan: Plan


def _unprocessed(conn: Connection, claim: Claim, query: Direct[Any]) -> list[Any]:
    """The claim's rows that are still unprocessed, in row order."""
    span = {"b_job": claim.job_id, "b_first": claim.rows[0], "b_last": claim.rows[-1]}
    claimed = set(claim.rows)
    return [row for row in query.all(conn, span) if row.row in claimed]


def _reveal(keys: JobKeys, row: Any) -> Pan:
    plain = keys.cipher.decrypt(
        row.pan_encrypted, record_id=pan_record(keys.job_id, row.row), field=PAN_FIELD
    )
    return Pan(plain.decode())


def prepare_chunk(
    session: Session, keys: JobKeys, provider_for: ProviderFor, claim: Claim
) -> Prepared:
    """Read and plan the claim's unprocessed rows; writes nothing."""
    conn = session.connection()
    rows = _unprocessed(conn, claim, _TO_PREPARE)
    pans = {r.row: _reveal(keys, r) for r in rows if r.pan_encrypted and not r.error_code}
    prints = {number: keys.fingerprinter.digest(pan) for number, pan in pans.items()}
    snapshot = read_snapshot(conn, keys.vault_id, rows, prints)
    plan = make_plan(session, keys, provider_for, rows, pans, prints, snapshot)
    return Prepared(claim, rows, pans, prints, plan)


def _outcome(row: Any, card: Any, provisioned: Provisioned) -> Outcome:
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


def _store(session: Session, plan: Plan) -> list[Outcome]:
    """Write the plan's cards, expiries, tokens and events; the rows' outcomes."""
    conn = session.connection()
    cards.insert_cards(conn, plan.new_cards)
    moved: dict[bytes, CardRecord] = {}
    for fingerprint, expiry in plan.extensions:
        card = moved.get(fingerprint) or plan.snapshot.by_print[fingerprint]
        moved[fingerprint] = cards.extend_expiry(conn, card, expiry)
    provisioned = iter(store_tokens(conn, plan.tokens))
    return [
        result if isinstance(result, Outcome) else _outcome(row, result.card, next(provisioned))
        for row, result in zip(plan.rows, plan.results, strict=True)
    ]


def _record(conn: Connection, job: Any, outcomes: Sequence[Outcome]) -> None:
    """Record the rows' results and advance the job's counters (the job is locked)."""
    params = [
        {
            "b_job": job.id,
            "b_row": o.row,
            "b_alias": o.pan_alias,
            "b_state": o.state,
            "b_last4": o.last4,
            "b_expires": o.expires_at,
            "b_par": o.par,
            "b_code": o.code,
            "b_detail": None if o.detail is None else o.detail[:255],
        }
        for o in outcomes
    ]
    _RECORD_RESULT.execute(conn, params)
    good = sum(1 for o in outcomes if o.code is None)
    processed = job.processed + len(outcomes)
    done = processed >= job.total
    counters = {
        "b_job": job.id,
        "b_processed": processed,
        "b_succeeded": job.succeeded + good,
        "b_failed": job.failed + len(outcomes) - good,
        "b_state": COMPLETED if done else job.state,
        "b_finished": utcnow() if done else job.finished_at,
    }
    _ADVANCE.execute(conn, [counters])


def write_chunk(
    session: Session, keys: JobKeys, provider_for: ProviderFor, prepared: Prepared
) -> ChunkResult | None:
    """Store a prepared chunk in the caller's write transaction: what is still to do
    of it, planned again if the snapshot changed. None if the job is no longer active."""
    conn = session.connection()
    job = lock_active_job(conn, prepared.claim.job_id)
    if job is None:  # cancelled meanwhile
        return None
    pending = {r.row for r in _unprocessed(conn, prepared.claim, _STILL_UNPROCESSED)}
    rows = [r for r in prepared.rows if r.row in pending]
    prints = {n: p for n, p in prepared.prints.items() if n in pending}
    plan = prepared.plan
    snapshot = read_snapshot(conn, keys.vault_id, rows, prints)
    if snapshot != plan.snapshot:
        plan = make_plan(session, keys, provider_for, rows, prepared.pans, prints, snapshot)
    result = ChunkResult(job.id)
    if not plan.rows:
        return result
    outcomes = _store(session, plan)
    _record(conn, job, outcomes)
    result.rows, result.enrolled = len(outcomes), len(plan.new_cards)
    result.succeeded = sum(1 for o in outcomes if o.code is None)
    result.first_row, result.last_row = plan.rows[0].row, plan.rows[-1].row
    return result


def fail_rows(session: Session, claim: Claim) -> None:
    """Record the claim's unprocessed rows as failed: they raised something unexpected."""
    conn = session.connection()
    job = lock_active_job(conn, claim.job_id)
    if job is None:
        return
    rows = _unprocessed(conn, claim, _STILL_UNPROCESSED)
    outcomes = [
        Outcome(r.row, r.pan_alias, code="internal-error", detail="the row could not be processed")
        for r in rows
    ]
    if outcomes:
        _record(conn, job, outcomes)
