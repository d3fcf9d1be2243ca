"""SIGKILL of the server during enrolments: after a restart on the same database
every acknowledged card is there, and nothing half-written is (every stored card
reads back whole: its data key and its ciphertext are both there). Both backends."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from sqlalchemy import select

from cardvault.store.models import Card
from tests.conftest import BACKENDS, MakeServer
from tests.factories import Factory
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.oauth.helpers import access_token

WRITERS = 8
BEFORE_KILL = 150  # acknowledged enrolments before the kill


@pytest.mark.parametrize("backend", BACKENDS)
def test_acknowledged_enrolments_survive_a_sigkill(make_server: MakeServer, backend: str) -> None:
    server = make_server(backend, workers=2)
    factory = Factory(server)
    client = factory.client(scopes=["cards:write", "cards:read"])
    headers = {"Authorization": f"Bearer {access_token(server, client)}"}
    acknowledged: dict[str, str] = {}  # card id -> last four
    lock = threading.Lock()
    stop = threading.Event()

    def enrol() -> None:
        with httpx.Client(headers=headers, timeout=10) as http:
            while not stop.is_set():
                pan = random_pan()
                body = {"pan": pan, "exp_month": 7, "exp_year": NEXT_YEAR}
                try:
                    response = http.post(f"{server.url}/cards", json=body)
                except httpx.TransportError:
                    return  # killed
                if response.status_code == 201:
                    with lock:
                        acknowledged[response.json()["id"]] = pan[-4:]

    writers = [threading.Thread(target=enrol) for _ in range(WRITERS)]
    for writer in writers:
        writer.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < BEFORE_KILL:
        assert time.monotonic() < deadline, f"only {len(acknowledged)} enrolments"
        time.sleep(0.01)
    server.kill()  # mid-flight: the writers are still sending
    stop.set()
    for writer in writers:
        writer.join(timeout=20)

    server.start()
    with httpx.Client(headers=headers, timeout=10) as http:
        for card_id, last4 in acknowledged.items():
            got = http.get(f"{server.url}/cards/{card_id}")
            assert got.status_code == 200, got.text
            assert got.json()["last4"] == last4
        with factory.db.engine.connect() as conn:
            stored = conn.scalars(select(Card.id).where(Card.vault_id == client.vault_ids[0]))
            stored_ids = set(stored)
        assert set(acknowledged) <= stored_ids
        assert len(stored_ids - set(acknowledged)) <= WRITERS  # in flight at the kill
        for card_id in stored_ids - set(acknowledged):  # committed, unacknowledged: whole
            assert http.get(f"{server.url}/cards/{card_id}").status_code == 200
    factory.close()
