"""Pan: validation, Luhn and masking (DESIGN §3: only BIN and last four leave the vault)."""

from __future__ import annotations

import random
import re

import pytest

from cardvault.crypto import (
    InvalidPan,
    Pan,
    find_pan,
    looks_like_pan,
    luhn_check_digit,
    luhn_valid,
    mask_pans,
)
from cardvault.crypto.pan import find_pan_in_identifier

TEST_PANS = [
    "4242424242424242",  # Visa
    "4111111111111111",  # Visa
    "5555555555554444",  # Mastercard
    "2223003122003222",  # Mastercard 2-series
    "378282246310005",  # American Express
    "6011111111111117",  # Discover
]


def _valid(length: int, prefix: str = "4") -> str:
    rng = random.Random(length)
    partial = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    return partial + luhn_check_digit(partial)


@pytest.mark.parametrize("number", TEST_PANS)
def test_well_known_test_pans_are_valid(number: str) -> None:
    pan = Pan(number)

    assert pan.reveal() == number
    assert luhn_valid(number)
    assert luhn_check_digit(number[:-1]) == number[-1]


def test_spaces_and_dashes_are_stripped() -> None:
    pan = Pan(" 4242 4242-4242--4242 ")

    assert pan.reveal() == "4242424242424242"
    assert pan == Pan("4242424242424242")


@pytest.mark.parametrize("length", [12, 13, 15, 16, 19])
def test_lengths_from_12_to_19_digits_are_accepted(length: int) -> None:
    assert len(Pan(_valid(length))) == length


@pytest.mark.parametrize("length", [2, 11, 20, 24])
def test_other_lengths_are_refused(length: int) -> None:
    number = _valid(length)
    assert luhn_valid(number)

    with pytest.raises(InvalidPan) as caught:
        Pan(number)

    assert caught.value.reason == "must be 12-19 digits"


@pytest.mark.parametrize(
    "value",
    [
        "",
        " - ",
        "4242a24242424242",
        "4242.4242.4242.4242",
        "4242\t4242424242424",
        "\uff14\uff12" * 8,  # fullwidth digits: str.isdigit() is True for them
        "+4242424242424242",
    ],
)
def test_anything_but_digits_is_refused(value: str) -> None:
    with pytest.raises(InvalidPan) as caught:
        Pan(value)

    assert caught.value.reason == "must contain only digits"


def test_non_string_is_refused() -> None:
    with pytest.raises(InvalidPan):
        Pan(4242424242424242)  # type: ignore[arg-type]


@pytest.mark.parametrize("number", ["4242424242424241", "4111111111111112", "378282246310006"])
def test_luhn_failure_is_refused_without_the_digits(number: str) -> None:
    with pytest.raises(InvalidPan) as caught:
        Pan(number)

    assert caught.value.reason == "fails the Luhn check"
    assert isinstance(caught.value, ValueError)
    for text in (str(caught.value), repr(caught.value), repr(caught.value.args)):
        assert not re.search(r"\d{4}", text)


def test_check_digit_is_the_only_digit_that_makes_a_number_valid() -> None:
    rng = random.Random(7)
    for _ in range(200):
        partial = "".join(str(rng.randrange(10)) for _ in range(rng.randrange(1, 19)))
        check = luhn_check_digit(partial)
        valid = [d for d in "0123456789" if luhn_valid(partial + d)]
        assert valid == [check]


def test_check_digit_needs_digits() -> None:
    with pytest.raises(InvalidPan):
        luhn_check_digit("")
    with pytest.raises(InvalidPan):
        luhn_check_digit("42x")


def test_luhn_valid_refuses_non_digits_and_single_digits() -> None:
    assert not luhn_valid("")
    assert not luhn_valid("0")
    assert not luhn_valid("42 42")
    assert luhn_valid("00")


def test_parts() -> None:
    pan = Pan("378282246310005")

    assert pan.bin == "378282"
    assert pan.last4 == "0005"
    assert pan.masked == "378282…0005"
    assert len(pan) == 15


@pytest.mark.parametrize("number", TEST_PANS)
def test_text_forms_show_only_bin_and_last_four(number: str) -> None:
    pan = Pan(number)
    expected = f"Pan('{number[:6]}…{number[-4:]}')"

    forms = [
        repr(pan),
        str(pan),
        f"{pan}",
        f"{pan!r}",
        f"{pan:>40}",
        "%s %r" % (pan, pan),  # noqa: UP031 (the old formatting must mask too)
        "{}".format(pan),  # noqa: UP032
        str([pan]),
        str({"pan": pan}),
    ]

    assert repr(pan) == str(pan) == f"{pan}" == expected
    for text in forms:
        assert number not in text
        assert f"{number[:6]}…{number[-4:]}" in text


def test_equality_is_by_value() -> None:
    assert Pan("4242424242424242") == Pan("4242-4242-4242-4242")
    assert Pan("4242424242424242") != Pan("4111111111111111")
    assert Pan("4242424242424242") != "4242424242424242"


def _with_same_ends(number: str) -> str:
    """Another valid PAN with the same BIN and last four as ``number``."""
    for middle in range(10 ** (len(number) - 10)):
        candidate = f"{number[:6]}{middle:0{len(number) - 10}d}{number[-4:]}"
        if luhn_valid(candidate) and candidate != number:
            return candidate
    raise AssertionError("no such number")


def test_hash_agrees_with_equality_and_reveals_nothing_hidden() -> None:
    a, b = Pan("4242424242424242"), Pan("4242 4242 4242 4242")
    c = Pan(_with_same_ends("4242424242424242"))

    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert c != a
    assert hash(c) == hash(a)  # the hash depends only on what may be shown
    assert len({a, c}) == 2


@pytest.mark.parametrize(
    "text",
    [
        "4242424242424242",
        "4242 4242 4242 4242",
        "4242-4242-4242-4242",
        "card: 4242 4242 4242 4242, thanks",
        "ref5555555555554444x",
        "4242 4242 4242 4242 123",  # followed by a CVC
        "4242  4242 - 4242  4242",  # any spaces and dashes between groups
    ],
)
def test_find_pan_sees_a_card_number_however_it_is_written(text: str) -> None:
    found = find_pan(text)
    assert found is not None and found.last4 in ("4242", "4444")
    assert found.reveal() not in mask_pans(text)


@pytest.mark.parametrize(
    "text",
    [
        "order-1842",
        "4242424242424241",  # fails the Luhn check
        "42424242424242424242",  # 20 digits unbroken: longer than any card number
        "12345678901",
        "vlt_6pstbvn4g8fbcup41eat",
    ],
)
def test_find_pan_leaves_other_text_alone(text: str) -> None:
    assert find_pan(text) is None
    assert mask_pans(text) == text


def test_looks_like_pan_is_the_whole_value_rule() -> None:
    assert looks_like_pan("4242-4242 4242-4242")
    assert not looks_like_pan("card 4242424242424242")
    assert not looks_like_pan("4242²4242424242424")


def test_a_uuid_is_an_identifier_not_a_card_number() -> None:
    looks_like_a_card = "16530222-9258-44f7-af41-0ec38361a360"  # a random UUID v4
    assert find_pan(looks_like_a_card) is not None
    assert find_pan_in_identifier(looks_like_a_card) is None
    assert find_pan_in_identifier(looks_like_a_card.upper()) is None
    # Anything else is looked at as a whole, as find_pan does.
    assert find_pan_in_identifier("4242-4242-4242-4242") is not None
    assert find_pan_in_identifier(f"key-{looks_like_a_card}") is not None
