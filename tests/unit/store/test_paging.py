"""The cursor codec: opaque, signed, bound to its listing, strictly parsed."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json

import pytest

from cardvault.store.paging import MAC_SIZE, Cursor, CursorCodec, InvalidCursor

KEY = bytes(range(32))
WHEN = dt.datetime(2026, 5, 17, 12, 30, 45, 123456, tzinfo=dt.UTC)
CURSOR = Cursor(WHEN, "card_2a3b4c5d6e7f")


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def signed(payload: bytes, listing: str = "cards:v1", key: bytes = KEY) -> str:
    """A cursor made by hand, signed with ``key`` (to craft well-signed oddities)."""
    tag = hmac.new(key, listing.encode() + b"\n" + payload, hashlib.sha256).digest()
    return b64(payload + tag[:MAC_SIZE])


def test_round_trip_keeps_the_position_to_the_microsecond() -> None:
    codec = CursorCodec(KEY)
    value = codec.encode(CURSOR, "cards:v1")
    assert codec.decode(value, "cards:v1") == CURSOR
    assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_another_node_with_the_same_shared_secret_reads_it() -> None:
    """Nodes derive the key from the pepper they share, not from a per-process key."""

    def keyed(label: str) -> bytes:
        return hmac.new(b"p" * 32, label.encode(), hashlib.sha256).digest()

    value = CursorCodec.derived(keyed).encode(CURSOR, "cards:v1")
    assert CursorCodec.derived(keyed).decode(value, "cards:v1") == CURSOR


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not-a-cursor",
        "!!!!",
        "A" * 161,  # longer than any cursor
        "A",  # one base64 character: not even a byte
        b64(b"x" * 40),  # base64 garbage of a plausible length
        b64(json.dumps({"t": "2026-01-01T00:00:00+00:00", "i": "x"}).encode()),  # old shape
        b64(b"[" * 100 + b"]" * 100),  # deeply nested JSON
        "é" * 10,
        "\ud800",
    ],
)
def test_anything_else_is_an_invalid_cursor(value: str) -> None:
    with pytest.raises(InvalidCursor):
        CursorCodec(KEY).decode(value, "cards:v1")


def test_a_cursor_of_another_listing_or_key_is_refused() -> None:
    value = CursorCodec(KEY).encode(CURSOR, "cards:v1")
    with pytest.raises(InvalidCursor):
        CursorCodec(KEY).decode(value, "cards:v2")  # someone else's vault
    with pytest.raises(InvalidCursor):
        CursorCodec(bytes(32)).decode(value, "cards:v1")  # another installation


def test_a_tampered_cursor_is_refused() -> None:
    value = CursorCodec(KEY).encode(CURSOR, "cards:v1")
    raw = bytearray(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    raw[0] ^= 1  # one digit of the date
    with pytest.raises(InvalidCursor):
        CursorCodec(KEY).decode(b64(bytes(raw)), "cards:v1")


@pytest.mark.parametrize(
    "payload",
    [
        b"1.card_x",  # 1970: before any row
        b"123456789012345678.card_x",  # 18 digits
        b"1747000000000000.card x",  # id outside its character set
        b"1747000000000000." + b"a" * 65,  # id too long
        b"-1.card_x",
        b"1747000000000000",
    ],
)
def test_even_a_well_signed_payload_must_have_the_fixed_shape(payload: bytes) -> None:
    with pytest.raises(InvalidCursor):
        CursorCodec(KEY).decode(signed(payload), "cards:v1")


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="256 bits"):
        CursorCodec(b"short")
