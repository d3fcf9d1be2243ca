"""Every lifecycle transition reaches a real receiver as exactly its documented event,
signed with the endpoint's secret, in order, and without a PAN."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from cardvault.webhooks import verify
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.webhooks.conftest import Receiver, Vault

PENDING_THEN_ACTIVE, PENDING_THEN_FAILED = "4000000000003063", "4000000000000341"
DETAIL_FIELDS = {
    "pan_alias",
    "network_token_last4",
    "payment_account_reference",
    "state",
    "card_bin",
    "card_last4",
    "card_exp_month",
    "card_exp_year",
    "exp_month",
    "exp_year",
    "created_at",
    "updated_at",
}
LONG_DIGITS = re.compile(r"\d{12,19}")


def check_delivery(receiver: Receiver, secret: str, pans: list[str]) -> None:
    """Every request is signed with ``secret``, names its event, and holds no PAN
    (nor any run of digits as long as a card or token number)."""
    for request in receiver.requests:
        headers = {k.lower(): v for k, v in request.headers.items()}
        verify(request.body, headers["cardvault-signature"], secret, now=request.at)
        event = request.json
        assert headers["cardvault-event-id"] == headers["idempotency-key"] == event["id"]
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"].startswith("cardvault-webhooks/")
        text = request.body.decode()
        assert not any(pan in text for pan in pans)
        assert not LONG_DIGITS.search(text), text


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


def test_api_transitions_send_their_events(vault: Vault, receiver: Receiver) -> None:
    endpoint = vault.subscribe(receiver.url)
    pan = random_pan()
    card = vault.card(pan)
    token = vault.provision(card)
    alias = card["pan_alias"]
    for action in ("suspend", "resume"):
        assert vault.call("POST", f"/network-tokens/{alias}/{action}").status_code == 200
    assert vault.call("DELETE", f"/network-tokens/{alias}").status_code == 200

    events = receiver.wait_for(4)
    assert names(events) == [
        "network_token.activated",
        "network_token.suspended",
        "network_token.activated",
        "network_token.deleted",
    ]
    assert [e["details"]["state"] for e in events] == ["ACTIVE", "SUSPENDED", "ACTIVE", "DELETED"]
    first = events[0]
    assert set(first) == {"id", "event", "occurred_at", "org_id", "vault_id", "details"}
    assert set(first["details"]) == DETAIL_FIELDS
    assert first["vault_id"] == vault.client.vault_ids[0]
    assert first["org_id"] == vault.client.org_id
    assert first["details"]["pan_alias"] == alias
    assert first["details"]["network_token_last4"] == token["network_token_last4"]
    assert first["details"]["payment_account_reference"] == token["payment_account_reference"]
    assert (first["details"]["card_bin"], first["details"]["card_last4"]) == (pan[:6], pan[-4:])
    check_delivery(receiver, endpoint["secret"], [pan])


def test_async_activation_and_provisioning_failure(vault: Vault, receiver: Receiver) -> None:
    endpoint = vault.subscribe(receiver.url)
    activating = vault.provision(vault.card(PENDING_THEN_ACTIVE))
    failing = vault.provision(vault.card(PENDING_THEN_FAILED))
    assert activating["state"] == failing["state"] == "PENDING"

    events = {e["details"]["pan_alias"]: e for e in receiver.wait_for(2)}
    assert events[activating["pan_alias"]]["event"] == "network_token.activated"
    assert events[failing["pan_alias"]]["event"] == "network_token.provisioning_failed"
    assert events[failing["pan_alias"]]["details"]["state"] == "FAILED"
    assert len(receiver.requests) == 2  # PENDING itself announces nothing
    check_delivery(receiver, endpoint["secret"], [PENDING_THEN_ACTIVE, PENDING_THEN_FAILED])


def test_issuer_events_send_their_events(vault: Vault, receiver: Receiver) -> None:
    endpoint = vault.subscribe(receiver.url)
    pan, new_pan = random_pan(), random_pan()
    card = vault.card(pan)
    vault.provision(card)
    alias = str(card["pan_alias"])
    receiver.wait_for(1)
    cli = vault.server.cli
    cli("simulate", "expiry-update", alias, "--exp-month", "3", "--exp-year", str(NEXT_YEAR + 4))
    cli("simulate", "pan-update", alias, "--pan", new_pan, "--exp-month", "5", "--exp-year",
        str(NEXT_YEAR + 5))  # fmt: skip
    for command in ("suspend", "resume", "delete"):
        cli("simulate", command, alias)

    events = receiver.wait_for(8)
    assert names(events) == [
        "network_token.activated",
        "network_token.updated",
        "card.updated",
        "network_token.updated",
        "card.updated",
        "network_token.suspended",
        "network_token.activated",
        "network_token.deleted",
    ]
    expiry, card_update = events[1]["details"], events[4]["details"]
    assert (expiry["card_exp_month"], expiry["card_exp_year"]) == (3, NEXT_YEAR + 4)
    assert (expiry["exp_month"], expiry["exp_year"]) == (3, NEXT_YEAR + 4)  # Visa follows
    assert (card_update["card_bin"], card_update["card_last4"]) == (new_pan[:6], new_pan[-4:])
    assert (card_update["card_exp_month"], card_update["card_exp_year"]) == (5, NEXT_YEAR + 5)
    check_delivery(receiver, endpoint["secret"], [pan, new_pan])


def test_card_changes_send_their_events(vault: Vault, receiver: Receiver) -> None:
    vault.subscribe(receiver.url, ["card.updated", "network_token.deleted"])
    card = vault.card(random_pan())
    vault.provision(card)  # activated: not subscribed
    patch = {"exp_month": 9, "exp_year": NEXT_YEAR + 2}
    assert vault.call("PATCH", f"/cards/{card['id']}", patch).status_code == 200
    assert vault.call("PATCH", f"/cards/{card['id']}", patch).status_code == 200  # no change
    assert vault.call("DELETE", f"/cards/{card['id']}").status_code == 204

    events = receiver.wait_for(2)
    assert names(events) == ["card.updated", "network_token.deleted"]
    assert events[0]["details"]["card_exp_month"] == 9
    assert events[0]["details"]["state"] == "ACTIVE"
    assert len(receiver.requests) == 2


def test_events_can_be_listed_and_backfilled(vault: Vault, receiver: Receiver) -> None:
    vault.subscribe(receiver.url)
    aliases = [vault.provision(vault.card(random_pan()))["pan_alias"] for _ in range(3)]
    delivered = receiver.wait_for(3)
    listed = vault.call("GET", "/events").json()
    # The same documents; listed in the order they happened. (Deliveries of different
    # cards go out side by side, so they may arrive in another order.)
    assert [e["details"]["pan_alias"] for e in listed["data"]] == aliases
    assert sorted(listed["data"], key=lambda e: e["id"]) == sorted(delivered, key=lambda e: e["id"])
    page = vault.call("GET", "/events", None).json()
    after = vault.call("GET", f"/events?after={page['data'][0]['id']}&limit=1").json()
    assert after["data"] == [listed["data"][1]]
    following = vault.call("GET", f"/events?after={after['next_after']}").json()
    assert following["data"] == listed["data"][2:]
    unknown = vault.call("GET", "/events?after=evt_nope")
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["code"] == "invalid-format"
    assert json.dumps(listed).count("evt_") >= 3


def test_an_endpoint_gets_the_events_after_it_was_made_and_none_before(
    vault: Vault, receiver: Receiver
) -> None:
    """Events of a vault that had no endpoint are kept (listed, replayable), and never
    delivered to an endpoint made afterwards; that endpoint gets what follows."""
    earlier = [vault.provision(vault.card(random_pan()))["pan_alias"] for _ in range(2)]
    vault.subscribe(receiver.url)
    later = vault.provision(vault.card(random_pan()))["pan_alias"]

    delivered = receiver.wait_for(1)
    time.sleep(1.0)  # several fan-out rounds: nothing else comes

    assert [e["details"]["pan_alias"] for e in receiver.acknowledged()] == [later]
    assert delivered[0]["event"] == "network_token.activated"
    listed = vault.call("GET", "/events").json()["data"]
    assert [e["details"]["pan_alias"] for e in listed] == [*earlier, later]
