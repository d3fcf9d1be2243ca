"""Models of bulk enrolment jobs and their rows.

Kept apart from :mod:`cardvault.store.models` to keep modules small; same declarative
base. Importing this module registers the tables (the Alembic environment does).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from cardvault.store.models import Base
from cardvault.store.types import utcnow


class BulkJob(Base):
    """A bulk enrolment of network tokens from an uploaded CSV file.

    ``state`` is ``receiving`` while the upload streams in (never shown), then
    ``queued`` → ``running`` → ``completed`` | ``cancelled`` | ``failed``. Counters are
    advanced in the same transaction that records each chunk's results.
    """

    __tablename__ = "bulk_jobs"
    __table_args__ = (Index("ix_bulk_jobs_state_served", "state", "served_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    vault_id: Mapped[str] = mapped_column(ForeignKey("vaults.id"), index=True)
    org_id: Mapped[str] = mapped_column(String(40))
    client_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    # When a worker last took a chunk of this job: the least recently served goes next.
    served_at: Mapped[dt.datetime | None]


class BulkRow(Base):
    """One input row of a bulk job and, once processed (``state`` set), its result.

    A ``pan`` value is kept only encrypted under the vault's data key (bound to the
    job and row) and dropped when the row is processed or the job cancelled.

    A worker claims an unprocessed row for itself until ``claimed_until`` while it
    prepares it outside the write lock, so that the other workers take other rows. The
    claim is only a hint: once it lapses (the worker died) another worker takes the row
    over, and whoever records a result first is the one that counts.
    """

    __tablename__ = "bulk_rows"
    # Workers look for a job's unprocessed rows (state IS NULL) in row order.
    __table_args__ = (Index("ix_bulk_rows_job_state_row", "job_id", "state", "row"),)

    job_id: Mapped[str] = mapped_column(
        ForeignKey("bulk_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    row: Mapped[int] = mapped_column(Integer, primary_key=True)
    pan_alias: Mapped[str | None] = mapped_column(String(40))
    pan_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    exp_month: Mapped[int | None] = mapped_column(Integer)
    exp_year: Mapped[int | None] = mapped_column(Integer)
    holder_info: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    state: Mapped[str | None] = mapped_column(String(16))
    network_token_last4: Mapped[str | None] = mapped_column(String(4))
    expires_at: Mapped[str | None] = mapped_column(String(7))
    payment_account_reference: Mapped[str | None] = mapped_column(String(29))
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_detail: Mapped[str | None] = mapped_column(String(255))
    claimed_until: Mapped[dt.datetime | None]
