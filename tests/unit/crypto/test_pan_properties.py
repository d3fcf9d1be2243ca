"""Properties of the PAN type and of the one detector of card numbers in text.

A card number is 12-19 digits passing the Luhn check, written with any spaces and
dashes between its digits (DESIGN §3). Inside other text it is a run of digit groups
joined by spaces and dashes; the run is cut only between groups.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cardvault.crypto.pan import (
    MAX_LENGTH,
    MIN_LENGTH,
    InvalidPan,
    Pan,
    find_pan,
    looks_like_pan,
    luhn_check_digit,
    luhn_valid,
    mask_pans,
)

SEPARATORS = str.maketrans("", "", " -")
DIGITS = "0123456789"


@st.composite
def luhn_numbers(draw: st.DrawFn, sizes: st.SearchStrategy[int] | None = None) -> str:
    size = draw(sizes or st.integers(MIN_LENGTH, MAX_LENGTH))
    partial = draw(st.text(DIGITS, min_size=size - 1, max_size=size - 1))
    return partial + luhn_check_digit(partial)


@st.composite
def written(draw: st.DrawFn, digits: str) -> str:
    """``digits`` as someone might type them: spaces and dashes between some digits."""
    gaps = st.one_of(st.just(""), st.text(" -", min_size=1, max_size=3))
    out = digits[0]
    for digit in digits[1:]:
        out += draw(gaps) + digit
    return out


def _ends_a_run(text: str) -> bool:
    return re.search(r"[0-9][ -]*\Z", text) is not None


def _starts_a_run(text: str) -> bool:
    return re.match(r"[ -]*[0-9]", text) is not None


# Text around a number that does not continue its run of digits (else the digits
# would be one longer number, which is not this card number).
before = st.text().filter(lambda t: not _ends_a_run(t))
after = st.text().filter(lambda t: not _starts_a_run(t))
no_digits = st.text(st.characters(blacklist_categories=["Nd"]))


def _digits_of(text: str) -> str:
    return text.translate(SEPARATORS)


@given(luhn_numbers().flatmap(lambda n: st.tuples(st.just(n), written(n))), no_digits, no_digits)
def test_a_card_number_in_text_without_digits_is_found_and_masked(
    number_and_form: tuple[str, str], prefix: str, suffix: str
) -> None:
    number, form = number_and_form
    text = prefix + form + suffix
    found = find_pan(text)
    assert found is not None and found.reveal() == number
    masked = mask_pans(text)
    assert masked == prefix + Pan(number).masked + suffix
    assert number not in _digits_of(masked)


@given(luhn_numbers().flatmap(lambda n: st.tuples(st.just(n), written(n))), before, after)
def test_a_card_number_in_any_text_never_survives_masking(
    number_and_form: tuple[str, str], prefix: str, suffix: str
) -> None:
    number, form = number_and_form
    text = prefix + form + suffix
    assert find_pan(text) is not None
    masked = mask_pans(text)
    assert number not in _digits_of(masked)
    assert find_pan(masked) is None


@given(
    luhn_numbers().flatmap(lambda n: st.tuples(st.just(n), written(n))),
    st.text(" -", min_size=1, max_size=2),
    st.text(DIGITS, min_size=1, max_size=4),
    no_digits,
)
def test_a_card_number_followed_by_its_expiry_or_cvc_is_still_found(
    number_and_form: tuple[str, str], gap: str, trailing: str, suffix: str
) -> None:
    number, form = number_and_form
    text = form + gap + trailing + suffix
    assert find_pan(text) is not None
    assert number not in _digits_of(mask_pans(text))


@given(st.text())
def test_nothing_masked_is_a_card_number(text: str) -> None:
    masked = mask_pans(text)
    assert find_pan(masked) is None
    assert mask_pans(masked) == masked


def _group_spans(digits_form: str) -> list[str]:
    """Every number made of whole digit groups of ``digits_form``."""
    groups = re.findall(r"[0-9]+", digits_form)
    return ["".join(groups[i:j]) for i in range(len(groups)) for j in range(i + 1, len(groups) + 1)]


@given(
    st.integers(MIN_LENGTH, MAX_LENGTH)
    .flatmap(lambda n: st.text(DIGITS, min_size=n, max_size=n))
    .filter(lambda d: not luhn_valid(d))
    .flatmap(written),
    no_digits,
    no_digits,
)
def test_a_number_failing_luhn_is_left_alone(form: str, prefix: str, suffix: str) -> None:
    assume(
        not any(MIN_LENGTH <= len(s) <= MAX_LENGTH and luhn_valid(s) for s in _group_spans(form))
    )
    text = prefix + form + suffix
    assert not looks_like_pan(form)
    assert find_pan(text) is None
    assert mask_pans(text) == text


@given(
    st.one_of(
        st.text(DIGITS, min_size=1, max_size=MIN_LENGTH - 1).flatmap(written),
        st.text(DIGITS, min_size=MAX_LENGTH + 1, max_size=60),  # one unbroken number
    ),
    no_digits,
    no_digits,
)
def test_numbers_of_other_lengths_are_left_alone(form: str, prefix: str, suffix: str) -> None:
    text = prefix + form + suffix
    assert find_pan(text) is None
    assert mask_pans(text) == text


@given(luhn_numbers().flatmap(lambda n: st.tuples(st.just(n), written(n))))
def test_a_whole_value_that_looks_like_a_pan_is_found(number_and_form: tuple[str, str]) -> None:
    number, form = number_and_form
    assert looks_like_pan(form)
    found = find_pan(form)
    assert found is not None and found.reveal() == number
    assert Pan(form) == found


SPECS = ["", "s", ">40", "<30", "^50", "*^60", "r"]


@given(luhn_numbers(), st.sampled_from(SPECS))
def test_a_pan_never_shows_more_than_bin_and_last4(number: str, spec: str) -> None:
    pan = Pan(number)
    shown = [repr(pan), str(pan), f"{pan}", f"{pan!r}", f"{pan!s}", "%s %r" % (pan, pan)]  # noqa: UP031 (as logging does)
    try:
        shown.append(format(pan, spec))
    except ValueError as error:
        shown.append(str(error))
    shown.append(repr([pan, {"pan": pan}]))
    for text in shown:
        assert set(re.findall(r"[0-9]+", text)) <= {number[:6], number[-4:]}, text


@given(st.text(max_size=40))
def test_invalid_input_raises_invalid_pan_without_its_digits(value: str) -> None:
    assume(not looks_like_pan(value))
    with pytest.raises(InvalidPan) as raised:
        Pan(value)
    digits = "".join(c for c in value if c in "0123456789")  # what a PAN check keeps
    message = str(raised.value)
    assert len(digits) < 4 or digits not in message
