"""Bulk enrolment jobs of the caller's vault: upload a file of cards, follow the job,
read its results, cancel it.

Each use case takes the :class:`~cardvault.callers.VaultCaller` and plain values and
hands its own audit record to the audit buffer (the job's rows are written by
``bulk/upload.py`` and processed by ``bulk/worker.py``); it answers with the job's
document (:func:`cardvault.bulk.jobs.job_out`) or, for the results, their CSV lines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from cardvault.audit import AuditRecord
from cardvault.bulk import jobs
from cardvault.bulk.csvfile import Columns
from cardvault.bulk.results import result_lines
from cardvault.bulk.upload import receive
from cardvault.callers import VaultCaller


def _audit(caller: VaultCaller, action: str, job_id: str, **details: Any) -> AuditRecord:
    return caller.record(action, "bulk_job", job_id, **details)


async def _job(caller: VaultCaller, job_id: str) -> Any:
    services = caller.runtime

    def read() -> Any:
        with services.db.engine.connect() as conn:
            return jobs.read_job(conn, caller.vault_id, job_id)

    return await services.run_db(read)


async def upload(caller: VaultCaller, chunks: AsyncIterator[bytes]) -> dict[str, Any]:
    """Store the file (its bytes as they arrive) as a new queued job; a bad header
    refuses the file and creates nothing. A ``pan`` column also needs ``cards:write``."""
    services = caller.runtime

    def on_header(columns: Columns) -> None:
        if columns.has_pan:
            caller.principal.require("cards:write")

    job_id = await receive(
        chunks,
        db=services.db,
        owner=jobs.Owner(caller.vault_id, caller.org_id, caller.principal.client_id),
        cipher=services.vault_keys.cipher(caller.vault_id),
        run_db=services.run_db,
        on_header=on_header,
    )
    job = await _job(caller, job_id)
    services.audit.add(_audit(caller, "bulk_job.create", job_id, total=job.total))
    return jobs.job_out(job)


async def job_status(caller: VaultCaller, job_id: str) -> dict[str, Any]:
    """The job's state and counts."""
    return jobs.job_out(await _job(caller, job_id))


async def job_results(caller: VaultCaller, job_id: str) -> Iterator[str]:
    """The job's results: one CSV line per input row, in input order (never a PAN),
    read from the database as they are iterated (blocking: iterate in a thread)."""
    job = await _job(caller, job_id)
    caller.runtime.audit.add(_audit(caller, "bulk_job.results", job_id))
    return result_lines(caller.runtime.db, job_id, job.state)


async def cancel(caller: VaultCaller, job_id: str) -> dict[str, Any]:
    """Stop the job; rows already processed keep their results."""
    services = caller.runtime
    job = await services.run_db(jobs.cancel_job, services.db, caller.vault_id, job_id)
    services.audit.add(_audit(caller, "bulk_job.cancel", job_id))
    return jobs.job_out(job)
