"""The server's SQLite file: the WAL is copied into it while the server runs."""

from __future__ import annotations

import time

import httpx

from tests.conftest import MakeServer
from tests.factories import Factory
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.oauth.helpers import access_token


def test_the_server_checkpoints_the_wal_of_its_sqlite_file(make_server: MakeServer) -> None:
    """Writers no longer copy the WAL into the database file at their commits (SQLite
    would, past 1,000 pages); the server's background checkpoint does, within moments."""
    server = make_server("sqlite")
    factory = Factory(server)
    try:
        client = factory.client(scopes=["cards:write"])
    finally:
        factory.close()
    headers = {"Authorization": f"Bearer {access_token(server, client)}"}
    database = server.database_url.split(":///", 1)[1]
    with open(database, "rb") as file:
        before = len(file.read())

    with httpx.Client(base_url=server.url, headers=headers) as http:
        for _ in range(200):
            card = {"pan": random_pan(), "exp_month": 7, "exp_year": NEXT_YEAR}
            assert http.post("/cards", json=card).status_code == 201

    deadline = time.monotonic() + 10
    grown = 0
    while time.monotonic() < deadline and grown < 64 * 1024:
        time.sleep(0.1)
        with open(database, "rb") as file:
            grown = len(file.read()) - before
    assert grown >= 64 * 1024  # the 200 cards, their indexes and audit records
