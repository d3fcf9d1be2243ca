"""Claiming rows of bulk jobs on a real database: disjoint claims, lapsed claims taken
over, least recently served job first, finished jobs closed."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from cardvault.accounts import services as accounts
from cardvault.bulk.claims import Claim, claim_rows
from cardvault.bulk.csvfile import InputRow
from cardvault.bulk.jobs import Owner, add_rows, create_job, queue_job
from cardvault.crypto.envelope import VaultCipher
from cardvault.store import Database, create_database
from cardvault.store.bulk_models import BulkJob, BulkRow
from cardvault.store.migrate import upgrade
from cardvault.store.types import utcnow
from tests.conftest import BACKENDS, Databases

LEASE = dt.timedelta(seconds=30)


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, databases: Databases) -> Iterator[Database]:
    url = databases.url(request.param)
    upgrade(url)
    database = create_database(url)
    yield database
    database.dispose()


def _job(db: Database, rows: int) -> str:
    with db.transaction() as session:
        org = accounts.create_organization(session, "Acme")
        vault = accounts.create_vault(session, org.id, "main", actor=None)
        org_id, vault_id = org.id, vault.id
    job_id = create_job(db, Owner(vault_id, org_id, "client"))
    cipher = VaultCipher(vault_id, {1: secrets.token_bytes(32)}, 1)
    lines = [
        InputRow(n, pan_alias=f"pan_{n}", exp_month=7, exp_year=2040) for n in range(1, rows + 1)
    ]
    add_rows(db, job_id, lines, cipher)
    queue_job(db, job_id, rows)
    return job_id


def _claim(db: Database, job_ids: list[str], limit: int) -> Claim | None:
    with db.write_connection() as conn:
        return claim_rows(conn, job_ids, limit, LEASE)


def _set_claims(db: Database, job_id: str, rows: range, until: dt.datetime | None) -> None:
    with db.write_connection() as conn:
        conn.execute(
            update(BulkRow)
            .where(BulkRow.job_id == job_id, BulkRow.row.in_(list(rows)))
            .values(claimed_until=until)
        )


def _record(db: Database, job_id: str, rows: range) -> None:
    with db.write_connection() as conn:
        conn.execute(
            update(BulkRow)
            .where(BulkRow.job_id == job_id, BulkRow.row.in_(list(rows)))
            .values(state="ACTIVE")
        )


def _job_state(db: Database, job_id: str) -> str:
    with db.engine.connect() as conn:
        return str(conn.scalar(select(BulkJob.state).where(BulkJob.id == job_id)))


def test_workers_claim_different_rows_in_row_order(db: Database) -> None:
    job_id = _job(db, 25)
    first, second = _claim(db, [job_id], 10), _claim(db, [job_id], 10)
    third, fourth = _claim(db, [job_id], 10), _claim(db, [job_id], 10)
    assert first is not None and second is not None and third is not None
    assert first.rows == tuple(range(1, 11))
    assert second.rows == tuple(range(11, 21))
    assert third.rows == tuple(range(21, 26))
    assert fourth is None  # every unprocessed row is claimed: nothing to do
    assert _job_state(db, job_id) == "running"


def test_a_lapsed_claim_is_taken_over_and_a_live_one_is_not(db: Database) -> None:
    job_id = _job(db, 30)
    now = utcnow()
    _set_claims(db, job_id, range(1, 11), now + dt.timedelta(hours=1))  # a worker at work
    _set_claims(db, job_id, range(11, 21), now - dt.timedelta(seconds=1))  # a worker died
    claim = _claim(db, [job_id], 15)
    assert claim is not None
    assert claim.rows == tuple(range(11, 26))


def test_processed_rows_are_never_claimed_and_a_job_without_rows_left_is_closed(
    db: Database,
) -> None:
    job_id = _job(db, 12)
    _record(db, job_id, range(1, 6))
    claim = _claim(db, [job_id], 100)
    assert claim is not None and claim.rows == tuple(range(6, 13))
    _record(db, job_id, range(6, 13))  # as a chunk's write would, but without counting
    assert _claim(db, [job_id], 100) is None
    assert _job_state(db, job_id) == "completed"


def test_the_least_recently_served_job_goes_first(db: Database) -> None:
    older, newer = _job(db, 40), _job(db, 40)
    order = []
    for _ in range(6):
        claim = _claim(db, [older, newer], 5)
        assert claim is not None
        order.append(claim.job_id)
    assert order == [older, newer] * 3  # the jobs take turns, chunk by chunk
    _set_claims(db, older, range(1, 41), utcnow() + dt.timedelta(hours=1))
    claim = _claim(db, [older, newer], 5)
    assert claim is not None and claim.job_id == newer  # a job with nothing to claim is passed
