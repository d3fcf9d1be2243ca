"""Receiving an uploaded file into a job, batch by batch, without holding the file.

The header is checked before the job exists, so a refused header creates nothing.
Rows are stored durably in batches as they arrive; the job is queued only once the
whole file is stored, and a failed upload deletes what it stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from cardvault.bulk import jobs
from cardvault.bulk.csvfile import Columns, CsvRows, InputRow
from cardvault.crypto.envelope import VaultCipher
from cardvault.store.db import Database

T = TypeVar("T")
BATCH = 1000
RunDb = Callable[..., Awaitable[Any]]


async def receive(
    chunks: AsyncIterator[bytes],
    *,
    db: Database,
    owner: jobs.Owner,
    cipher: VaultCipher,
    run_db: RunDb,
    on_header: Callable[[Columns], None],
) -> str:
    """Store the file as a new queued job; returns its id. Raises
    :class:`~cardvault.bulk.errors.BulkError` (nothing is left stored)."""
    rows = CsvRows()
    job_id: str | None = None
    batch: list[InputRow] = []
    try:
        final = False
        iterator = aiter(chunks)
        while not final:
            data = await anext(iterator, None)
            final = data is None
            batch.extend(rows.feed(data or b"", final=final))
            if job_id is None and rows.columns is not None:
                on_header(rows.columns)
                job_id = await run_db(jobs.create_job, db, owner)
            if job_id is not None and (len(batch) >= BATCH or final):
                await run_db(jobs.add_rows, db, job_id, batch, cipher)
                batch = []
        assert job_id is not None
        await run_db(jobs.queue_job, db, job_id, rows.count)
        return job_id
    except BaseException:
        if job_id is not None:
            await asyncio.shield(run_db(jobs.discard_job, db, job_id))
        raise
