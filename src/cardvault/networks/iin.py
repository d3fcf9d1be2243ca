"""Card brand from the issuer identification number (IIN), longest prefix first."""

from __future__ import annotations

# (first digits low, high, brand); the number of digits compared is len(str(low)).
IIN_RANGES: tuple[tuple[int, int, str], ...] = (
    (4, 4, "visa"),
    (51, 55, "mastercard"),
    (2221, 2720, "mastercard"),
    (34, 34, "amex"),
    (37, 37, "amex"),
    (6011, 6011, "discover"),
    (644, 649, "discover"),
    (65, 65, "discover"),
    (3528, 3589, "jcb"),
    (300, 305, "diners"),
    (36, 36, "diners"),
    (38, 39, "diners"),
    (62, 62, "unionpay"),
)


def brand_of(digits: str) -> str:
    """The brand whose range matches the longest prefix of ``digits``, else ``unknown``."""
    best, best_length = "unknown", 0
    for low, high, brand in IIN_RANGES:
        length = len(str(low))
        if length > best_length and len(digits) >= length and low <= int(digits[:length]) <= high:
            best, best_length = brand, length
    return best
