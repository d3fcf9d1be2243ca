"""Bulk jobs over time: cancellation, and a server killed mid-job that resumes."""

from __future__ import annotations

import time

import pytest

from tests.conftest import BACKENDS, MakeServer
from tests.factories import Factory
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.bulk.helpers import Bulk, Counts, csv_text

PAN_HEADER = ("pan", "exp_month", "exp_year")
ALIAS_HEADER = ("pan_alias", "exp_month", "exp_year")


def _wait_for(bulk: Bulk, job_id: str, processed: int, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        job = bulk.job(job_id)
        if int(str(job["processed"])) >= processed:
            return job
        assert time.monotonic() < deadline, f"job stuck: {job}"
        time.sleep(0.02)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cancel_stops_a_job_and_keeps_what_was_done(make_server: MakeServer, backend: str) -> None:
    server = make_server(backend, bulk_chunk_rows=1, bulk_pause=0.2)
    factory = Factory(server)
    bulk = Bulk(server, factory)
    aliases = [bulk.card()["pan_alias"] for _ in range(30)]
    upload = bulk.upload(
        csv_text(
            ALIAS_HEADER,
            [(alias, 7, NEXT_YEAR) for alias in aliases],
        )
    )
    job_id = str(upload.json()["id"])
    _wait_for(bulk, job_id, 1)
    cancelled = bulk.call("POST", f"/network-tokens/bulk/{job_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled" and cancelled.json()["finished_at"]
    done = int(cancelled.json()["processed"])
    assert 1 <= done < 30
    time.sleep(0.6)  # a worker would have taken two more chunks by now
    assert bulk.job(job_id)["processed"] == done
    assert bulk.call("POST", f"/network-tokens/bulk/{job_id}/cancel").status_code == 200
    lines = bulk.results(job_id)[1:]
    assert [line[0] for line in lines] == [str(n) for n in range(1, 31)]
    assert {line[2] for line in lines[:done]} == {"ACTIVE"}
    assert {line[2] for line in lines[done:]} == {"CANCELLED"}
    counts = Counts(server, bulk.vault_id)
    assert counts()["tokens"] == done
    counts.close()

    finished, _ = bulk.run(csv_text(ALIAS_HEADER, [(aliases[0], 7, NEXT_YEAR)]))
    refused = bulk.call("POST", f"/network-tokens/bulk/{finished['id']}/cancel")
    assert refused.status_code == 409
    assert refused.json()["errors"][0]["code"] == "invalid-state"
    factory.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_job_killed_mid_run_completes_after_restart_with_every_row_once(
    make_server: MakeServer, backend: str
) -> None:
    rows = 1500
    server = make_server(backend, workers=2, bulk_chunk_rows=25, bulk_pause=0.01)
    factory = Factory(server)
    bulk = Bulk(server, factory)
    pans = {random_pan() for _ in range(rows)}
    assert len(pans) == rows
    upload = bulk.upload(csv_text(PAN_HEADER, [(pan, 7, NEXT_YEAR) for pan in sorted(pans)]))
    assert upload.status_code == 202, upload.text
    job_id = str(upload.json()["id"])
    before = _wait_for(bulk, job_id, 100)
    server.kill()
    counts = Counts(server, bulk.vault_id)
    stopped = counts()
    assert 100 <= stopped["tokens"] < rows, f"the kill came too late to prove anything: {before}"
    assert stopped["tokens"] == stopped["cards"]  # each chunk committed whole, or not at all

    server.start()  # the same data directory and database
    job = bulk.wait(job_id, timeout=120)
    assert {k: job[k] for k in ("state", "total", "processed", "succeeded", "failed")} == {
        "state": "completed",
        "total": rows,
        "processed": rows,
        "succeeded": rows,
        "failed": 0,
    }
    after = counts()
    assert (after["cards"], after["tokens"]) == (rows, rows)
    assert counts.simulated_tokens() == rows  # the network was not asked twice either
    assert counts.stored_pans(job_id) == 0
    lines = bulk.results(job_id)[1:]
    assert [line[0] for line in lines] == [str(n) for n in range(1, rows + 1)]
    assert {line[2] for line in lines} == {"ACTIVE"}
    assert len({line[1] for line in lines}) == rows
    counts.close()
    factory.close()
