"""The results file of a job: one CSV line per input row, in input order, never a PAN.

Written by :class:`cardvault.csv_out.CsvWriter`, so no cell runs as a formula.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from cardvault.bulk.jobs import CANCELLED
from cardvault.csv_out import CsvWriter
from cardvault.store.bulk_models import BulkRow
from cardvault.store.db import Database

HEADER = (
    "row",
    "pan_alias",
    "state",
    "network_token_last4",
    "expires_at",
    "payment_account_reference",
    "error_code",
    "error_detail",
)
PAGE = 2000
_COLUMNS = (
    BulkRow.row,
    BulkRow.pan_alias,
    BulkRow.state,
    BulkRow.network_token_last4,
    BulkRow.expires_at,
    BulkRow.payment_account_reference,
    BulkRow.error_code,
    BulkRow.error_detail,
)


def _line(row: Any, job_state: str) -> tuple[Any, ...]:
    if row.state is None:  # not processed (yet)
        unprocessed = "CANCELLED" if job_state == CANCELLED else "QUEUED"
        return (row.row, row.pan_alias, unprocessed, None, None, None, None, None)
    return tuple(row)


def _page(db: Database, job_id: str, after: int) -> list[Any]:
    with db.engine.connect() as conn:
        return list(
            conn.execute(
                select(*_COLUMNS)
                .where(BulkRow.job_id == job_id, BulkRow.row > after)
                .order_by(BulkRow.row)
                .limit(PAGE)
            )
        )


def result_lines(db: Database, job_id: str, job_state: str) -> Iterator[str]:
    """The results CSV, a page of rows at a time (the header first)."""
    buffer = io.StringIO()
    writer = CsvWriter(buffer)
    writer.writerow(HEADER)
    after = 0
    while True:
        rows = _page(db, job_id, after)
        for row in rows:
            writer.writerow(_line(row, job_state))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < PAGE:
            return
        after = rows[-1].row
