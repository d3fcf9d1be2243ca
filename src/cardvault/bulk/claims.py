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

from sqlalchemy import Connection, bindparam, func, or_, select, update

from cardvault.bulk.jobs import ACTIVE_STATES, COMPLETED, RUNNING
from cardvault.store.direct import Direct
from cardvault.store.models import Base
from cardvault.store.types import utcnow

LEASE = dt.timedelta(seconds=5)  # far longer than preparing a chunk takes

_JOBS = Base.metadata.tables["bulk_jobs"]
_ROWS = Base.metadata.tables["bulk_rows"]
_ACTIVE = _JOBS.c.state.in_(ACTIVE_STATES)
_UNPROCESSED = (_ROWS.c.job_id == bindparam("b_job"), _ROWS.c.state.is_(None))
_UNCLAIMED = or_(_ROWS.c.claimed_until.is_(None), _ROWS.c.claimed_until <= bindparam("b_now"))
# Prebuilt statements: building one costs more than running it.
_CANDIDATES = Direct(
    select(_JOBS.c.id)
    .where(_JOBS.c.id.in_(bindparam("b_ids", expanding=True)), _ACTIVE)
    .order_by(_JOBS.c.served_at.asc().nulls_first(), _JOBS.c.created_at)
)
_LOCK_JOB = Direct(select(_JOBS).where(_JOBS.c.id == bindparam("b_job"), _ACTIVE).with_for_update())
_CLAIMABLE = Direct(
    select(_ROWS.c.row)
    .where(*_UNPROCESSED, _UNCLAIMED)
    .order_by(_ROWS.c.row)
    .limit(bindparam("b_limit"))
)
# The rows _CLAIMABLE found are all the claimable rows between its first and last.
_TAKE = Direct(
    update(_ROWS)
    .where(
        *_UNPROCESSED, _UNCLAIMED, _ROWS.c.row.between(bindparam("b_first"), bindparam("b_last"))
    )
    .values(claimed_until=bindparam("b_until"))
)
_SERVE = Direct(
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("b_job"))
    .values(
        served_at=bindparam("b_now"),
        state=RUNNING,
        started_at=func.coalesce(_JOBS.c.started_at, bindparam("b_now")),
    )
)
_ANY_UNPROCESSED = Direct(select(_ROWS.c.row).where(*_UNPROCESSED).limit(1))
_CLOSE = Direct(
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("b_job"))
    .values(state=COMPLETED, finished_at=bindparam("b_now"), served_at=bindparam("b_now"))
)


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
    return _LOCK_JOB.first(conn, {"b_job": job_id})


def claim_rows(
    conn: Connection, job_ids: Sequence[str], limit: int, lease: dt.timedelta = LEASE
) -> Claim | None:
    """Claim up to ``limit`` unprocessed, unclaimed rows of the least recently served
    of these jobs that has some, in the caller's write transaction; None if none has.
    A job found without unprocessed rows is closed (its counters say otherwise only
    if rows were lost; closing it anyway keeps it from being served for ever)."""
    now = utcnow()
    candidates = [found.id for found in _CANDIDATES.all(conn, {"b_ids": list(job_ids)})]
    for job_id in candidates:
        job = lock_active_job(conn, job_id)
        if job is None:
            continue
        params = {"b_job": job_id, "b_now": now}
        rows = [found.row for found in _CLAIMABLE.all(conn, {**params, "b_limit": limit})]
        if rows:
            span = {"b_first": rows[0], "b_last": rows[-1], "b_until": now + lease}
            _TAKE.execute(conn, [{**params, **span}])
            _SERVE.execute(conn, [params])
            return Claim(job.id, job.vault_id, job.org_id, job.client_id, tuple(rows))
        if _ANY_UNPROCESSED.first(conn, params) is None:
            _CLOSE.execute(conn, [params])
    return None
