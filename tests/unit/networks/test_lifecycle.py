"""The token state machine and the issuer-side events."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cardvault.crypto import Pan
from cardvault.networks import (
    ACTIVE,
    DELETED,
    FAILED,
    PENDING,
    SUSPENDED,
    InvalidTransition,
    NetworkSimulator,
    Rejected,
    TokenStatus,
)
from cardvault.store import Database
from tests.unit.networks.support import CARDS, NETWORKS, call, make_due, provision, row

VISA = NetworkSimulator("visa")
MASTERCARD = NetworkSimulator("mastercard")
Action = Callable[[Database, str], TokenStatus]

ACTIONS: dict[str, Action] = {
    "suspend": lambda db, pid: call(db, VISA.suspend, pid, "cardholder request"),
    "resume": lambda db, pid: call(db, VISA.resume, pid, "cardholder request"),
    "delete": lambda db, pid: call(db, VISA.delete, pid),
    "issuer_suspend": lambda db, pid: call(db, VISA.issuer_suspend, pid),
    "issuer_resume": lambda db, pid: call(db, VISA.issuer_resume, pid),
    "issuer_delete": lambda db, pid: call(db, VISA.issuer_delete, pid),
}


def _token_in(db: Database, state: str) -> str:
    """A Visa token brought into ``state`` through the simulator."""
    if state == PENDING:
        return provision(db, "4000000000003220").provider_id
    if state == FAILED:
        provider_id = provision(db, "4000000000000341").provider_id
        make_due(db, provider_id)
        assert call(db, VISA.status, provider_id).state == FAILED  # settled and stored
        return provider_id
    provider_id = provision(db, "4242424242424242").provider_id
    if state == SUSPENDED:
        call(db, VISA.suspend, provider_id, "lost phone")
    elif state == DELETED:
        call(db, VISA.delete, provider_id)
    assert call(db, VISA.status, provider_id).state == state
    return provider_id


ALLOWED = [
    (ACTIVE, "suspend", SUSPENDED),
    (SUSPENDED, "resume", ACTIVE),
    (PENDING, "delete", DELETED),
    (ACTIVE, "delete", DELETED),
    (SUSPENDED, "delete", DELETED),
    (ACTIVE, "issuer_suspend", SUSPENDED),
    (SUSPENDED, "issuer_resume", ACTIVE),
    (PENDING, "issuer_delete", DELETED),
    (ACTIVE, "issuer_delete", DELETED),
    (SUSPENDED, "issuer_delete", DELETED),
]
FORBIDDEN = [
    (state, action)
    for state in (PENDING, ACTIVE, SUSPENDED, DELETED, FAILED)
    for action in ACTIONS
    if (state, action) not in {(start, name) for start, name, _ in ALLOWED}
]


@pytest.mark.parametrize(("start", "action", "end"), ALLOWED)
def test_allowed_transitions(db: Database, start: str, action: str, end: str) -> None:
    provider_id = _token_in(db, start)
    assert ACTIONS[action](db, provider_id).state == end
    assert call(db, VISA.status, provider_id).state == end
    assert row(db, provider_id).state == end


@pytest.mark.parametrize(("start", "action"), FORBIDDEN)
def test_forbidden_transitions(db: Database, start: str, action: str) -> None:
    provider_id = _token_in(db, start)
    with pytest.raises(InvalidTransition) as raised:
        ACTIONS[action](db, provider_id)
    verb = action.removeprefix("issuer_")
    assert raised.value.detail == f"cannot {verb} a token in state {start}"
    assert (raised.value.code, raised.value.status) == ("invalid-state", 409)
    assert row(db, provider_id).state == start


def test_a_round_trip_keeps_the_token(db: Database) -> None:
    status = provision(db, "4242424242424242")
    suspended = call(db, VISA.suspend, status.provider_id, "fraud suspected")
    resumed = call(db, VISA.resume, status.provider_id, "cleared")
    assert (suspended.state, resumed.state) == (SUSPENDED, ACTIVE)
    assert resumed.token_number == status.token_number
    assert resumed.payment_account_reference == status.payment_account_reference


def _status(db: Database, provider_id: str) -> TokenStatus:
    return call(db, VISA.status, provider_id)


@pytest.mark.parametrize("action", [*ACTIONS, "status"])
def test_an_unknown_token_is_rejected(db: Database, action: str) -> None:
    operation = ACTIONS.get(action, _status)
    with pytest.raises(Rejected) as raised:
        operation(db, "sim_doesnotexist")
    assert raised.value.detail == "the visa network has no token with this id"


def test_a_token_of_another_network_is_unknown(db: Database) -> None:
    provider_id = provision(db, CARDS["mastercard"]).provider_id
    with pytest.raises(Rejected):
        call(db, VISA.status, provider_id)
    assert call(db, MASTERCARD.status, provider_id).state == ACTIVE


@pytest.mark.parametrize("network", NETWORKS)
def test_issuer_new_pan(db: Database, network: str) -> None:
    new_cards = {
        "visa": "4111111111111111",
        "mastercard": "2223003122003222",
        "amex": "371449635398431",
        "discover": "6011000990139424",
    }
    sim = NetworkSimulator(network)
    status = provision(db, CARDS[network], exp=(5, 2028))
    new_pan = Pan(new_cards[network])
    updated = call(db, sim.issuer_pan_update, status.provider_id, new_pan, 9, 2032)
    assert updated.card_last4 == new_pan.last4 != status.card_last4
    assert (updated.card_exp_month, updated.card_exp_year) == (9, 2032)
    assert updated.token_number == status.token_number
    assert updated.payment_account_reference == status.payment_account_reference
    assert updated.state == ACTIVE
    if network == "mastercard":
        assert (updated.exp_month, updated.exp_year) == (status.exp_month, status.exp_year)
    else:
        assert (updated.exp_month, updated.exp_year) == (9, 2032)
    assert call(db, sim.status, status.provider_id) == updated


@pytest.mark.parametrize("network", ["visa", "mastercard"])
def test_issuer_new_expiry(db: Database, network: str) -> None:
    sim = NetworkSimulator(network)
    status = provision(db, CARDS[network], exp=(5, 2028))
    call(db, sim.issuer_suspend, status.provider_id)
    updated = call(db, sim.issuer_expiry_update, status.provider_id, 6, 2033)
    assert (updated.card_exp_month, updated.card_exp_year) == (6, 2033)
    assert updated.card_last4 == status.card_last4 and updated.state == SUSPENDED
    token_exp = (status.exp_month, status.exp_year) if network == "mastercard" else (6, 2033)
    assert (updated.exp_month, updated.exp_year) == token_exp
    stored = row(db, status.provider_id)
    assert (stored.card_exp_month, stored.card_exp_year, stored.exp_year) == (6, 2033, token_exp[1])


def test_issuer_updates_need_a_live_token(db: Database) -> None:
    provider_id = _token_in(db, DELETED)
    with pytest.raises(InvalidTransition, match="cannot update the card of a token in state"):
        call(db, VISA.issuer_pan_update, provider_id, Pan("4111111111111111"), 1, 2030)
    with pytest.raises(InvalidTransition, match="cannot update the expiry of a token in state"):
        call(db, VISA.issuer_expiry_update, provider_id, 1, 2030)


def test_issuer_new_pan_of_another_brand_is_rejected(db: Database) -> None:
    provider_id = provision(db, "4242424242424242").provider_id
    with pytest.raises(Rejected, match="the new card is not a visa card"):
        call(db, VISA.issuer_pan_update, provider_id, Pan("5555555555554444"), 1, 2030)
    with pytest.raises(Rejected, match="exp_month"):
        call(db, VISA.issuer_expiry_update, provider_id, 13, 2030)
    assert row(db, provider_id).card_last4 == "4242"


def test_a_pending_token_can_get_a_new_card_before_it_settles(db: Database) -> None:
    provider_id = provision(db, "4000000000003063").provider_id
    updated = call(db, VISA.issuer_expiry_update, provider_id, 2, 2030)
    assert updated.state == PENDING and (updated.exp_month, updated.exp_year) == (2, 2030)
    make_due(db, provider_id)
    assert call(db, VISA.status, provider_id).state == ACTIVE
