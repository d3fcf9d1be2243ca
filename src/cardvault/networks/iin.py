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


def _prefix_table() -> dict[str, str]:
    """Every prefix the ranges cover, mapped to its brand (a longer range wins)."""
    table: dict[str, tuple[int, str]] = {}
    for low, high, brand in IIN_RANGES:
        length = len(str(low))
        for prefix in range(low, high + 1):
            key = str(prefix)
            if key not in table or table[key][0] < length:
                table[key] = (length, brand)
    return {prefix: brand for prefix, (_length, brand) in table.items()}


_PREFIXES = _prefix_table()
_LENGTHS = sorted({len(p) for p in _PREFIXES}, reverse=True)


def brand_of(digits: str) -> str:
    """The brand whose range matches the longest prefix of ``digits``, else ``unknown``."""
    for length in _LENGTHS:
        brand = _PREFIXES.get(digits[:length]) if len(digits) >= length else None
        if brand is not None:
            return brand
    return "unknown"
