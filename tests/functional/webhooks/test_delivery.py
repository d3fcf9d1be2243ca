"""Delivery guarantees: retries, order per card, isolation, failure, restarts."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import BACKENDS, MakeServer
from tests.factories import Factory
from tests.functional.api.test_cards import random_pan
from tests.functional.oauth.helpers import eventually
from tests.functional.webhooks.conftest import WEBHOOK_SETTINGS, Receiver, Vault


def deliveries(vault: Vault, endpoint_id: str) -> list[dict[str, Any]]:
    response = vault.call("GET", f"/webhooks/{endpoint_id}/deliveries")
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def test_failing_receiver_gets_the_event_once_acknowledged(
    vault: Vault, receiver: Receiver
) -> None:
    endpoint = vault.subscribe(receiver.url)
    receiver.fail = 3
    vault.provision(vault.card(random_pan()))

    [event] = receiver.wait_for(1)
    assert [r.answered for r in receiver.requests] == [500, 500, 500, 200]
    assert {r.json["id"] for r in receiver.requests} == {event["id"]}  # the same event
    [delivery] = deliveries(vault, endpoint["id"])
    assert delivery["state"] == "succeeded"
    assert delivery["event_id"] == event["id"]
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 500, 200]


def test_events_of_a_card_arrive_in_order_despite_failures(
    vault: Vault, receiver: Receiver
) -> None:
    vault.subscribe(receiver.url)
    receiver.fail = 2
    card = vault.card(random_pan())
    vault.provision(card)
    for action in ("suspend", "resume", "suspend", "resume"):
        vault.call("POST", f"/network-tokens/{card['pan_alias']}/{action}")
    events = receiver.wait_for(5)
    assert [e["details"]["state"] for e in events] == [
        "ACTIVE",
        "SUSPENDED",
        "ACTIVE",
        "SUSPENDED",
        "ACTIVE",
    ]
    assert len({e["id"] for e in events}) == 5


def test_a_slow_endpoint_does_not_delay_others(
    vault: Vault, receiver: Receiver, other_receiver: Receiver
) -> None:
    receiver.delay = 3  # longer than the 2 s timeout: every attempt times out
    slow = vault.subscribe(receiver.url)
    vault.subscribe(other_receiver.url)
    for _ in range(6):
        vault.provision(vault.card(random_pan()))
    assert len(other_receiver.wait_for(6, timeout=5)) == 6
    # The slow receiver answers after the server gave up waiting: nothing it got counts.
    assert all(d["state"] == "pending" for d in deliveries(vault, slow["id"]))
    eventually(
        lambda: any(
            a["error"] == "timeout" for d in deliveries(vault, slow["id"]) for a in d["attempts"]
        ),
        timeout=10,
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_deliveries_give_up_after_the_horizon_and_can_be_retried(
    backend: str, make_server: MakeServer, receiver: Receiver
) -> None:
    server = make_server(backend, **{**WEBHOOK_SETTINGS, "webhook_retry_horizon": 1})
    factory = Factory(server)
    try:
        vault = Vault(server, factory)
        endpoint = vault.subscribe(receiver.url)
        receiver.fail = 10**6
        vault.provision(vault.card(random_pan()))
        # The delivery row appears once the worker has picked the event up.
        eventually(
            lambda: [d["state"] for d in deliveries(vault, endpoint["id"])] == ["failed"],
            timeout=10,
        )
        [failed] = deliveries(vault, endpoint["id"])
        tries = len(failed["attempts"])
        assert tries >= 2 and receiver.acknowledged() == []

        receiver.fail = 0
        path = f"/webhooks/{endpoint['id']}/deliveries/{failed['id']}/retry"
        assert vault.call("POST", path).status_code == 202
        [event] = receiver.wait_for(1)
        assert event["id"] == failed["event_id"]
        [done] = deliveries(vault, endpoint["id"])
        assert done["state"] == "succeeded" and len(done["attempts"]) == tries + 1
        missing = vault.call("POST", f"/webhooks/{endpoint['id']}/deliveries/whd_nope/retry")
        assert missing.status_code == 404
    finally:
        factory.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_pending_deliveries_survive_sigkill(
    backend: str, make_server: MakeServer, receiver: Receiver
) -> None:
    server = make_server(backend, **WEBHOOK_SETTINGS)
    factory = Factory(server)
    try:
        vault = Vault(server, factory)
        vault.subscribe(receiver.url)
        receiver.fail = 10**6  # down: nothing is acknowledged
        card = vault.card(random_pan())
        vault.provision(card)
        eventually(lambda: len(receiver.requests) >= 1, timeout=10)
        server.kill()
        server.cli("simulate", "suspend", str(card["pan_alias"]))  # an event while it is down
        receiver.fail = 0
        server.start()

        events = receiver.wait_for(2, timeout=30)
        assert [e["event"] for e in events] == [
            "network_token.activated",
            "network_token.suspended",
        ]
    finally:
        factory.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_several_workers_deliver_each_event_once(
    backend: str, make_server: MakeServer, receiver: Receiver
) -> None:
    server = make_server(backend, workers=2, **WEBHOOK_SETTINGS)
    factory = Factory(server)
    try:
        vault = Vault(server, factory)
        vault.subscribe(receiver.url)
        for _ in range(12):
            vault.provision(vault.card(random_pan()))
        events = receiver.wait_for(12)
        time.sleep(1)  # room for a duplicate to arrive, if there were one
        assert len({e["id"] for e in events}) == 12
        assert len(receiver.requests) == 12  # no event sent twice by the two workers
    finally:
        factory.close()
