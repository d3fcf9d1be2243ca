"""The documented test card table and the provider registry."""

from __future__ import annotations

import re

import pytest

from cardvault.crypto import Pan, luhn_valid
from cardvault.networks import (
    TEST_CARDS,
    BrandNotSupported,
    NetworkSimulator,
    Outcome,
    brand_of,
    providers,
    simulators,
)
from cardvault.networks import simulator_cards as module
from cardvault.networks.profiles import payment_account_reference
from cardvault.networks.simulator import provider_for
from cardvault.networks.simulator_cards import outcome_for

DOC_ROW = re.compile(r"^(\d{12,19})\s+(\S+)\s+(\S+)\s", re.MULTILINE)
BRAND_NAMES = {"Visa": "visa", "Mastercard": "mastercard", "Amex": "amex"}
BRAND_NAMES |= {"Discover": "discover", "JCB": "jcb"}


@pytest.mark.parametrize("pan", list(TEST_CARDS))
def test_every_test_card_is_luhn_valid(pan: str) -> None:
    assert luhn_valid(pan)
    assert Pan(pan).reveal() == pan


def test_the_docstring_table_matches_the_mapping() -> None:
    assert module.__doc__ is not None
    documented = {pan: (brand, outcome) for pan, brand, outcome in DOC_ROW.findall(module.__doc__)}
    assert set(documented) == set(TEST_CARDS)
    for pan, (brand, outcome) in documented.items():
        assert brand_of(pan) == BRAND_NAMES[brand]
        assert TEST_CARDS[pan] == Outcome(outcome)


def test_the_brief_s_outcomes() -> None:
    assert TEST_CARDS["4000000000000002"] is Outcome.DECLINED
    assert TEST_CARDS["5200000000000007"] is Outcome.DECLINED
    assert TEST_CARDS["4000000000000069"] is Outcome.NOT_ALLOWED
    assert TEST_CARDS["4000000000000127"] is Outcome.REJECTED
    assert TEST_CARDS["4000000000000119"] is Outcome.UNAVAILABLE
    assert TEST_CARDS["4000000000003220"] is Outcome.PENDING
    assert TEST_CARDS["4000000000003063"] is Outcome.PENDING_THEN_ACTIVE
    assert TEST_CARDS["4000000000000341"] is Outcome.PENDING_THEN_FAILED
    assert TEST_CARDS["3530111333300000"] is Outcome.BRAND_NOT_SUPPORTED


def test_a_card_not_in_the_table_is_approved() -> None:
    assert outcome_for(Pan("4012888888881881")) is Outcome.APPROVED


@pytest.mark.parametrize("network", ["visa", "mastercard", "amex", "discover"])
def test_provider_for_a_simulated_network(network: str) -> None:
    provider = provider_for(network)
    assert isinstance(provider, NetworkSimulator)
    assert provider.network == network


@pytest.mark.parametrize("brand", ["jcb", "diners", "unionpay", "unknown"])
def test_provider_for_a_brand_without_simulator(brand: str) -> None:
    with pytest.raises(BrandNotSupported) as raised:
        provider_for(brand)
    assert raised.value.code == "card-brand-not-supported"
    assert raised.value.status == 422
    assert raised.value.detail == f"card brand {brand} is not supported"


def test_the_jcb_test_card_has_no_provider() -> None:
    with pytest.raises(BrandNotSupported):
        provider_for(brand_of("3530111333300000"))


def test_the_registry_builds_the_configured_backend() -> None:
    registry = providers("simulator")
    assert registry.brands == {"amex", "discover", "mastercard", "visa"}
    visa = registry("visa")
    assert isinstance(visa, NetworkSimulator) and visa.network == "visa"
    assert registry("visa") is visa  # one provider per brand for the process
    with pytest.raises(BrandNotSupported, match="card brand jcb is not supported"):
        registry("jcb")


def test_simulators_leave_out_unsupported_brands() -> None:
    assert sorted(simulators()) == ["amex", "discover", "mastercard", "visa"]
    reduced = simulators(unsupported=frozenset({"amex", "jcb"}))
    assert sorted(reduced) == ["discover", "mastercard", "visa"]
    with pytest.raises(BrandNotSupported):
        provider_for("amex", reduced)
    assert provider_for("visa", reduced) is reduced["visa"]


def test_there_is_no_simulator_for_other_networks() -> None:
    with pytest.raises(ValueError, match="no simulator for network 'jcb'"):
        NetworkSimulator("jcb")


def test_par_is_29_characters_stable_and_keyed_per_network() -> None:
    pan = Pan("4242424242424242")
    par = payment_account_reference("visa", pan)
    assert re.fullmatch(r"V001[A-Z0-9]{25}", par)
    assert payment_account_reference("visa", Pan("4242424242424242")) == par
    assert payment_account_reference("visa", Pan("4111111111111111")) != par
    assert payment_account_reference("mastercard", pan)[4:] != par[4:]
    assert pan.reveal() not in par
