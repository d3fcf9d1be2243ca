"""Client identifiers and secrets (DESIGN §3)."""

from __future__ import annotations

import base64
import itertools
import os
import re
import string
import time
from collections import Counter

import pytest

from cardvault.crypto import (
    ClientSecret,
    SecretHasher,
    generate_client_id,
    generate_client_secret,
    ordered_id,
    random_id,
)

PEPPER = bytes(range(32))
URLSAFE = set(string.ascii_letters + string.digits + "-_")


def test_client_secret_has_prefix_and_256_bits() -> None:
    value = generate_client_secret().reveal()

    assert value.startswith("cvs_")
    body = value.removeprefix("cvs_")
    assert len(body) == 43
    assert set(body) <= URLSAFE
    assert len(base64.urlsafe_b64decode(body + "=")) == 32


def test_client_secrets_differ() -> None:
    values = {generate_client_secret().reveal() for _ in range(100)}

    assert len(values) == 100


def test_client_secret_never_shows_its_value() -> None:
    secret = generate_client_secret()
    value = secret.reveal()
    body = value.removeprefix("cvs_")

    shown = [
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        "%s %r" % (secret, secret),  # noqa: UP031 (the old formatting must hide it too)
        "{}".format(secret),  # noqa: UP032
        repr([secret]),
        repr({"secret": secret}),
    ]
    for text in shown:
        assert value not in text
        assert body[:8] not in text


def test_client_secret_equality_compares_values() -> None:
    assert ClientSecret("cvs_abc") == ClientSecret("cvs_abc")
    assert ClientSecret("cvs_abc") != ClientSecret("cvs_abd")


@pytest.mark.parametrize("length", [0, 16, 31])
def test_hasher_refuses_short_pepper(length: int) -> None:
    with pytest.raises(ValueError):
        SecretHasher(b"p" * length)


def test_hasher_accepts_256_bit_pepper() -> None:
    SecretHasher(PEPPER)
    SecretHasher(PEPPER + b"more")


def test_same_secret_and_pepper_give_same_digest() -> None:
    secret = generate_client_secret()

    first = SecretHasher(PEPPER).hash(secret)
    second = SecretHasher(bytes(PEPPER)).hash(secret.reveal())

    assert first == second
    assert len(first) == 32
    assert secret.reveal().encode() not in first


def test_other_pepper_gives_other_digest() -> None:
    secret = generate_client_secret()

    assert SecretHasher(PEPPER).hash(secret) != SecretHasher(b"q" * 32).hash(secret)


def test_other_secret_gives_other_digest() -> None:
    hasher = SecretHasher(PEPPER)

    assert hasher.hash("cvs_one") != hasher.hash("cvs_two")


def test_matches_any_candidate() -> None:
    hasher = SecretHasher(PEPPER)
    current, previous, stranger = (generate_client_secret().reveal() for _ in range(3))
    candidates = [hasher.hash(current), hasher.hash(previous)]

    assert hasher.matches(current, candidates)
    assert hasher.matches(previous, candidates)
    assert not hasher.matches(stranger, candidates)
    assert not hasher.matches(current, [])
    assert not hasher.matches("", candidates)


def test_matches_compares_every_candidate() -> None:
    hasher = SecretHasher(PEPPER)
    candidates = iter([hasher.hash("cvs_first"), hasher.hash("cvs_second"), b"\x00" * 32])

    assert hasher.matches("cvs_first", candidates)
    assert next(candidates, None) is None


def test_client_id_format() -> None:
    for _ in range(50):
        assert re.fullmatch(r"cv-[a-z0-9]{20}", generate_client_id())


def test_client_ids_are_unique() -> None:
    ids = {generate_client_id() for _ in range(1000)}

    assert len(ids) == 1000


def test_random_ids_are_prefixed_lowercase_base32_of_the_asked_length() -> None:
    ids = [random_id("card_") for _ in range(2000)] + [random_id("pan_", 24)]
    assert all(re.fullmatch(r"card_[a-z2-7]{20}", i) for i in ids[:-1])
    assert re.fullmatch(r"pan_[a-z2-7]{24}", ids[-1])
    assert len(set(ids)) == len(ids)


def test_random_id_characters_are_evenly_spread() -> None:
    """32 symbols, 64,000 characters: each should appear about 2,000 times."""
    counts = Counter("".join(random_id("", 64) for _ in range(1000)))
    assert set(counts) == set("abcdefghijklmnopqrstuvwxyz234567")
    chi2 = sum((n - 2000) ** 2 / 2000 for n in counts.values())
    assert chi2 < 80  # 31 degrees of freedom: p < 1e-6 above 80


def test_a_forked_process_mints_other_ids_than_its_parent() -> None:
    random_id("x_")  # the parent's buffer now holds unused bytes
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (runs in the child)
        os.write(write, "".join(random_id("", 20) for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    from_child = os.read(read, 1000).decode()
    os.close(read)
    from_parent = "".join(random_id("", 20) for _ in range(5))
    assert len(from_child) == 100 and from_child != from_parent


def test_ordered_ids_sort_in_the_order_they_were_made() -> None:
    made = []
    for _ in range(5):
        made += [ordered_id("card_") for _ in range(100)]
        time.sleep(0.002)  # the next batch is a later millisecond
    batches = [made[i : i + 100] for i in range(0, 500, 100)]
    for earlier, later in itertools.pairwise(batches):
        assert max(earlier) < min(later)
    assert all(re.fullmatch(r"card_[a-z2-7]{25}", i) for i in made)
    assert len(set(made)) == len(made)


def test_an_ordered_id_starts_with_the_millisecond_it_was_made() -> None:
    symbols = "234567abcdefghijklmnopqrstuvwxyz"  # in ASCII order
    before = time.time_ns() // 1_000_000
    made = ordered_id("evt_")
    after = time.time_ns() // 1_000_000
    stamp = made.removeprefix("evt_")[:9]

    millis = 0
    for char in stamp:
        millis = millis * 32 + symbols.index(char)

    assert before <= millis <= after


def test_the_rest_of_an_ordered_id_is_random() -> None:
    """After the time characters: 80 random bits, evenly spread over the symbols."""
    suffixes = [ordered_id("")[9:] for _ in range(1000)]
    assert len(set(suffixes)) == 1000
    counts = Counter("".join(suffixes))  # 16,000 characters, about 500 of each symbol
    assert len(counts) == 32
    assert min(counts.values()) > 350 and max(counts.values()) < 650
