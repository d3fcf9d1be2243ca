"""`cardvault simulate`: issuer-side events applied by the platform; cryptogram checks."""

from __future__ import annotations

import json

from tests.factories import Factory
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.api.test_network_tokens import Api
from tests.servers import Server


def test_issuer_events_change_the_platforms_records(server: Server, factory: Factory) -> None:
    api = Api(server, factory)
    card = api.card()
    alias = str(card["pan_alias"])
    api.provision(card)

    def token() -> dict[str, object]:
        return dict(api.call("GET", f"/network-tokens/{alias}").json())

    out = json.loads(
        server.cli(
            "simulate", "expiry-update", alias, "--exp-month", "3", "--exp-year", str(NEXT_YEAR + 4)
        ).stdout
    )
    assert out["card_expires_at"] == f"{NEXT_YEAR + 4}-03"
    assert token()["card"]["expires_at"] == f"{NEXT_YEAR + 4}-03"  # type: ignore[index]
    assert token()["expires_at"] == f"{NEXT_YEAR + 4}-03"  # Visa token follows the card

    new_pan = random_pan()
    server.cli(
        "simulate",
        "pan-update",
        alias,
        "--pan",
        new_pan,
        "--exp-month",
        "5",
        "--exp-year",
        str(NEXT_YEAR + 5),
    )
    updated = api.call("GET", f"/cards/{card['id']}").json()
    assert (updated["last4"], updated["bin"]) == (new_pan[-4:], new_pan[:6])
    assert token()["state"] == "ACTIVE"

    assert json.loads(server.cli("simulate", "suspend", alias).stdout)["state"] == "SUSPENDED"
    assert token()["state"] == "SUSPENDED"
    server.cli("simulate", "resume", alias)
    assert token()["state"] == "ACTIVE"
    server.cli("simulate", "delete", alias)
    assert token()["state"] == "DELETED"
    refused = server.cli("simulate", "resume", alias, check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr


def test_cryptograms_verify_exactly_once(server: Server, factory: Factory) -> None:
    api = Api(server, factory)
    card = api.card()
    alias = str(card["pan_alias"])
    api.provision(card)
    value = api.call(
        "POST", f"/network-tokens/{alias}/cryptogram", {"amount": "25.00", "currency_code": "USD"}
    ).json()["cryptogram"]
    wrong = server.cli(
        "simulate",
        "verify-cryptogram",
        alias,
        "--cryptogram",
        value,
        "--amount",
        "26.00",
        "--currency",
        "USD",
        check=False,
    )
    assert wrong.returncode == 1
    first = server.cli(
        "simulate",
        "verify-cryptogram",
        alias,
        "--cryptogram",
        value,
        "--amount",
        "25.00",
        "--currency",
        "USD",
    )
    assert json.loads(first.stdout) == {"pan_alias": alias, "valid": True}
    replay = server.cli(
        "simulate",
        "verify-cryptogram",
        alias,
        "--cryptogram",
        value,
        "--amount",
        "25.00",
        "--currency",
        "USD",
        check=False,
    )
    assert replay.returncode == 1 and json.loads(replay.stdout)["valid"] is False


def test_unknown_alias_is_one_line(server: Server) -> None:
    result = server.cli("simulate", "suspend", "pan_nothing", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: network token pan_nothing not found"
