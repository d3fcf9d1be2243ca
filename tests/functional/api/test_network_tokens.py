"""/network-tokens over HTTP against the built-in network simulators."""

from __future__ import annotations

import base64
import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select

from cardvault.crypto.pan import luhn_valid
from cardvault.store.models import SimulatedToken
from tests.factories import Factory
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.oauth.helpers import access_token, eventually
from tests.servers import Server

DECLINED, NOT_ALLOWED, REJECTED = "4000000000000002", "4000000000000069", "4000000000000127"
UNAVAILABLE, STAYS_PENDING = "4000000000000119", "4000000000003220"
PENDING_THEN_ACTIVE, PENDING_THEN_FAILED = "4000000000003063", "4000000000000341"
JCB = "3530111333300000"


class Api:
    def __init__(
        self,
        server: Server,
        factory: Factory,
        scopes: list[str] | None = None,
        org_id: str | None = None,
    ) -> None:
        self.server = server
        self.client = factory.client(
            scopes=scopes or ["cards:write", "network-tokens:write"], org_id=org_id
        )
        self.headers = {"Authorization": f"Bearer {access_token(server, self.client)}"}

    def call(self, method: str, path: str, body: object = None) -> httpx.Response:
        return httpx.request(method, f"{self.server.url}{path}", json=body, headers=self.headers)

    def card(self, pan: str | None = None, **extra: object) -> dict[str, object]:
        response = self.call(
            "POST",
            "/cards",
            {"pan": pan or random_pan(), "exp_month": 7, "exp_year": NEXT_YEAR, **extra},
        )
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    def provision(self, card: dict[str, object]) -> httpx.Response:
        return self.call(
            "POST",
            "/network-tokens",
            {"pan_alias": card["pan_alias"], "exp_month": 7, "exp_year": NEXT_YEAR},
        )


@pytest.fixture
def api(server: Server, factory: Factory) -> Api:
    return Api(server, factory)


def test_provision_returns_the_reference_object(api: Api) -> None:
    card = api.card(holder_info={"name": "Ada"})
    response = api.provision(card)
    assert response.status_code == 201, response.text
    token = response.json()
    assert set(token) == {
        "id",
        "pan_alias",
        "network",
        "network_token_last4",
        "expires_at",
        "state",
        "payment_account_reference",
        "failure_reason",
        "created_at",
        "updated_at",
        "card",
    }
    assert token["pan_alias"] == card["pan_alias"]
    assert (token["network"], token["state"]) == ("visa", "ACTIVE")
    assert token["expires_at"] == f"{NEXT_YEAR}-07"  # Visa: the card's expiry
    assert len(token["payment_account_reference"]) == 29
    assert token["card"] == {
        "last4": card["last4"],
        "bin": card["bin"],
        "expires_at": f"{NEXT_YEAR}-07",
        "holder_info": {"name": "Ada"},
    }
    again = api.provision(card)
    assert again.status_code == 200 and again.json()["id"] == token["id"]
    by_id = api.call("POST", "/network-tokens", {"card_id": card["id"]})
    assert by_id.status_code == 200 and by_id.json()["id"] == token["id"]


def test_mastercard_token_expires_36_months_after_provisioning(api: Api) -> None:
    token = api.provision(api.card("5555555555554444")).json()
    today = dt.date.today()
    months = today.year * 12 + today.month - 1 + 36
    assert token["network"] == "mastercard"
    assert token["expires_at"] == f"{months // 12:04d}-{months % 12 + 1:02d}"


def test_same_pan_same_payment_account_reference(server: Server, factory: Factory) -> None:
    pan = random_pan()
    first = Api(server, factory)
    second = Api(server, factory)
    par1 = first.provision(first.card(pan)).json()["payment_account_reference"]
    par2 = second.provision(second.card(pan)).json()["payment_account_reference"]
    assert par1 == par2


def test_provision_with_a_pan_enrols_first(server: Server, factory: Factory) -> None:
    api = Api(server, factory)
    pan = random_pan()
    response = api.call(
        "POST", "/network-tokens", {"pan": pan, "exp_month": 7, "exp_year": NEXT_YEAR, "cvc": "123"}
    )
    assert response.status_code == 201
    cards = api.call("GET", "/cards").json()["data"]
    assert [c["pan_alias"] for c in cards] == [response.json()["pan_alias"]]
    tokens_only = Api(server, factory, scopes=["network-tokens:write"])
    refused = tokens_only.call(
        "POST", "/network-tokens", {"pan": random_pan(), "exp_month": 7, "exp_year": NEXT_YEAR}
    )
    assert refused.status_code == 403


def test_a_pan_the_network_refuses_is_enrolled_all_the_same(api: Api) -> None:
    """``{pan, …}`` enrols the card first: a refusal keeps the card and makes no token."""
    response = api.call(
        "POST", "/network-tokens", {"pan": DECLINED, "exp_month": 7, "exp_year": NEXT_YEAR}
    )
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "declined"
    assert [c["last4"] for c in api.call("GET", "/cards").json()["data"]] == [DECLINED[-4:]]
    assert api.call("GET", "/network-tokens").json()["data"] == []


@pytest.mark.parametrize("pan", [DECLINED, UNAVAILABLE])
def test_a_refusal_after_enrolment_is_answered_and_the_card_kept(api: Api, pan: str) -> None:
    """A network's refusal of a card the request enrolled is answered, not retried; the
    card stays enrolled, and asking again matches it instead of enrolling it twice."""
    body = json.dumps({"pan": pan, "exp_month": 7, "exp_year": NEXT_YEAR}).encode()
    first, again = (
        httpx.post(
            f"{api.server.url}/network-tokens",
            content=body,
            headers={**api.headers, "Content-Type": "application/json"},
        )
        for _ in range(2)
    )
    assert first.status_code == again.status_code >= 400
    assert first.json()["errors"][0]["code"] == again.json()["errors"][0]["code"]
    if pan == UNAVAILABLE:
        assert int(first.headers["retry-after"]) > 0
    cards = api.call("GET", "/cards").json()["data"]
    assert [c["last4"] for c in cards] == [pan[-4:]]  # enrolled once, matched once


def test_a_pan_already_enrolled_gets_its_card_and_its_live_token(api: Api) -> None:
    pan = random_pan()
    first = api.call("POST", "/network-tokens", {"pan": pan, "exp_month": 7, "exp_year": NEXT_YEAR})
    later = {"pan": pan, "exp_month": 7, "exp_year": NEXT_YEAR + 1}
    again = api.call("POST", "/network-tokens", later)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["card"]["expires_at"] == f"{NEXT_YEAR + 1}-07"  # moved forward
    cards = api.call("GET", "/cards").json()["data"]
    assert [(c["pan_alias"], c["expires_at"]) for c in cards] == [
        (first.json()["pan_alias"], f"{NEXT_YEAR + 1}-07")
    ]


def test_a_later_expiry_of_a_tokenised_card_is_announced_with_its_token(
    server: Server, factory: Factory
) -> None:
    api = Api(server, factory, scopes=["cards:write", "network-tokens:write", "webhooks:read"])
    pan = random_pan()
    token = api.provision(api.card(pan)).json()
    again = api.call("POST", "/cards", {"pan": pan, "exp_month": 9, "exp_year": NEXT_YEAR + 1})
    assert again.status_code == 200, again.text
    assert again.json()["expires_at"] == f"{NEXT_YEAR + 1}-09"
    events = api.call("GET", "/events?limit=100").json()["data"]
    updated = [e["details"] for e in events if e["event"] == "card.updated"]
    assert [(d["pan_alias"], d["network_token_last4"]) for d in updated] == [
        (token["pan_alias"], token["network_token_last4"])
    ]


def test_concurrent_provisioning_keeps_one_token_per_card(api: Api) -> None:
    """Requests arriving together share transactions; each card still gets one token,
    created once and returned to its twins, by alias or by PAN."""
    cards = [api.card() for _ in range(6)]
    pans = [random_pan() for _ in range(6)]
    by_pan = [{"pan": p, "exp_month": 7, "exp_year": NEXT_YEAR} for p in pans]
    with ThreadPoolExecutor(max_workers=36) as pool:
        by_alias = list(pool.map(api.provision, cards * 3))
        enrolled = list(pool.map(lambda b: api.call("POST", "/network-tokens", b), by_pan * 3))
    keys = [c["pan_alias"] for c in cards] * 3 + pans * 3
    groups: dict[object, list[httpx.Response]] = {}
    for key, answer in zip(keys, by_alias + enrolled, strict=True):
        groups.setdefault(key, []).append(answer)
    for twins in groups.values():
        assert sorted(a.status_code for a in twins) == [200, 200, 201], [a.text for a in twins]
        assert len({a.json()["id"] for a in twins}) == 1
    listed = api.call("GET", "/network-tokens?limit=100").json()["data"]
    assert len({t["id"] for t in listed}) == len(listed) == 12
    assert len(api.call("GET", "/cards?limit=100").json()["data"]) == 12


def test_lifecycle_and_cryptograms(api: Api) -> None:
    pan = random_pan()
    card = api.card(pan)
    alias = card["pan_alias"]
    api.provision(card)
    crypto = api.call(
        "POST",
        f"/network-tokens/{alias}/cryptogram",
        {"amount": "10.00", "currency_code": "EUR", "transaction_type": "ECOM"},
    )
    assert crypto.status_code == 200, crypto.text
    body = crypto.json()
    assert len(body["cryptogram"]) == 28 and len(base64.b64decode(body["cryptogram"])) == 20
    assert body["eci"] == "05" and body["cryptogram_type"] == "TAVV"
    assert luhn_valid(body["network_token"]) and body["network_token"] != pan
    assert (
        body["network_token"][-4:]
        == api.call("GET", f"/network-tokens/{alias}").json()["network_token_last4"]
    )
    second = api.call(
        "POST", f"/network-tokens/{alias}/cryptogram", {"amount": "10.00", "currency_code": "EUR"}
    ).json()
    assert second["cryptogram"] != body["cryptogram"]

    suspended = api.call("POST", f"/network-tokens/{alias}/suspend", {"reason": "fraud check"})
    assert suspended.json()["state"] == "SUSPENDED"
    again = api.call("POST", f"/network-tokens/{alias}/suspend", {"reason": "again"})
    assert again.status_code == 409 and again.json()["errors"][0]["code"] == "invalid-state"
    refused = api.call("POST", f"/network-tokens/{alias}/cryptogram", {})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "failed-dependency"
    assert api.call("POST", f"/network-tokens/{alias}/resume", {}).json()["state"] == "ACTIVE"

    deleted = api.call("DELETE", f"/network-tokens/{alias}")
    assert deleted.status_code == 200 and deleted.json()["state"] == "DELETED"
    assert api.call("GET", f"/network-tokens/{alias}").json()["state"] == "DELETED"
    assert api.call("POST", f"/network-tokens/{alias}/resume", {}).status_code == 409
    fresh = api.provision(card)
    assert fresh.status_code == 201 and fresh.json()["state"] == "ACTIVE"


@pytest.mark.parametrize(
    ("pan", "status", "code"),
    [
        (DECLINED, 404, "declined"),
        (NOT_ALLOWED, 422, "card-not-allowed"),
        (REJECTED, 422, "rejected"),
        (UNAVAILABLE, 503, "network-unavailable"),
        (JCB, 422, "card-brand-not-supported"),
    ],
)
def test_network_refusals(api: Api, pan: str, status: int, code: str) -> None:
    response = api.provision(api.card(pan))
    assert response.status_code == status
    assert response.json()["errors"][0]["code"] == code
    if status == 503:
        assert int(response.headers["retry-after"]) > 0
    assert api.call("GET", "/network-tokens").json()["data"] == []


def test_asynchronous_provisioning_settles(api: Api) -> None:
    active, failed, pending = (
        api.card(p) for p in (PENDING_THEN_ACTIVE, PENDING_THEN_FAILED, STAYS_PENDING)
    )
    for card in (active, failed, pending):
        assert api.provision(card).json()["state"] == "PENDING"

    def state(card: dict[str, object]) -> str:
        return str(api.call("GET", f"/network-tokens/{card['pan_alias']}").json()["state"])

    eventually(lambda: state(active) == "ACTIVE", timeout=6)
    eventually(lambda: state(failed) == "FAILED", timeout=6)
    failure = api.call("GET", f"/network-tokens/{failed['pan_alias']}").json()
    assert failure["failure_reason"]
    assert state(pending) == "PENDING"
    listed = api.call("GET", "/network-tokens?state=PENDING").json()["data"]
    assert [t["pan_alias"] for t in listed] == [pending["pan_alias"]]


def test_errors_for_bad_requests(api: Api) -> None:
    missing = api.call("POST", "/network-tokens", {"exp_month": 1, "exp_year": NEXT_YEAR})
    assert missing.status_code == 422
    unknown = api.call(
        "POST", "/network-tokens", {"pan_alias": "pan_nope", "exp_month": 7, "exp_year": NEXT_YEAR}
    )
    assert unknown.status_code == 404
    assert api.call("GET", "/network-tokens/pan_nope").status_code == 404


def test_other_vaults_tokens_are_404(server: Server, factory: Factory, api: Api) -> None:
    card = api.card()
    api.provision(card)
    stranger = Api(server, factory, org_id=api.client.org_id)
    alias = card["pan_alias"]
    assert stranger.call("GET", f"/network-tokens/{alias}").status_code == 404
    assert stranger.call("DELETE", f"/network-tokens/{alias}").status_code == 404
    assert stranger.provision(card).status_code == 404
    assert api.call("GET", f"/network-tokens/{alias}").json()["state"] == "ACTIVE"


def test_read_scope_reads_but_cannot_provision(server: Server, factory: Factory, api: Api) -> None:
    card = api.card()
    api.provision(card)
    reader = Api(server, factory, scopes=["network-tokens:read"])
    assert reader.call("GET", "/network-tokens").status_code == 200
    assert reader.provision(card).status_code == 403


def test_deleting_the_card_deletes_its_token_at_the_network(api: Api, factory: Factory) -> None:
    card = api.card()
    token = api.provision(card).json()
    assert api.call("DELETE", f"/cards/{card['id']}").status_code == 204
    assert api.call("GET", f"/network-tokens/{card['pan_alias']}").status_code == 404
    with factory.db.sessions() as session:
        states = session.scalars(select(SimulatedToken.state)).all()
    assert token["state"] == "ACTIVE" and "DELETED" in states


def test_suspend_and_resume_are_idempotent_with_a_key(api: Api) -> None:
    card = api.card()
    alias = card["pan_alias"]
    api.provision(card)
    url = f"{api.server.url}/network-tokens/{alias}/suspend"
    headers = {**api.headers, "Idempotency-Key": "suspend-1"}
    first = httpx.post(url, json={"reason": "lost phone"}, headers=headers)
    again = httpx.post(url, json={"reason": "lost phone"}, headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json() and first.json()["state"] == "SUSPENDED"
    without_key = httpx.post(url, json={"reason": "lost phone"}, headers=api.headers)
    assert without_key.status_code == 409
    reused = httpx.post(url, json={"reason": "other"}, headers=headers)
    assert reused.status_code == 422
    assert reused.json()["errors"][0]["code"] == "idempotency-key-reused"


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("DELETE", "", None),
        ("POST", "/suspend", {"reason": "x"}),
        ("POST", "/resume", {"reason": "x"}),
        ("POST", "/cryptogram", {"transaction_type": "ECOM"}),
    ],
)
def test_write_routes_need_the_write_scope(
    server: Server, factory: Factory, api: Api, method: str, suffix: str, body: object
) -> None:
    card = api.card()
    api.provision(card)
    same_vault_reader = Api(
        server, factory, scopes=["network-tokens:read"], org_id=api.client.org_id
    )
    # The reader's token is bound to its own vault; give it this vault's alias anyway:
    # the scope check comes first and answers 403, whatever the vault.
    response = same_vault_reader.call(method, f"/network-tokens/{card['pan_alias']}{suffix}", body)
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "insufficient-scope"
    cards_only = Api(server, factory, scopes=["cards:read"])
    assert cards_only.call("GET", "/network-tokens").status_code == 403
    assert cards_only.call("GET", f"/network-tokens/{card['pan_alias']}").status_code == 403
