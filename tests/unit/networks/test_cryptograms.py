"""Cryptograms: format, ECI, single use."""

from __future__ import annotations

import base64
import hashlib
import hmac
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from cardvault.networks import Cryptogram, NetworkSimulator, NotActive, Rejected
from cardvault.store import Database
from cardvault.store.models import SimulatedCryptogram
from tests.unit.networks.support import CARDS, NETWORKS, call, provision, row

VISA = NetworkSimulator("visa")
ECI = {
    "visa": {"ECOM": "05", "RECURRING": "07", "AFT": "06"},
    "amex": {"ECOM": "05", "RECURRING": "07", "AFT": "06"},
    "discover": {"ECOM": "05", "RECURRING": "07", "AFT": "06"},
    "mastercard": {"ECOM": "02", "RECURRING": "07", "AFT": "06"},
}


def _cryptogram(
    db: Database,
    provider_id: str,
    sim: NetworkSimulator = VISA,
    *,
    amount: str | None = "12.50",
    currency_code: str | None = "EUR",
    transaction_type: str = "ECOM",
    cryptogram_type: str | None = None,
) -> Cryptogram:
    return call(
        db,
        sim.cryptogram,
        provider_id,
        amount=amount,
        currency_code=currency_code,
        transaction_type=transaction_type,
        cryptogram_type=cryptogram_type,
    )


def _verify(
    db: Database,
    provider_id: str,
    value: str,
    *,
    amount: str | None = "12.50",
    currency_code: str | None = "EUR",
) -> bool:
    return call(
        db, VISA.verify_cryptogram, provider_id, value, amount=amount, currency_code=currency_code
    )


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("transaction_type", ["ECOM", "RECURRING", "AFT"])
def test_value_eci_and_default_type(db: Database, network: str, transaction_type: str) -> None:
    sim = NetworkSimulator(network)
    provider_id = provision(db, CARDS[network]).provider_id
    cryptogram = _cryptogram(db, provider_id, sim, transaction_type=transaction_type)
    assert len(cryptogram.value) == 28
    assert len(base64.b64decode(cryptogram.value, validate=True)) == 20
    assert cryptogram.eci == ECI[network][transaction_type]
    assert cryptogram.cryptogram_type == ("UCAF" if network == "mastercard" else "TAVV")


def test_the_value_is_the_documented_hmac(db: Database) -> None:
    provider_id = provision(db, CARDS["visa"]).provider_id
    cryptogram = _cryptogram(db, provider_id, amount="7", currency_code="978")
    stored = row(db, provider_id)
    fields = b"".join(len(f).to_bytes(2, "big") + f for f in (b"7", b"978", b"ECOM", b"TAVV"))
    expected = hmac.new(stored.cryptogram_key, (1).to_bytes(4, "big") + fields, hashlib.sha256)
    assert base64.b64decode(cryptogram.value) == expected.digest()[:20]
    assert len(stored.cryptogram_key) == 32 and stored.counter == 1


def test_an_explicit_cryptogram_type_is_kept(db: Database) -> None:
    provider_id = provision(db, CARDS["visa"]).provider_id
    assert _cryptogram(db, provider_id, cryptogram_type="DTVV").cryptogram_type == "DTVV"


def test_consecutive_cryptograms_differ_and_count(db: Database) -> None:
    provider_id = provision(db, CARDS["visa"]).provider_id
    values = {_cryptogram(db, provider_id).value for _ in range(5)}
    assert len(values) == 5
    assert row(db, provider_id).counter == 5


def test_each_cryptogram_is_stored_by_digest(db: Database) -> None:
    provider_id = provision(db, CARDS["visa"]).provider_id
    cryptogram = _cryptogram(db, provider_id, amount="99.99", currency_code="USD")
    with db.sessions() as session:
        stored = session.scalars(
            select(SimulatedCryptogram).where(SimulatedCryptogram.token_id == provider_id)
        ).one()
    assert stored.digest == hashlib.sha256(cryptogram.value.encode()).digest()
    assert (stored.amount, stored.currency_code, stored.used_at) == ("99.99", "USD", None)


def test_verify_is_true_exactly_once(db: Database) -> None:
    provider_id = provision(db, CARDS["visa"]).provider_id
    value = _cryptogram(db, provider_id).value
    assert _verify(db, provider_id, value) is True
    assert _verify(db, provider_id, value) is False
    with db.sessions() as session:
        used = session.scalar(
            select(SimulatedCryptogram.used_at).where(SimulatedCryptogram.token_id == provider_id)
        )
    assert used is not None


def test_verify_without_amount(db: Database) -> None:
    provider_id = provision(db, CARDS["visa"]).provider_id
    value = _cryptogram(db, provider_id, amount=None, currency_code=None).value
    assert _verify(db, provider_id, value) is False
    assert _verify(db, provider_id, value, amount=None, currency_code=None) is True


@pytest.mark.parametrize(
    ("amount", "currency_code"), [("12.51", "EUR"), ("12.5", "EUR"), ("12.50", "USD"), (None, None)]
)
def test_verify_other_values_is_false_and_leaves_it_usable(
    db: Database, amount: str | None, currency_code: str | None
) -> None:
    provider_id = provision(db, CARDS["visa"]).provider_id
    value = _cryptogram(db, provider_id).value
    assert _verify(db, provider_id, value, amount=amount, currency_code=currency_code) is False
    assert _verify(db, provider_id, value) is True


def test_verify_anything_else_is_false(db: Database) -> None:
    provider_id = provision(db, CARDS["visa"]).provider_id
    other_id = provision(db, CARDS["visa"]).provider_id
    value = _cryptogram(db, provider_id).value
    assert _verify(db, other_id, value) is False
    assert _verify(db, "sim_doesnotexist", value) is False
    assert _verify(db, provider_id, "not a cryptogram") is False
    assert _verify(db, provider_id, base64.b64encode(bytes(20)).decode()) is False
    assert (
        call(
            db,
            NetworkSimulator("mastercard").verify_cryptogram,
            provider_id,
            value,
            amount="12.50",
            currency_code="EUR",
        )
        is False
    )
    assert _verify(db, provider_id, value) is True


def test_a_suspended_token_gives_and_accepts_no_cryptogram(db: Database) -> None:
    provider_id = provision(db, CARDS["visa"]).provider_id
    value = _cryptogram(db, provider_id).value
    call(db, VISA.suspend, provider_id, "lost phone")
    with pytest.raises(NotActive) as raised:
        _cryptogram(db, provider_id)
    assert raised.value.detail == "cryptograms need an ACTIVE token; this one is SUSPENDED"
    assert (raised.value.code, raised.value.status) == ("failed-dependency", 422)
    assert _verify(db, provider_id, value) is False
    call(db, VISA.resume, provider_id, "found it")
    assert _verify(db, provider_id, value) is True


@pytest.mark.parametrize("pan", ["4000000000003220", "4000000000003063"])
def test_a_pending_token_gives_no_cryptogram(db: Database, pan: str) -> None:
    provider_id = provision(db, pan).provider_id
    with pytest.raises(NotActive, match="PENDING"):
        _cryptogram(db, provider_id)


def test_a_deleted_token_gives_no_cryptogram(db: Database) -> None:
    provider_id = provision(db, CARDS["visa"]).provider_id
    call(db, VISA.delete, provider_id)
    with pytest.raises(NotActive, match="DELETED"):
        _cryptogram(db, provider_id)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"transaction_type": "MOTO"}, "transaction_type"),
        ({"transaction_type": "ecom"}, "transaction_type"),
        ({"cryptogram_type": "ARQC"}, "cryptogram_type"),
        ({"amount": "12,50"}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"amount": ""}, "amount"),
        ({"currency_code": "euro"}, "currency_code"),
        ({"currency_code": ""}, "currency_code"),
    ],
)
def test_arguments_out_of_range_are_rejected(
    db: Database, arguments: dict[str, str], field: str
) -> None:
    provider_id = provision(db, CARDS["visa"]).provider_id
    with pytest.raises(Rejected) as raised:
        _cryptogram(db, provider_id, **arguments)  # type: ignore[arg-type]
    assert raised.value.detail.startswith(f"{field} must be")
    assert row(db, provider_id).counter == 0


def test_an_unknown_token_gives_no_cryptogram(db: Database) -> None:
    with pytest.raises(Rejected, match="no token with this id"):
        _cryptogram(db, "sim_doesnotexist")


def test_concurrent_cryptograms_each_get_their_own_counter(db: Database) -> None:
    provider_id = provision(db, CARDS["visa"]).provider_id
    with ThreadPoolExecutor(4) as pool:
        values = list(pool.map(lambda _: _cryptogram(db, provider_id).value, range(8)))
    assert len(set(values)) == 8
    assert row(db, provider_id).counter == 8


def test_concurrent_verifications_accept_once(db: Database) -> None:
    provider_id = provision(db, CARDS["visa"]).provider_id
    value = _cryptogram(db, provider_id).value
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: _verify(db, provider_id, value), range(8)))
    assert results.count(True) == 1
