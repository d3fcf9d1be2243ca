"""What each simulated network looks like: token numbers, PAR, expiry, cryptograms.

Token numbers
    Luhn-valid, random after a network-specific token BIN that no test card uses. The
    token BINs fall in the network's IIN range, so
    :func:`~cardvault.networks.iin.brand_of` gives the network for a token as for a
    card.

    ==========  =========  ======  ==================  ========================
    Network     Token BIN  Length  BIN controller id   Token expiry
    ==========  =========  ======  ==================  ========================
    visa        489537     16      V001                the card's
    mastercard  522222     16      M001                provisioning + 36 months
    amex        374200     15      A001                the card's
    discover    601100     16      D001                the card's
    ==========  =========  ======  ==================  ========================

Payment account reference (PAR)
    29 characters: the BIN controller id, then 25 uppercase letters and digits from
    HMAC-SHA-256 of the card number under a fixed key of the network. It is the same
    for every token of a card and does not reveal the card number to whoever lacks the
    key. These keys are constants of this module, so the PARs are pseudonyms fit for
    test cards only; a real network keeps its key secret.

Cryptograms
    HMAC-SHA-256(token key, ATC ‖ amount ‖ currency ‖ transaction type ‖ cryptogram
    type) cut to 20 bytes, in base64 (28 characters). The application transaction
    counter (ATC) is 4 bytes big-endian; every other field is its UTF-8 bytes after a
    2-byte big-endian length (an absent amount or currency is empty).

    ==========  ====  =========  ===  ==============================
    Family      ECOM  RECURRING  AFT  default cryptogram type
    ==========  ====  =========  ===  ==============================
    Visa-style  05    07         06   TAVV (visa, amex, discover)
    Mastercard  02    07         06   UCAF (mastercard)
    ==========  ====  =========  ===  ==============================

    Mastercard's 00 and 01 (not or attempted authentication) are not used. The
    arguments are checked here and refused with :class:`Rejected` whose detail starts
    with the field's name: ``transaction_type`` one of ECOM, RECURRING, AFT;
    ``cryptogram_type`` one of TAVV, DTVV, UCAF; ``amount`` digits with an optional
    decimal part; ``currency_code`` three capital letters or three digits (ISO 4217).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from cardvault.crypto.pan import Pan, luhn_check_digit
from cardvault.networks.provider import Rejected

TRANSACTION_TYPES = ("ECOM", "RECURRING", "AFT")
CRYPTOGRAM_TYPES = ("TAVV", "DTVV", "UCAF")
_VISA_ECI = {"ECOM": "05", "RECURRING": "07", "AFT": "06"}
_MASTERCARD_ECI = {"ECOM": "02", "RECURRING": "07", "AFT": "06"}
_AMOUNT = re.compile(r"[0-9]{1,20}(\.[0-9]{1,4})?")
_CURRENCY = re.compile(r"[A-Z]{3}|[0-9]{3}")
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class NetworkProfile:
    token_bin: str
    token_length: int
    bin_controller: str
    mastercard_style: bool  # ECIs, default cryptogram type and token expiry

    @property
    def default_cryptogram_type(self) -> str:
        return "UCAF" if self.mastercard_style else "TAVV"

    def eci(self, transaction_type: str) -> str:
        return (_MASTERCARD_ECI if self.mastercard_style else _VISA_ECI)[transaction_type]

    def token_expiry(self, card_expiry: tuple[int, int], now: dt.datetime) -> tuple[int, int]:
        """(month, year) of a token provisioned ``now`` for a card of ``card_expiry``."""
        if not self.mastercard_style:
            return card_expiry
        months = now.year * 12 + now.month - 1 + 36
        return months % 12 + 1, months // 12

    def random_token_number(self) -> str:
        free = self.token_length - len(self.token_bin) - 1
        body = self.token_bin + str(secrets.randbelow(10**free)).zfill(free)
        return body + luhn_check_digit(body)

    def payment_account_reference(self, pan: Pan) -> str:
        key = f"cardvault simulator {self.bin_controller} PAR key".encode()
        number = int.from_bytes(hmac.digest(key, pan.reveal().encode(), "sha256"))
        chars = []
        for _ in range(25):
            number, digit = divmod(number, 36)
            chars.append(_BASE36[digit])
        return self.bin_controller + "".join(chars)


PROFILES: Mapping[str, NetworkProfile] = {
    "visa": NetworkProfile("489537", 16, "V001", mastercard_style=False),
    "mastercard": NetworkProfile("522222", 16, "M001", mastercard_style=True),
    "amex": NetworkProfile("374200", 15, "A001", mastercard_style=False),
    "discover": NetworkProfile("601100", 16, "D001", mastercard_style=False),
}


def payment_account_reference(network: str, pan: Pan) -> str:
    """The 29-character PAR of ``pan`` at ``network``."""
    return PROFILES[network].payment_account_reference(pan)


def check_expiry(exp_month: int, exp_year: int) -> None:
    """Raise :class:`Rejected` for a month or year no card can have."""
    if not 1 <= exp_month <= 12:
        raise Rejected("exp_month must be 1 to 12")
    if not 2000 <= exp_year <= 2099:
        raise Rejected("exp_year must be a four-digit year between 2000 and 2099")


def check_cryptogram_fields(
    amount: str | None, currency_code: str | None, transaction_type: str, cryptogram_type: str
) -> None:
    """Raise :class:`Rejected`, naming the field, for an argument out of range."""
    if transaction_type not in TRANSACTION_TYPES:
        raise Rejected(f"transaction_type must be one of {', '.join(TRANSACTION_TYPES)}")
    if cryptogram_type not in CRYPTOGRAM_TYPES:
        raise Rejected(f"cryptogram_type must be one of {', '.join(CRYPTOGRAM_TYPES)}")
    if amount is not None and not _AMOUNT.fullmatch(amount):
        raise Rejected("amount must be digits with an optional decimal part")
    if currency_code is not None and not _CURRENCY.fullmatch(currency_code):
        raise Rejected("currency_code must be three capital letters or three digits")


def cryptogram_value(key: bytes, counter: int, fields: tuple[str | None, ...]) -> str:
    """The base64 cryptogram for ``counter`` and (amount, currency, transaction type,
    cryptogram type)."""
    parts = [counter.to_bytes(4, "big")]
    for field in fields:
        raw = (field or "").encode()
        parts.append(len(raw).to_bytes(2, "big") + raw)
    return base64.b64encode(hmac.digest(key, b"".join(parts), "sha256")[:20]).decode()


def cryptogram_digest(value: str) -> bytes:
    """What is stored of a cryptogram: its SHA-256."""
    return hashlib.sha256(value.encode()).digest()


__all__ = [
    "CRYPTOGRAM_TYPES",
    "PROFILES",
    "TRANSACTION_TYPES",
    "NetworkProfile",
    "check_cryptogram_fields",
    "check_expiry",
    "cryptogram_digest",
    "cryptogram_value",
    "payment_account_reference",
]
