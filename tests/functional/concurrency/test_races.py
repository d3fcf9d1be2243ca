"""Races: many requests (or processes) doing the same thing at the same moment have
one effect. Both backends."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from cardvault.store.models import Card, NetworkToken, SigningKey
from tests.conftest import BACKENDS, MakeServer
from tests.factories import Factory
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.oauth.helpers import access_token
from tests.servers import CARDVAULT, Server

RACERS = 50


def _bearer(server: Server, factory: Factory) -> tuple[dict[str, str], str]:
    client = factory.client(scopes=["cards:write", "cards:read", "network-tokens:write"])
    return {"Authorization": f"Bearer {access_token(server, client)}"}, client.vault_ids[0]


def _count(factory: Factory, query: object) -> int:
    with factory.db.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())  # type: ignore[call-overload]


def _race(n: int, send: object) -> list[httpx.Response]:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _i: send(), range(n)))  # type: ignore[operator]


def test_one_pan_enrolled_fifty_times_at_once_is_one_card(server: Server, factory: Factory) -> None:
    headers, vault_id = _bearer(server, factory)
    body = {"pan": random_pan(), "exp_month": 7, "exp_year": NEXT_YEAR}
    with httpx.Client(headers=headers, timeout=30) as http:
        answers = _race(RACERS, lambda: http.post(f"{server.url}/cards", json=body))
    assert {a.status_code for a in answers} <= {200, 201}, [a.text for a in answers][:3]
    assert len({a.json()["id"] for a in answers}) == 1
    assert [a.status_code for a in answers].count(201) == 1
    cards = select(func.count()).select_from(Card).where(Card.vault_id == vault_id)
    assert _count(factory, cards) == 1


def test_one_idempotency_key_raced_has_one_effect(server: Server, factory: Factory) -> None:
    headers, vault_id = _bearer(server, factory)
    with httpx.Client(headers=headers, timeout=30) as http:
        card = http.post(
            f"{server.url}/cards",
            json={"pan": random_pan(), "exp_month": 7, "exp_year": NEXT_YEAR},
        ).json()
        body = {"card_id": card["id"], "exp_month": 7, "exp_year": NEXT_YEAR}
        keyed = {"Idempotency-Key": f"race-{card['id']}"}
        answers = _race(
            20, lambda: http.post(f"{server.url}/network-tokens", json=body, headers=keyed)
        )
    created = [a for a in answers if a.status_code == 201]
    assert created, [a.text for a in answers][:3]
    # Every request either got the one answer, or was told to retry (409 in progress).
    assert {a.status_code for a in answers} <= {201, 409}, [a.text for a in answers][:3]
    assert len({a.content for a in created}) == 1
    tokens = select(func.count()).select_from(NetworkToken).where(NetworkToken.vault_id == vault_id)
    assert _count(factory, tokens) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_processes_rotating_keys_at_once_make_one_new_key(
    make_server: MakeServer, backend: str
) -> None:
    server = make_server(backend)  # its own: a pending key would change others' tests
    factory = Factory(server)
    keys = select(func.count()).select_from(SigningKey)
    before = _count(factory, keys)
    racers = [
        subprocess.Popen(
            [CARDVAULT, "keys", "rotate", "--delay", "300"],
            env=server.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [r.communicate(timeout=60) for r in racers]
    assert [r.returncode for r in racers] == [0, 0], outputs
    assert _count(factory, keys) == before + 1
    assert json.loads(outputs[0][0])["kid"] == json.loads(outputs[1][0])["kid"]  # the one key
    factory.close()
