"""Provisioning at the simulated networks, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from cardvault.crypto import Pan, luhn_valid
from cardvault.networks import (
    ACTIVE,
    FAILED,
    PENDING,
    BrandNotSupported,
    CardNotAllowed,
    Declined,
    NetworkSimulator,
    NetworkUnavailable,
    ProviderError,
    ProvisionRequest,
    Rejected,
    brand_of,
)
from cardvault.networks.profiles import PROFILES
from cardvault.networks.simulator import SETTLE_DELAY
from cardvault.store import Database
from cardvault.store.models import SimulatedCryptogram, SimulatedToken
from cardvault.store.types import utcnow
from tests.unit.networks.support import CARDS, EXP, NETWORKS, call, make_due, provision, row

TOKEN_BINS = {"visa": "489537", "mastercard": "522222", "amex": "374200", "discover": "601100"}
APPROVED = [
    "4242424242424242",
    "4111111111111111",
    "5555555555554444",
    "2223003122003222",
    "378282246310005",
    "6011111111111117",
    "4012888888881881",  # not in the table
]


def _count(db: Database) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(SimulatedToken)) or 0


@pytest.mark.parametrize("pan", APPROVED)
def test_approved_cards_get_an_active_token(db: Database, pan: str) -> None:
    status = provision(db, pan)
    network = brand_of(pan)
    assert status.state == ACTIVE and status.failure_reason is None
    assert status.network == network and status.provider_id.startswith("sim_")
    assert status.card_last4 == pan[-4:]
    assert (status.card_exp_month, status.card_exp_year) == EXP
    number = status.token_number
    assert luhn_valid(number) and number != pan
    assert len(number) == (15 if network == "amex" else 16)
    assert number.startswith(TOKEN_BINS[network]) and brand_of(number) == network
    assert status.token_number[-4:] in repr(status) and number not in repr(status)


@pytest.mark.parametrize("network", NETWORKS)
def test_token_numbers_are_distinct_across_provisions(db: Database, network: str) -> None:
    numbers = {provision(db, CARDS[network]).token_number for _ in range(10)}
    assert len(numbers) == 10
    assert PROFILES[network].token_bin == TOKEN_BINS[network]


@pytest.mark.parametrize("network", NETWORKS)
def test_par_is_stable_per_card(db: Database, network: str) -> None:
    first, second = provision(db, CARDS[network]), provision(db, CARDS[network])
    other = provision(db, "4111111111111111" if network == "visa" else "4242424242424242")
    par = first.payment_account_reference
    assert len(par) == 29 and re.fullmatch(r"[VMAD]001[A-Z0-9]{25}", par)
    assert par[:4] == {"visa": "V001", "mastercard": "M001", "amex": "A001"}.get(network, "D001")
    assert second.payment_account_reference == par
    assert first.token_number != second.token_number
    assert other.payment_account_reference != par


@pytest.mark.parametrize("network", ["visa", "amex", "discover"])
def test_visa_style_token_expiry_is_the_card_s(db: Database, network: str) -> None:
    status = provision(db, CARDS[network], exp=(3, 2029))
    assert (status.exp_month, status.exp_year) == (3, 2029)


def test_mastercard_token_expires_36_months_after_provisioning(db: Database) -> None:
    before = utcnow()
    status = provision(db, "2223003122003222", exp=(3, 2029))
    after = utcnow()
    expected = {(moment.month, moment.year + 3) for moment in (before, after)}
    assert (status.exp_month, status.exp_year) in expected
    assert (status.card_exp_month, status.card_exp_year) == (3, 2029)


@pytest.mark.parametrize(
    ("pan", "error", "code", "status"),
    [
        ("4000000000000002", Declined, "declined", 404),
        ("5200000000000007", Declined, "declined", 404),
        ("4000000000000069", CardNotAllowed, "card-not-allowed", 422),
        ("4000000000000127", Rejected, "rejected", 422),
        ("4000000000000119", NetworkUnavailable, "network-unavailable", 503),
    ],
)
def test_refusing_cards_raise_and_store_nothing(
    db: Database, pan: str, error: type[ProviderError], code: str, status: int
) -> None:
    before = _count(db)
    with pytest.raises(error) as raised:
        provision(db, pan)
    assert type(raised.value) is error
    assert (raised.value.code, raised.value.status) == (code, status)
    assert pan not in str(raised.value) and pan[-4:] not in raised.value.detail
    assert raised.value.retry_after == (30 if status == 503 else None)
    assert _count(db) == before


@pytest.mark.parametrize(
    ("network", "pan"), [("visa", "5555555555554444"), ("amex", "3530111333300000")]
)
def test_a_card_of_another_brand_is_not_supported(db: Database, network: str, pan: str) -> None:
    sim = NetworkSimulator(network)
    with pytest.raises(BrandNotSupported) as raised:
        call(db, sim.provision, ProvisionRequest(Pan(pan), *EXP))
    assert raised.value.detail == f"the {network} network does not handle {brand_of(pan)} cards"


@pytest.mark.parametrize(
    ("exp", "field"), [((0, 2030), "exp_month"), ((13, 2030), "exp_month"), ((1, 30), "exp_year")]
)
def test_an_impossible_expiry_is_rejected(db: Database, exp: tuple[int, int], field: str) -> None:
    with pytest.raises(Rejected, match=field):
        provision(db, "4242424242424242", exp=exp)


def test_a_pending_card_stays_pending(db: Database) -> None:
    status = provision(db, "4000000000003220")
    assert status.state == PENDING
    stored = row(db, status.provider_id)
    assert stored.outcome == "pending" and stored.settle_at is None
    assert call(db, NetworkSimulator("visa").status, status.provider_id).state == PENDING


@pytest.mark.parametrize(
    ("pan", "final", "reason"),
    [
        ("4000000000003063", ACTIVE, None),
        ("4000000000000341", FAILED, "the issuer declined the token request"),
    ],
)
def test_a_pending_token_settles_when_its_time_has_come(
    db: Database, pan: str, final: str, reason: str | None
) -> None:
    sim = NetworkSimulator("visa")
    before = utcnow()
    status = provision(db, pan)
    assert status.state == PENDING
    settle_at = row(db, status.provider_id).settle_at
    assert settle_at is not None
    assert before + SETTLE_DELAY <= settle_at <= utcnow() + SETTLE_DELAY
    assert call(db, sim.status, status.provider_id).state == PENDING
    make_due(db, status.provider_id)
    settled = call(db, sim.status, status.provider_id)
    assert (settled.state, settled.failure_reason) == (final, reason)
    stored = row(db, status.provider_id)
    assert stored.state == final and stored.settle_at is None
    assert stored.updated_at > stored.created_at
    assert settled.token_number == status.token_number


def test_pending_settles_by_itself_after_about_a_second_and_a_half(db: Database) -> None:
    status = provision(db, "4000000000003063")
    stored = row(db, status.provider_id)
    assert stored.settle_at is not None
    assert stored.settle_at - stored.created_at == dt.timedelta(seconds=1.5)


def test_nothing_stored_contains_the_pan(db: Database) -> None:
    sim = NetworkSimulator("visa")
    pans = [*APPROVED, "4000000000003063", "4000000000003220"]
    ids = [provision(db, pan).provider_id for pan in pans]
    call(
        db,
        sim.cryptogram,
        ids[0],
        amount="1.00",
        currency_code="EUR",
        transaction_type="ECOM",
        cryptogram_type=None,
    )
    with db.sessions() as session:
        tokens = session.scalars(select(SimulatedToken).where(SimulatedToken.id.in_(ids))).all()
        cryptograms = session.scalars(select(SimulatedCryptogram)).all()
    values: list[object] = []
    for item in [*tokens, *cryptograms]:
        values += [getattr(item, column.key) for column in item.__table__.columns]
    assert len(tokens) == len(pans)
    for pan in pans:
        for value in values:
            if isinstance(value, bytes):
                assert pan.encode() not in value
            else:
                assert pan not in str(value)
