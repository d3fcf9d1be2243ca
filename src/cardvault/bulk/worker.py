"""The background worker of one server process: fair, bounded chunk scheduling.

Each call of :meth:`BulkWorker.step` processes at most one chunk, of the active job
served least recently, so jobs (and the vaults they belong to) take turns chunk by
chunk and one huge file never starves another. The server runs one worker per
process, one chunk at a time, pausing between chunks so that interactive requests
get the database's write lock and the interpreter in between.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from cardvault.audit import AuditRecord, write_audit
from cardvault.bulk.jobs import ACTIVE_STATES, discard_stale_uploads
from cardvault.bulk.processing import (
    ChunkResult,
    JobKeys,
    ProviderFor,
    fail_next_row,
    lock_job,
    run_chunk,
)
from cardvault.keys.vault_keys import VaultKeys
from cardvault.store.bulk_models import BulkJob
from cardvault.store.db import Database

log = logging.getLogger(__name__)

CANDIDATES = 8  # active jobs considered per step, least recently served first
STALE_UPLOAD = dt.timedelta(hours=1)  # an upload still receiving after this has died
CLEANUP_EVERY = 600.0  # seconds


class BulkWorker:
    def __init__(
        self, db: Database, vault_keys: VaultKeys, provider_for: ProviderFor, chunk_rows: int
    ) -> None:
        self.db = db
        self.vault_keys = vault_keys
        self.provider_for = provider_for
        self.chunk_rows = chunk_rows
        self._cleaned_at = 0.0

    def _candidates(self) -> Sequence[Any]:
        with self.db.engine.connect() as conn:
            return conn.execute(
                select(BulkJob.id, BulkJob.vault_id, BulkJob.org_id, BulkJob.client_id)
                .where(BulkJob.state.in_(ACTIVE_STATES))
                .order_by(BulkJob.served_at.asc().nulls_first(), BulkJob.created_at)
                .limit(CANDIDATES)
            ).all()

    def _keys(self, job: Any) -> JobKeys:
        """Keys are loaded (and cached) outside the write transaction: loading one
        may itself need a write."""
        return JobKeys(
            job.id,
            job.vault_id,
            job.org_id,
            self.vault_keys.cipher(job.vault_id),
            self.vault_keys.fingerprinter(job.org_id),
        )

    def step(self) -> bool:
        """Process one chunk; False when there was nothing to do."""
        if time.monotonic() - self._cleaned_at > CLEANUP_EVERY:
            self._cleaned_at = time.monotonic()
            discard_stale_uploads(self.db, STALE_UPLOAD)
        jobs = {job.id: job for job in self._candidates()}
        if not jobs:
            return False
        keys = {job_id: self._keys(job) for job_id, job in jobs.items()}
        try:
            return self._chunk(keys, jobs, self.chunk_rows) is not None
        except Exception:
            log.exception("a bulk chunk failed; retrying its rows one at a time")
        for _ in range(self.chunk_rows):
            try:
                if self._chunk(keys, jobs, 1) is None:
                    break
            except Exception:
                log.exception("a bulk row failed unexpectedly; recording it as failed")
                self._fail_next_row(jobs)
        return True

    def _fail_next_row(self, jobs: dict[str, Any]) -> None:
        with self.db.transaction() as session:
            job = lock_job(session, list(jobs))
            if job is not None:
                fail_next_row(session, job)

    def _chunk(self, keys: dict[str, JobKeys], jobs: dict[str, Any], limit: int) -> Any:
        with self.db.transaction() as session:
            job = lock_job(session, list(jobs))
            if job is None:
                return None
            result = run_chunk(session, keys[job.id], self.provider_for, job, limit)
            if result.rows:
                write_audit(session, _audit(jobs[job.id], result))
            return result


def _audit(job: Any, result: ChunkResult) -> AuditRecord:
    return AuditRecord(
        actor_type="service_account",
        actor_id=job.client_id,
        action="network_token.bulk_provision",
        outcome="success",
        org_id=job.org_id,
        vault_id=job.vault_id,
        target_type="bulk_job",
        target_id=job.id,
        details={
            "rows": [result.first_row, result.last_row],
            "succeeded": result.succeeded,
            "failed": result.rows - result.succeeded,
            "cards_enrolled": result.enrolled,
        },
    )
