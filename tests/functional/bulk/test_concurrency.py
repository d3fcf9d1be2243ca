"""Bulk workers working at once: every row exactly once, whatever happens between a
chunk's preparation (no lock) and its write.

Some tests drive a chunk's two steps themselves, with the server's own code against
the server's database, so that something can happen in between at a chosen moment:
a ``POST /cards`` or ``POST /network-tokens`` for the same card, or a second worker
that took the rows over. Their jobs are made already claimed (by the test, for an
hour), so the server's workers leave them alone.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import func, select, update

from cardvault.bulk.claims import Claim
from cardvault.bulk.csvfile import InputRow
from cardvault.bulk.jobs import ACTIVE_STATES, Owner, add_rows, create_job, queue_job
from cardvault.bulk.plan import JobKeys
from cardvault.bulk.processing import ChunkResult, Prepared, prepare_chunk, write_chunk
from cardvault.crypto.pan import Pan
from cardvault.keys.vault_keys import VaultKeys
from cardvault.networks.registry import providers
from cardvault.store import Database, create_database
from cardvault.store.bulk_models import BulkJob, BulkRow
from cardvault.store.types import utcnow
from tests.conftest import BACKENDS, MakeServer
from tests.factories import Factory
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.bulk.helpers import Bulk, Counts, csv_text
from tests.servers import Server

HOUR = dt.timedelta(hours=1)
PROVIDERS = providers()  # the server's: the default token service


@dataclass
class Chunks:
    """A bulk worker's steps, run by the test on the server's database."""

    db: Database
    keys: JobKeys
    claim: Claim

    def prepare(self) -> Prepared:
        with self.db.sessions() as session:
            return prepare_chunk(session, self.keys, PROVIDERS, self.claim)

    def write(self, prepared: Prepared) -> ChunkResult | None:
        with self.db.transaction() as session:
            return write_chunk(session, self.keys, PROVIDERS, prepared)


MakeChunks = Callable[[Bulk, Sequence[InputRow], dt.datetime], Chunks]


@pytest.fixture
def chunks_of(server: Server, factory: Factory) -> Iterator[MakeChunks]:
    db = create_database(server.database_url)

    def make(bulk: Bulk, rows: Sequence[InputRow], claimed_until: dt.datetime) -> Chunks:
        """A queued job of these rows, all claimed until ``claimed_until``."""
        org_id, vault_id = bulk.client.org_id, bulk.vault_id
        vault_keys = VaultKeys(db, factory.kek)
        cipher = vault_keys.cipher(vault_id)
        job_id = create_job(db, Owner(vault_id, org_id, bulk.client.client_id))
        add_rows(db, job_id, rows, cipher)
        with db.write_connection() as conn:
            conn.execute(
                update(BulkRow).where(BulkRow.job_id == job_id).values(claimed_until=claimed_until)
            )
        queue_job(db, job_id, len(rows))
        keys = JobKeys(job_id, vault_id, org_id, cipher, vault_keys.fingerprinter(org_id))
        claim = Claim(job_id, vault_id, org_id, bulk.client.client_id, tuple(r.row for r in rows))
        return Chunks(db, keys, claim)

    yield make
    db.dispose()


def _pan_row(row: int, pan: str, month: int = 7) -> InputRow:
    return InputRow(row, pan=Pan(pan), exp_month=month, exp_year=NEXT_YEAR)


def test_a_card_enrolled_while_its_row_was_prepared_is_reused(
    server: Server, factory: Factory, chunks_of: MakeChunks
) -> None:
    bulk = Bulk(server, factory)
    pans = [random_pan() for _ in range(3)]
    chunks = chunks_of(bulk, [_pan_row(n, pan) for n, pan in enumerate(pans, 1)], utcnow() + HOUR)
    prepared = chunks.prepare()  # plans a new card for each PAN
    card = bulk.card(pans[1])  # POST /cards meanwhile
    token = bulk.provision(bulk.card(pans[2])).json()  # and POST /network-tokens

    result = chunks.write(prepared)
    assert result is not None and (result.rows, result.succeeded) == (3, 3)
    job = bulk.job(chunks.claim.job_id)
    assert (job["state"], job["processed"], job["succeeded"]) == ("completed", 3, 3)
    lines = bulk.results(chunks.claim.job_id)[1:]
    assert lines[1][1] == card["pan_alias"]  # the card POST /cards made, not a second one
    assert lines[2][1] == token["pan_alias"]
    assert lines[2][3:6] == [
        token["network_token_last4"],
        token["expires_at"],
        token["payment_account_reference"],
    ]  # the card's one live token, not a second one
    counts = Counts(server, bulk.vault_id)
    assert (counts()["cards"], counts()["tokens"]) == (3, 3)
    counts.close()


def test_rows_taken_over_by_another_worker_are_written_once(
    server: Server, factory: Factory, chunks_of: MakeChunks
) -> None:
    """A worker whose claim lapsed and the worker that took the rows over both prepare
    them; whichever writes first records them, the other writes nothing."""
    bulk = Bulk(server, factory)
    counts = Counts(server, bulk.vault_id)
    networks_had = counts.simulated_tokens()
    known = bulk.card()
    rows = [_pan_row(n, random_pan()) for n in range(1, 8)]
    rows.append(InputRow(8, pan_alias=str(known["pan_alias"]), exp_month=7, exp_year=NEXT_YEAR))
    chunks = chunks_of(bulk, rows, utcnow() + HOUR)
    taken = replace(chunks, claim=replace(chunks.claim, rows=(1, 2, 3, 4, 5, 8)))
    slow, fast = taken.prepare(), taken.prepare()
    first = taken.write(fast)
    second = taken.write(slow)
    assert first is not None and (first.rows, first.succeeded, first.enrolled) == (6, 6, 5)
    assert second is not None and second.rows == 0
    assert bulk.job(chunks.claim.job_id)["processed"] == 6
    chunks.write(chunks.prepare())  # the rest of the job
    job = bulk.job(chunks.claim.job_id)
    assert (job["state"], job["processed"], job["succeeded"], job["failed"]) == (
        "completed",
        8,
        8,
        0,
    )
    assert (counts()["cards"], counts()["tokens"]) == (8, 8)
    assert counts.simulated_tokens() == networks_had + 8  # no network asked twice either
    assert counts.stored_pans(chunks.claim.job_id) == 0
    counts.close()
    assert {line[2] for line in bulk.results(chunks.claim.job_id)[1:]} == {"ACTIVE"}


def test_a_cancelled_job_writes_nothing_it_had_prepared(
    server: Server, factory: Factory, chunks_of: MakeChunks
) -> None:
    bulk = Bulk(server, factory)
    chunks = chunks_of(bulk, [_pan_row(1, random_pan())], utcnow() + HOUR)
    prepared = chunks.prepare()
    assert (
        bulk.call("POST", f"/network-tokens/bulk/{chunks.claim.job_id}/cancel").status_code == 200
    )
    assert chunks.write(prepared) is None
    counts = Counts(server, bulk.vault_id)
    assert (counts()["cards"], counts()["tokens"]) == (0, 0)
    counts.close()
    assert bulk.results(chunks.claim.job_id)[1][2] == "CANCELLED"


def _most_claimed_at_once(db: Database, job_id: str) -> int:
    """The most rows of the job seen claimed at one moment while it runs (sampled as
    often as the database answers: a chunk's claim lives only while it is prepared)."""
    state = select(BulkJob.state).where(BulkJob.id == job_id)
    most, deadline = 0, time.monotonic() + 120
    with db.engine.connect() as conn:
        while time.monotonic() < deadline:
            now = utcnow()
            claimed = select(func.count()).where(
                BulkRow.job_id == job_id, BulkRow.state.is_(None), BulkRow.claimed_until > now
            )
            most = max(most, int(conn.execute(claimed).scalar_one()))
            active = conn.execute(state).scalar_one() in ACTIVE_STATES
            conn.rollback()  # the next sample sees what was committed meanwhile
            if not active:
                return most
    raise AssertionError(f"job {job_id} still running after 120 s")


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_share_a_job_and_do_every_row_once(
    make_server: MakeServer, backend: str
) -> None:
    rows, chunk = 1200, 25
    server = make_server(backend, workers=2, bulk_chunk_rows=chunk, bulk_pause=0.005)
    factory = Factory(server)
    bulk = Bulk(server, factory)
    pans = sorted({random_pan() for _ in range(rows)})
    assert len(pans) == rows
    upload = bulk.upload(
        csv_text(("pan", "exp_month", "exp_year"), [(p, 7, NEXT_YEAR) for p in pans])
    )
    assert upload.status_code == 202, upload.text
    job_id = str(upload.json()["id"])
    db = create_database(server.database_url)
    most = _most_claimed_at_once(db, job_id)
    db.dispose()
    assert most > chunk, "the two workers never held a chunk each at the same moment"

    job = bulk.job(job_id)
    assert (job["state"], job["processed"], job["succeeded"]) == ("completed", rows, rows)
    counts = Counts(server, bulk.vault_id)
    assert (counts()["cards"], counts()["tokens"], counts.simulated_tokens()) == (rows, rows, rows)
    counts.close()
    lines = bulk.results(job_id)[1:]
    assert [line[0] for line in lines] == [str(n) for n in range(1, rows + 1)]
    assert {line[2] for line in lines} == {"ACTIVE"}
    assert len({line[1] for line in lines}) == rows
    factory.close()


def _stored_job(db: Database, factory: Factory, bulk: Bulk, count: int) -> str:
    """A job of ``count`` new-PAN rows, stored but not queued yet."""
    rows = [_pan_row(n, random_pan()) for n in range(1, count + 1)]
    job_id = create_job(db, Owner(bulk.vault_id, bulk.client.org_id, bulk.client.client_id))
    add_rows(db, job_id, rows, VaultKeys(db, factory.kek).cipher(bulk.vault_id))
    return job_id


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_lapsed_claim_is_taken_over_and_a_live_one_waits(
    make_server: MakeServer, backend: str
) -> None:
    server = make_server(backend, bulk_chunk_rows=10, bulk_poll_interval=0.05)
    factory = Factory(server)
    bulk = Bulk(server, factory)
    db = create_database(server.database_url)
    job_id = _stored_job(db, factory, bulk, 60)
    now = utcnow()
    with db.write_connection() as conn:  # rows 1-20: a live claim; 21-40: one that lapsed
        for first, until in ((1, now + HOUR), (21, now - dt.timedelta(seconds=1))):
            conn.execute(
                update(BulkRow)
                .where(BulkRow.job_id == job_id, BulkRow.row.between(first, first + 19))
                .values(claimed_until=until)
            )
    queue_job(db, job_id, 60)

    deadline = time.monotonic() + 60
    while int(str(bulk.job(job_id)["processed"])) < 40:
        assert time.monotonic() < deadline, bulk.job(job_id)
        time.sleep(0.05)
    time.sleep(0.3)  # a few more polls: the live claim still keeps the server away
    lines = bulk.results(job_id)[1:]
    assert {line[2] for line in lines[:20]} == {"QUEUED"}
    assert {line[2] for line in lines[20:]} == {"ACTIVE"}

    with db.write_connection() as conn:  # the worker holding rows 1-20 died
        conn.execute(update(BulkRow).where(BulkRow.job_id == job_id).values(claimed_until=utcnow()))
    job = bulk.wait(job_id)
    assert (job["state"], job["processed"], job["succeeded"]) == ("completed", 60, 60)
    counts = Counts(server, bulk.vault_id)
    assert (counts()["cards"], counts()["tokens"]) == (60, 60)
    counts.close()
    db.dispose()
    factory.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_claim_that_lapses_unnoticed_is_taken_over(make_server: MakeServer, backend: str) -> None:
    """The worker that claimed the job's last rows died, and nothing else is committed
    afterwards: the server still looks again once the claim has lapsed."""
    server = make_server(backend, bulk_chunk_rows=10, bulk_poll_interval=0.05)
    factory = Factory(server)
    bulk = Bulk(server, factory)
    db = create_database(server.database_url)
    job_id = _stored_job(db, factory, bulk, 20)
    with db.write_connection() as conn:
        conn.execute(
            update(BulkRow)
            .where(BulkRow.job_id == job_id)
            .values(claimed_until=utcnow() + dt.timedelta(seconds=1))
        )
    queue_job(db, job_id, 20)  # the last commit: the server sees only claimed rows

    job = bulk.wait(job_id, timeout=30)
    assert (job["state"], job["processed"], job["succeeded"]) == ("completed", 20, 20)
    db.dispose()
    factory.close()


def test_jobs_of_two_vaults_take_turns(make_server: MakeServer) -> None:
    server = make_server("sqlite", bulk_chunk_rows=10, bulk_pause=0.02)
    factory = Factory(server)
    big, small = Bulk(server, factory), Bulk(server, factory)
    header = ("pan", "exp_month", "exp_year")
    big_job = big.upload(csv_text(header, [(random_pan(), 7, NEXT_YEAR) for _ in range(400)]))
    small_job = small.upload(csv_text(header, [(random_pan(), 7, NEXT_YEAR) for _ in range(30)]))
    assert big_job.status_code == small_job.status_code == 202
    done = small.wait(str(small_job.json()["id"]), timeout=120)
    assert done["succeeded"] == 30
    meanwhile = big.job(str(big_job.json()["id"]))
    assert meanwhile["state"] == "running" and int(str(meanwhile["processed"])) < 400
    factory.close()
