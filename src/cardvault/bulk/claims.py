"""Which rows a worker prepares next: a short claim, taken in its own write transaction.

A chunk is prepared (PANs decrypted, fingerprints and cards made, the networks asked)
outside the database's write lock, so that several workers work at once; each first
claims the rows it will prepare for a short lease, so that the others take different
rows. Correctness never depends on a claim: a worker that dies leaves its claim to
lapse and another takes the rows over, and the write of a chunk records only rows that
are still unprocessed at that moment (see :mod:`cardvault.bulk.processing`).

Jobs take turns: a worker claims from the active job it served least recently that has
rows left to claim, so jobs of several vaults move side by side.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, or_, select, update

from cardvault.bulk.jobs import ACTIVE_STATES, COMPLETED, RUNNING
from cardvault.store.bulk_models import BulkJob, BulkRow
from cardvault.store.types import utcnow

LEASE = dt.timedelta(seconds=5)  # far longer than preparing a chunk takes

_JOBS = BulkJob.__table__


@dataclass(frozen=True)
class Claim:
    """Rows of one job that a worker prepares; ``rows`` in row order."""

    job_id: str
    vault_id: str
    org_id: str
    client_id: str
    rows: tuple[int, ...]


def lock_active_job(conn: Connection, job_id: str) -> Any:
    """The job's row if it is still active, locked until the end of the transaction
    (PostgreSQL: ``FOR UPDATE``; on SQLite the write lock is the database's)."""
    return conn.execute(
        select(_JOBS)
        .where(_JOBS.c.id == job_id, _JOBS.c.state.in_(ACTIVE_STATES))
        .with_for_update()
    ).first()


def _claimable(conn: Connection, job_id: str, now: dt.datetime, limit: int) -> list[int]:
    unclaimed = or_(BulkRow.claimed_until.is_(None), BulkRow.claimed_until <= now)
    return list(
        conn.scalars(
            select(BulkRow.row)
            .where(BulkRow.job_id == job_id, BulkRow.state.is_(None), unclaimed)
            .order_by(BulkRow.row)
            .limit(limit)
        )
    )


def _has_unprocessed(conn: Connection, job_id: str) -> bool:
    query = select(BulkRow.row).where(BulkRow.job_id == job_id, BulkRow.state.is_(None))
    return conn.execute(query.limit(1)).first() is not None


def _take(
    conn: Connection, job: Any, rows: list[int], now: dt.datetime, lease: dt.timedelta
) -> None:
    conn.execute(
        update(BulkRow)
        .where(BulkRow.job_id == job.id, BulkRow.row.in_(rows))
        .values(claimed_until=now + lease)
    )
    conn.execute(
        update(BulkJob)
        .where(BulkJob.id == job.id)
        .values(served_at=now, state=RUNNING, started_at=job.started_at or now)
    )


def _close(conn: Connection, job_id: str, now: dt.datetime) -> None:
    """A job without unprocessed rows is complete (its counters say otherwise only if
    rows were lost; closing it anyway keeps it from being served for ever)."""
    conn.execute(
        update(BulkJob)
        .where(BulkJob.id == job_id)
        .values(state=COMPLETED, finished_at=now, served_at=now)
    )


def claim_rows(
    conn: Connection, job_ids: Sequence[str], limit: int, lease: dt.timedelta = LEASE
) -> Claim | None:
    """Claim up to ``limit`` unprocessed, unclaimed rows of the least recently served
    of these jobs that has some, in the caller's write transaction; None if none has."""
    now = utcnow()
    order = (_JOBS.c.served_at.asc().nulls_first(), _JOBS.c.created_at)
    candidates: Sequence[str] = conn.scalars(
        select(_JOBS.c.id)
        .where(_JOBS.c.id.in_(job_ids), _JOBS.c.state.in_(ACTIVE_STATES))
        .order_by(*order)
    ).all()
    for job_id in candidates:
        job = lock_active_job(conn, job_id)
        if job is None:
            continue
        rows = _claimable(conn, job_id, now, limit)
        if rows:
            _take(conn, job, rows, now, lease)
            return Claim(job.id, job.vault_id, job.org_id, job.client_id, tuple(rows))
        if not _has_unprocessed(conn, job_id):
            _close(conn, job_id, now)
    return None
