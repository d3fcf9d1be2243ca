"""The background worker of one server process: fair, bounded chunk scheduling.

Each call of :meth:`BulkWorker.step` processes at most one chunk, of the active job
served least recently that has rows left, so jobs (and the vaults they belong to)
take turns chunk by chunk and one huge file never starves another. A step claims its
rows (a short write transaction, :mod:`cardvault.bulk.claims`), prepares them with no
lock held and writes them in a second short write transaction
(:mod:`cardvault.bulk.processing`): the workers of all processes prepare their chunks
at the same time and queue only for the writes. The server runs one worker per
process, one chunk at a time, pausing between chunks so that interactive requests get
the database's write lock and the interpreter in between.

A chunk that fails because the database is out of reach (a restart, a reset
connection, a full disk) is not the rows' fault: nothing of it is recorded, its claim
lapses and the rows are processed again once the database is back. Only an error of
the rows themselves is recorded as their outcome.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Sequence

from sqlalchemy import select

from cardvault.audit import AuditRecord, write_audit
from cardvault.bulk.claims import LEASE, Claim, claim_rows
from cardvault.bulk.jobs import ACTIVE_STATES, discard_stale_uploads
from cardvault.bulk.plan import JobKeys
from cardvault.bulk.processing import ChunkResult, fail_rows, prepare_chunk, write_chunk
from cardvault.keys.vault_keys import VaultKeys
from cardvault.network_tokens.services import ProviderFor
from cardvault.store.bulk_models import BulkJob
from cardvault.store.db import Database
from cardvault.store.unavailable import is_unavailable

log = logging.getLogger(__name__)

CANDIDATES = 8  # active jobs considered per step, least recently served first
STALE_UPLOAD = dt.timedelta(hours=1)  # an upload still receiving after this has died
CLEANUP_EVERY = 600.0  # seconds

_CANDIDATES = (
    select(BulkJob.id)
    .where(BulkJob.state.in_(ACTIVE_STATES))
    .order_by(BulkJob.served_at.asc().nulls_first(), BulkJob.created_at)
    .limit(CANDIDATES)
)


class BulkWorker:
    def __init__(
        self,
        db: Database,
        vault_keys: VaultKeys,
        provider_for: ProviderFor,
        chunk_rows: int,
        lease: dt.timedelta = LEASE,
    ) -> None:
        self.db = db
        self.vault_keys = vault_keys
        self.provider_for = provider_for
        self.chunk_rows = chunk_rows
        self.lease = lease
        self._cleaned_at = 0.0
        self._look_again_at: float | None = None

    def due(self) -> bool:
        """Whether to look again though nothing was committed: claims of a worker that
        died lapse silently."""
        return self._look_again_at is not None and time.monotonic() >= self._look_again_at

    def _candidates(self) -> Sequence[str]:
        with self.db.engine.connect() as conn:
            return conn.scalars(_CANDIDATES).all()

    def _keys(self, claim: Claim) -> JobKeys:
        """Keys are loaded (and cached) outside any transaction of the chunk: loading
        one may itself need a write."""
        return JobKeys(
            claim.job_id,
            claim.vault_id,
            claim.org_id,
            self.vault_keys.cipher(claim.vault_id),
            self.vault_keys.fingerprinter(claim.org_id),
        )

    def step(self) -> bool:
        """Process one chunk; False when there was nothing to do."""
        if time.monotonic() - self._cleaned_at > CLEANUP_EVERY:
            self._cleaned_at = time.monotonic()
            discard_stale_uploads(self.db, STALE_UPLOAD)
        job_ids = self._candidates()
        if not job_ids:
            self._look_again_at = None
            return False
        with self.db.write_connection() as conn:
            claim = claim_rows(conn, job_ids, self.chunk_rows, self.lease)
        if claim is None:
            # Active jobs whose rows left are all claimed: by a live worker, which will
            # commit them; or by one that died, whose claims lapse within a lease.
            self._look_again_at = time.monotonic() + self.lease.total_seconds()
            return False
        self._look_again_at = None
        keys = self._keys(claim)
        try:
            self._chunk(keys, claim)
        except Exception as error:
            if is_unavailable(error):
                raise  # transient: the claim lapses and the rows are tried again
            log.exception("a bulk chunk failed; retrying its rows one at a time")
            self._one_by_one(keys, claim)
        return True

    def _chunk(self, keys: JobKeys, claim: Claim) -> None:
        with self.db.sessions() as session:
            prepared = prepare_chunk(session, keys, self.provider_for, claim)
        if not prepared.rows:
            return
        with self.db.transaction() as session:
            result = write_chunk(session, keys, self.provider_for, prepared)
            if result is not None and result.rows:
                write_audit(session, _audit(claim, result))

    def _one_by_one(self, keys: JobKeys, claim: Claim) -> None:
        for row in claim.rows:
            alone = dataclasses.replace(claim, rows=(row,))
            try:
                self._chunk(keys, alone)
            except Exception as error:
                if is_unavailable(error):
                    # The database, not the row: never the row's recorded outcome.
                    raise
                log.exception("a bulk row failed unexpectedly; recording it as failed")
                with self.db.transaction() as session:
                    fail_rows(session, alone)


def _audit(claim: Claim, result: ChunkResult) -> AuditRecord:
    return AuditRecord(
        actor_type="service_account",
        actor_id=claim.client_id,
        action="network_token.bulk_provision",
        outcome="success",
        org_id=claim.org_id,
        vault_id=claim.vault_id,
        target_type="bulk_job",
        target_id=claim.job_id,
        details={
            "rows": [result.first_row, result.last_row],
            "succeeded": result.succeeded,
            "failed": result.rows - result.succeeded,
            "cards_enrolled": result.enrolled,
        },
    )
