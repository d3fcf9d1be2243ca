"""PostgreSQL: a node opens no more connections than its settings allow, however busy."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg

from tests.conftest import PG_ADMIN_URL, MakeServer
from tests.factories import Factory
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.oauth.helpers import access_token

WORKERS, WRITERS, READERS = 2, 2, 1


def _connections(database: str) -> int:
    """The service's connections to ``database`` now (its ``application_name``)."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = %s AND application_name = 'cardvault'",
            (database,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_busy_node_stays_within_its_connection_budget(make_server: MakeServer) -> None:
    """Two workers of two writers and one reader each: under 32 concurrent callers
    enrolling, reading and changing cards, the node never holds more than
    workers * (writers + readers + 1 listener) connections, and every call succeeds."""
    server = make_server(
        "postgresql", workers=WORKERS, db_pool_size=WRITERS, db_readers=READERS, threads=16
    )
    database = server.database_url.rsplit("/", 1)[1]
    budget = WORKERS * (WRITERS + READERS + 1)
    factory = Factory(server)
    try:
        client = factory.client(scopes=["cards:read", "cards:write"])
    finally:
        factory.close()
    headers = {"Authorization": f"Bearer {access_token(server, client)}"}
    seen: list[int] = []

    def work(n: int) -> set[int]:
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
            card = {"pan": random_pan(), "exp_month": 7, "exp_year": NEXT_YEAR}
            created = http.post("/cards", json=card)
            alias = created.json()["id"]
            read = http.get(f"/cards/{alias}")
            changed = http.patch(f"/cards/{alias}", json={"exp_month": 8, "exp_year": NEXT_YEAR})
            token = http.post(
                f"{server.issuer}/protocol/openid-connect/token",
                data={"grant_type": "client_credentials"},
                auth=(client.client_id, client.client_secret),
            )
            if n % 8 == 0:
                seen.append(_connections(database))
            return {created.status_code, read.status_code, changed.status_code, token.status_code}

    with ThreadPoolExecutor(32) as pool:
        statuses = set().union(*pool.map(work, range(400)))
    seen.append(_connections(database))

    assert statuses == {200, 201}
    assert max(seen) <= budget, f"the node held {max(seen)} connections (budget {budget})"
    assert max(seen) > WORKERS, "the load never reached the database"
