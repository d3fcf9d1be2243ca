"""Brand from the IIN: the longest matching prefix wins, range ends included."""

from __future__ import annotations

import pytest

from cardvault.networks import brand_of


@pytest.mark.parametrize(
    ("digits", "brand"),
    [
        ("4111111111111111", "visa"),
        ("5100000000000000", "mastercard"),
        ("5599999999999999", "mastercard"),
        ("5600000000000000", "unknown"),
        ("2221000000000000", "mastercard"),
        ("2720999999999999", "mastercard"),
        ("2721000000000000", "unknown"),
        ("2220999999999999", "unknown"),
        ("340000000000000", "amex"),
        ("370000000000000", "amex"),
        ("6011000000000000", "discover"),
        ("6440000000000000", "discover"),
        ("6500000000000000", "discover"),
        ("6012000000000000", "unknown"),
        ("3528000000000000", "jcb"),
        ("3589999999999999", "jcb"),
        ("3590000000000000", "unknown"),
        ("30000000000000", "diners"),
        ("30600000000000", "unknown"),
        ("36000000000000", "diners"),
        ("3800000000000000", "diners"),
        ("6200000000000000", "unionpay"),
        ("9999999999999999", "unknown"),
        ("", "unknown"),
        ("4", "visa"),
    ],
)
def test_brand_of(digits: str, brand: str) -> None:
    assert brand_of(digits) == brand
