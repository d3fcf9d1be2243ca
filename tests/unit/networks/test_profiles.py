"""Per-network values: token numbers, token expiry, ECI; redrawing a token number."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from cardvault.crypto import Pan, luhn_check_digit, luhn_valid
from cardvault.networks import NetworkSimulator, ProvisionRequest, brand_of
from cardvault.networks.profiles import PROFILES, NetworkProfile
from cardvault.store import Database
from tests.unit.networks.support import call, provision


@pytest.mark.parametrize("network", list(PROFILES))
def test_random_token_numbers_stay_in_the_token_range(network: str) -> None:
    profile = PROFILES[network]
    numbers = {profile.random_token_number() for _ in range(200)}
    assert len(numbers) > 190
    for number in numbers:
        assert luhn_valid(number) and brand_of(number) == network
        assert number.startswith(profile.token_bin)
        assert len(number) == (15 if network == "amex" else 16)


@pytest.mark.parametrize(
    ("now", "expected"),
    [((2026, 11), (11, 2029)), ((2026, 12), (12, 2029)), ((2027, 1), (1, 2030))],
)
def test_mastercard_token_expiry_is_36_months_later(
    now: tuple[int, int], expected: tuple[int, int]
) -> None:
    moment = dt.datetime(now[0], now[1], 28, 23, 59, tzinfo=dt.UTC)
    assert PROFILES["mastercard"].token_expiry((4, 2027), moment) == expected
    assert PROFILES["visa"].token_expiry((4, 2027), moment) == (4, 2027)


def test_eci_and_default_types() -> None:
    assert [PROFILES["visa"].eci(t) for t in ("ECOM", "RECURRING", "AFT")] == ["05", "07", "06"]
    assert [PROFILES["mastercard"].eci(t) for t in ("ECOM", "RECURRING", "AFT")] == [
        "02",
        "07",
        "06",
    ]
    assert PROFILES["amex"].default_cryptogram_type == "TAVV"
    assert PROFILES["mastercard"].default_cryptogram_type == "UCAF"


def _card_in_token_range() -> str:
    body = "489537" + "123456789"
    return body + luhn_check_digit(body)


def test_a_token_number_equal_to_the_card_is_drawn_again(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    pan = _card_in_token_range()
    draws: Iterator[str] = iter([pan, pan, "4895370000000003"])
    monkeypatch.setattr(NetworkProfile, "random_token_number", lambda self: next(draws))
    status = provision(db, pan)
    assert status.token_number == "4895370000000003" != pan


def test_a_token_number_already_issued_is_drawn_again(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = provision(db, "4242424242424242").token_number
    fresh = PROFILES["visa"].random_token_number()
    draws: Iterator[str] = iter([taken, fresh])
    monkeypatch.setattr(NetworkProfile, "random_token_number", lambda self: next(draws))
    request = ProvisionRequest(Pan("4111111111111111"), 1, 2030)
    assert call(db, NetworkSimulator("visa").provision, request).token_number == fresh
