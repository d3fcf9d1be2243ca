"""Uploading bulk files and reading jobs, results and database counts in tests."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable, Sequence

import httpx
from sqlalchemy import func, select

from cardvault.store import create_database
from cardvault.store.bulk_models import BulkJob, BulkRow
from cardvault.store.models import Card, NetworkToken, SimulatedToken
from tests.factories import Factory
from tests.functional.api.test_network_tokens import Api
from tests.servers import Server

FINAL = ("completed", "cancelled", "failed")
RESULT_HEADER = [
    "row",
    "pan_alias",
    "state",
    "network_token_last4",
    "expires_at",
    "payment_account_reference",
    "error_code",
    "error_detail",
]


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


class Bulk(Api):
    """A vault's service account that uploads files and follows their jobs."""

    def __init__(self, server: Server, factory: Factory, scopes: list[str] | None = None) -> None:
        super().__init__(server, factory, scopes)
        self.vault_id = self.client.vault_ids[0]

    def upload(self, text: str, content_type: str = "text/csv") -> httpx.Response:
        return httpx.post(
            f"{self.server.url}/network-tokens/bulk",
            content=text.encode(),
            headers={**self.headers, "Content-Type": content_type},
            timeout=60,
        )

    def job(self, job_id: str) -> dict[str, object]:
        response = self.call("GET", f"/network-tokens/bulk/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait(self, job_id: str, timeout: float = 60) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["state"] in FINAL:
                return job
            assert time.monotonic() < deadline, f"job still {job['state']}: {job}"
            time.sleep(0.05)

    def results(self, job_id: str) -> list[list[str]]:
        response = httpx.get(
            f"{self.server.url}/network-tokens/bulk/{job_id}/results", headers=self.headers
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        return list(csv.reader(io.StringIO(response.text)))

    def run(self, text: str) -> tuple[dict[str, object], list[list[str]]]:
        """Upload, wait for the job to finish, and return it with its result lines."""
        response = self.upload(text)
        assert response.status_code == 202, response.text
        job = self.wait(str(response.json()["id"]))
        return job, self.results(str(job["id"]))


class Counts:
    """Rows of one vault in the server's database, counted directly."""

    def __init__(self, server: Server, vault_id: str) -> None:
        self.db = create_database(server.database_url)
        self.vault_id = vault_id

    def __call__(self) -> dict[str, int]:
        with self.db.engine.connect() as conn:

            def count(query: object) -> int:
                return int(conn.execute(query).scalar_one())  # type: ignore[call-overload]

            return {
                "cards": count(
                    select(func.count()).select_from(Card).where(Card.vault_id == self.vault_id)
                ),
                "tokens": count(
                    select(func.count())
                    .select_from(NetworkToken)
                    .where(NetworkToken.vault_id == self.vault_id)
                ),
                "jobs": count(
                    select(func.count())
                    .select_from(BulkJob)
                    .where(BulkJob.vault_id == self.vault_id)
                ),
            }

    def simulated_tokens(self) -> int:
        with self.db.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(SimulatedToken)).scalar_one())

    def stored_pans(self, job_id: str) -> int:
        with self.db.engine.connect() as conn:
            query = (
                select(func.count())
                .select_from(BulkRow)
                .where(BulkRow.job_id == job_id, BulkRow.pan_encrypted.is_not(None))
            )
            return int(conn.execute(query).scalar_one())

    def close(self) -> None:
        self.db.dispose()
