"""A bulk job whose database connection drops while it prepares its chunks: every
row ends with its real outcome. A transient database error is retried, never
recorded as a row's ``internal-error``."""

from __future__ import annotations

import json
import time

from sqlalchemy import func, select

from cardvault.store.bulk_models import BulkRow
from tests.faults.conftest import MakeProxied, Proxied
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.bulk.helpers import Bulk, csv_text

ROWS = 12
# Reading a chunk's rows to prepare them (bulk/processing.py's _TO_PREPARE) is the
# one statement that selects the encrypted PANs of bulk rows.
PREPARE_STATEMENT = b"bulk_rows.pan_encrypted"


def _bulk_warnings(proxied: Proxied) -> list[dict[str, object]]:
    lines = proxied.server.log_path.read_text(errors="replace").splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return [e for e in entries if "bulk" in str(e.get("message"))]


def test_rows_whose_chunk_lost_its_connection_are_retried_not_failed(
    make_proxied: MakeProxied,
) -> None:
    proxied = make_proxied(bulk_chunk_rows=5)
    bulk = Bulk(proxied.server, proxied.factory)
    pans = sorted({random_pan() for _ in range(ROWS)})
    proxied.proxy.drop_on = PREPARE_STATEMENT
    upload = bulk.upload(
        csv_text(("pan", "exp_month", "exp_year"), [(p, 7, NEXT_YEAR) for p in pans])
    )
    assert upload.status_code == 202, upload.text
    job_id = str(upload.json()["id"])

    deadline = time.monotonic() + 20
    while len(_bulk_warnings(proxied)) < 2:  # the rows met the fault, and again
        assert time.monotonic() < deadline, "the bulk worker never met the fault twice"
        time.sleep(0.05)
    with proxied.factory.db.engine.connect() as conn:
        recorded = conn.execute(
            select(func.count()).where(BulkRow.job_id == job_id, BulkRow.state.is_not(None))
        ).scalar_one()
    assert recorded == 0, "rows were given an outcome while the database was unreachable"
    proxied.proxy.drop_on = None

    job = bulk.wait(job_id, timeout=30)
    assert (job["state"], job["processed"], job["succeeded"]) == ("completed", ROWS, ROWS), job
    lines = bulk.results(job_id)[1:]
    assert [line[6] for line in lines] == [""] * ROWS  # no error_code on any row
    assert {line[2] for line in lines} == {"ACTIVE"}
    warnings = _bulk_warnings(proxied)
    assert all(w["level"] == "warning" and "exception" not in w for w in warnings), warnings
