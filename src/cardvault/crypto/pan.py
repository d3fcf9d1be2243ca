"""Primary account numbers (PANs) as a type that validates itself and never leaks.

Only the BIN (first six digits) and the last four leave the vault, so ``repr``,
``str``, f-strings and every exception show at most those. :meth:`Pan.reveal` is the
one explicit way to get the digits, for encryption and for the networks.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterator

MIN_LENGTH, MAX_LENGTH = 12, 19
_DIGITS = frozenset("0123456789")
_SEPARATORS = str.maketrans("", "", " -")


class InvalidPan(ValueError):
    """The input is not a card number; ``reason`` says why, never with the digits."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid card number: {reason}")
        self.reason = reason


def _require_digits(value: str) -> None:
    if not value or not set(value) <= _DIGITS:
        raise InvalidPan("must contain only digits")


# Each digit's byte, as the digit and as the Luhn digit of its double (2 x 7 = 14: 5).
_AS_DIGIT = bytes.maketrans(b"0123456789", bytes(range(10)))
_AS_DOUBLED = bytes.maketrans(b"0123456789", bytes([0, 2, 4, 6, 8, 1, 3, 5, 7, 9]))


def _luhn_sum(digits: str, *, double_first: bool) -> int:
    """Luhn sum from the rightmost digit; ``double_first`` doubles that digit."""
    backwards = digits.encode("ascii")[::-1]
    first, second = backwards[0::2], backwards[1::2]
    doubled, kept = (first, second) if double_first else (second, first)
    return sum(doubled.translate(_AS_DOUBLED)) + sum(kept.translate(_AS_DIGIT))


def luhn_valid(digits: str) -> bool:
    """True if ``digits`` (ASCII digits only, at least two) pass the Luhn check."""
    if len(digits) < 2 or not set(digits) <= _DIGITS:
        return False
    return _luhn_sum(digits, double_first=False) % 10 == 0


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial + digit`` Luhn-valid; raises :class:`InvalidPan`
    if ``partial`` is not made of digits."""
    _require_digits(partial)
    return str((10 - _luhn_sum(partial, double_first=True) % 10) % 10)


class Pan:
    """A validated card number: 12 to 19 digits that pass the Luhn check.

    Spaces and dashes in the input are ignored. Raises :class:`InvalidPan` otherwise.
    """

    __slots__ = ("_digits",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise InvalidPan("must be a string of digits")
        digits = value.translate(_SEPARATORS)
        _require_digits(digits)
        if not MIN_LENGTH <= len(digits) <= MAX_LENGTH:
            raise InvalidPan(f"must be {MIN_LENGTH}-{MAX_LENGTH} digits")
        if not luhn_valid(digits):
            raise InvalidPan("fails the Luhn check")
        self._digits = digits

    def reveal(self) -> str:
        """The full number. Only for encryption, fingerprints and the networks."""
        return self._digits

    @property
    def bin(self) -> str:
        return self._digits[:6]

    @property
    def last4(self) -> str:
        return self._digits[-4:]

    @property
    def masked(self) -> str:
        """BIN and last four, e.g. ``424242…4242``."""
        return f"{self.bin}…{self.last4}"

    def __repr__(self) -> str:
        return f"Pan({self.masked!r})"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return format(repr(self), format_spec)

    def __len__(self) -> int:
        return len(self._digits)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pan):
            return NotImplemented
        return hmac.compare_digest(self._digits.encode(), other._digits.encode())

    def __hash__(self) -> int:
        return hash(("Pan", self.masked))


# Digits written inside other text: groups of digits joined by spaces and dashes. A
# card number is written as whole groups of such a run ("4242 4242 4242 4242"), so the
# run is cut only between groups, never inside one: a longer unbroken number is not a
# card number, but a card number followed by its expiry or CVC still is one.
_RUN = re.compile(r"[0-9]++(?:[ -]++[0-9]++)*+")
_GROUP = re.compile(r"[0-9]+")
_JOIN = "…"  # between masks of one run: not a separator, so masks never join up


def looks_like_pan(value: str) -> bool:
    """True if ``value`` is a card number once spaces and dashes are removed
    (12-19 ASCII digits, Luhn-valid): DESIGN §3, "treated as a PAN wherever it appears"."""
    digits = value.translate(_SEPARATORS)
    return MIN_LENGTH <= len(digits) <= MAX_LENGTH and set(digits) <= _DIGITS and luhn_valid(digits)


def _longest_from(groups: list[re.Match[str]], first: int) -> tuple[int, str] | None:
    """The longest card number made of whole groups starting at ``first``: the index
    of its last group and its digits."""
    found, digits = None, ""
    for last in range(first, len(groups)):
        digits += groups[last].group()
        if len(digits) > MAX_LENGTH:
            break
        if len(digits) >= MIN_LENGTH and luhn_valid(digits):
            found = (last, digits)
    return found


def _in_run(run: str) -> Iterator[tuple[int, int, Pan]]:
    """The card numbers of a run, left to right, not overlapping: span and number."""
    if len(run) < MIN_LENGTH:
        return
    groups = list(_GROUP.finditer(run))
    first = 0
    while first < len(groups):
        found = _longest_from(groups, first)
        if found is None:
            first += 1
            continue
        last, digits = found
        yield groups[first].start(), groups[last].end(), Pan(digits)
        first = last + 1


def find_pan(text: str) -> Pan | None:
    """The first card number written anywhere inside ``text``, or ``None``.

    Finds a whole value that :func:`looks_like_pan` and a card number inside free text
    ("call 4242 4242 4242 4242", "4242-4242-4242-4242 12/27"): 12-19 digits made of
    whole groups of a run of digits joined by spaces and dashes. An unbroken run of more
    than 19 digits is not a card number.
    """
    if len(text) < MIN_LENGTH:
        return None
    for run in _RUN.finditer(text):
        for _, _, pan in _in_run(run.group()):
            return pan
    return None


# An RFC 9562 UUID as clients write one (8-4-4-4-12 hex digits, a version and the
# variant): about one in two hundred random ones has hex groups that are all digits and
# join into a Luhn-valid run.
UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", re.IGNORECASE
)


def find_pan_in_identifier(text: str) -> Pan | None:
    """:func:`find_pan` for an identifier a client chose (an ``Idempotency-Key``, an
    ``X-Request-Id``): a UUID is an identifier whatever its digits, never a card number."""
    return None if UUID.fullmatch(text) else find_pan(text)


def pans_in(text: str) -> Iterator[tuple[str, Pan]]:
    """Every card number :func:`find_pan` sees in ``text``, left to right, each with
    the text it is written as there (with its spaces and dashes)."""
    if len(text) < MIN_LENGTH:
        return
    for run in _RUN.finditer(text):
        for start, end, pan in _in_run(run.group()):
            yield run.group()[start:end], pan


def _mask_run(run: re.Match[str]) -> str:
    text = run.group()
    found = list(_in_run(text))
    if not found:
        return text
    pieces, end = [], 0
    for start, stop, pan in found:
        pieces += [text[end:start], pan.masked]
        end = stop
    masked = "".join(pieces) + text[end:]
    if find_pan(masked) is None:
        return masked
    # A mask's digits joined to the digits around it make another card number:
    # keep only the masks.
    return _JOIN.join(pan.masked for _, _, pan in found)


def mask_pans(text: str) -> str:
    """``text`` with every card number in it shown as BIN and last four only; nothing
    in the result is a card number (:func:`find_pan` finds none)."""
    if len(text) < MIN_LENGTH:
        return text
    return _RUN.sub(_mask_run, text)
