"""Bulk job lifecycle: create while uploading, store rows, queue, read, cancel.

States: ``receiving`` (the upload is streaming in; not yet visible to workers) →
``queued`` → ``running`` → ``completed`` | ``cancelled``. A job whose upload fails is
deleted with its rows, so a refused file leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from cardvault.bulk.csvfile import InputRow
from cardvault.bulk.errors import InvalidJobState, JobNotFound
from cardvault.crypto import random_id
from cardvault.crypto.envelope import VaultCipher
from cardvault.observability import Backlog
from cardvault.store.bulk_models import BulkJob, BulkRow
from cardvault.store.db import Database
from cardvault.store.types import utcnow

RECEIVING, QUEUED, RUNNING = "receiving", "queued", "running"
COMPLETED, FAILED, CANCELLED = "completed", "failed", "cancelled"
ACTIVE_STATES = (QUEUED, RUNNING)
PAN_FIELD = "bulk_pan"

_JOB_COLUMNS = select(*BulkJob.__table__.columns)


def pan_record(job_id: str, row: int) -> str:
    """The record id a row's encrypted PAN is bound to (associated data)."""
    return f"{job_id}/{row}"


@dataclass(frozen=True)
class Owner:
    vault_id: str
    org_id: str
    client_id: str


def create_job(db: Database, owner: Owner) -> str:
    """A new job in state ``receiving``; returns its id."""
    job_id = random_id("bulk_")
    with db.write_connection() as conn:
        conn.execute(
            insert(BulkJob).values(
                id=job_id,
                vault_id=owner.vault_id,
                org_id=owner.org_id,
                client_id=owner.client_id,
                state=RECEIVING,
                total=0,
                processed=0,
                succeeded=0,
                failed=0,
                created_at=utcnow(),
            )
        )
    return job_id


def _stored(job_id: str, row: InputRow, cipher: VaultCipher) -> dict[str, Any]:
    pan = row.pan
    encrypted = None
    if pan is not None and row.error_code is None:
        encrypted = cipher.encrypt(
            pan.reveal().encode(), record_id=pan_record(job_id, row.row), field=PAN_FIELD
        )
    return {
        "job_id": job_id,
        "row": row.row,
        "pan_alias": row.pan_alias,
        "pan_encrypted": encrypted,
        "exp_month": row.exp_month,
        "exp_year": row.exp_year,
        "holder_info": row.holder_info,
        "state": None,
        "error_code": row.error_code,
        "error_detail": row.error_detail,
    }


def add_rows(db: Database, job_id: str, rows: Sequence[InputRow], cipher: VaultCipher) -> None:
    """Store a batch of uploaded rows (PANs encrypted first, outside the write lock)."""
    if not rows:
        return
    values = [_stored(job_id, row, cipher) for row in rows]
    with db.write_connection() as conn:
        conn.execute(insert(BulkRow), values)


def queue_job(db: Database, job_id: str, total: int) -> None:
    with db.write_connection() as conn:
        conn.execute(
            update(BulkJob)
            .where(BulkJob.id == job_id, BulkJob.state == RECEIVING)
            .values(state=QUEUED if total else COMPLETED, total=total)
        )
        if not total:
            conn.execute(update(BulkJob).where(BulkJob.id == job_id).values(finished_at=utcnow()))


def discard_job(db: Database, job_id: str) -> None:
    """Delete a job whose upload failed, with its rows."""
    with db.write_connection() as conn:
        conn.execute(delete(BulkRow).where(BulkRow.job_id == job_id))
        conn.execute(delete(BulkJob).where(BulkJob.id == job_id))


def discard_stale_uploads(db: Database, older_than: dt.timedelta) -> int:
    """Delete jobs whose upload never finished (the server died while receiving it),
    with their rows and encrypted PANs; returns how many."""
    cutoff = utcnow() - older_than
    stale = select(BulkJob.id).where(BulkJob.state == RECEIVING, BulkJob.created_at < cutoff)
    with db.write_connection() as conn:
        ids = list(conn.scalars(stale))
        if ids:
            conn.execute(delete(BulkRow).where(BulkRow.job_id.in_(ids)))
            conn.execute(delete(BulkJob).where(BulkJob.id.in_(ids)))
    return len(ids)


def read_job(conn: Connection, vault_id: str, job_id: str) -> Any:
    """A row of the vault's job; :class:`JobNotFound` for others' and unfinished uploads."""
    row = conn.execute(
        _JOB_COLUMNS.where(
            BulkJob.id == job_id, BulkJob.vault_id == vault_id, BulkJob.state != RECEIVING
        )
    ).first()
    if row is None:
        raise JobNotFound(f"bulk job {job_id} not found")
    return row


def cancel_job(db: Database, vault_id: str, job_id: str) -> Any:
    """Stop a queued or running job: rows not yet processed stay unprocessed and their
    encrypted PANs are dropped. Cancelling a cancelled job is a no-op."""
    with db.write_connection() as conn:
        job = read_job(conn, vault_id, job_id)
        if job.state in (COMPLETED, FAILED):
            raise InvalidJobState(f"bulk job {job_id} is already {job.state}")
        if job.state != CANCELLED:
            conn.execute(
                update(BulkJob)
                .where(BulkJob.id == job_id, BulkJob.state.in_(ACTIVE_STATES))
                .values(state=CANCELLED, finished_at=utcnow())
            )
            conn.execute(
                update(BulkRow)
                .where(BulkRow.job_id == job_id, BulkRow.state.is_(None))
                .values(pan_encrypted=None)
            )
        return read_job(conn, vault_id, job_id)


_BACKLOG = select(
    func.count(),
    func.coalesce(func.sum(BulkJob.total - BulkJob.processed), 0),
    func.min(BulkJob.created_at),
).where(BulkJob.state.in_(ACTIVE_STATES))


def backlog(db: Database) -> dict[str, Backlog]:
    """Queued and running jobs and their rows still to process, each with the oldest
    job's creation, for the metrics: one query on the jobs' state index."""
    with db.engine.connect() as conn:
        jobs, rows, oldest = conn.execute(_BACKLOG).one()
    return {"bulk_jobs": Backlog(jobs, oldest), "bulk_rows": Backlog(int(rows), oldest)}


def job_out(job: Any) -> dict[str, Any]:
    """The API form of a job."""

    def when(value: Any) -> str | None:
        return None if value is None else value.isoformat().replace("+00:00", "Z")

    return {
        "id": job.id,
        "state": job.state,
        "total": job.total,
        "processed": job.processed,
        "succeeded": job.succeeded,
        "failed": job.failed,
        "created_at": when(job.created_at),
        "started_at": when(job.started_at),
        "finished_at": when(job.finished_at),
    }
