"""The event feed's cursors: every position round-trips, and nothing else is taken
for one (a refusal is the API's 400 invalid-cursor, never a database error)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardvault.events.errors import InvalidEventCursor
from cardvault.events.feed import decode_after, encode_cursor
from cardvault.store.feeds import Position

BIGINT = st.integers(min_value=0, max_value=2**63 - 1)


@given(BIGINT, BIGINT)
def test_every_position_round_trips(key: int, seq: int) -> None:
    cursor = encode_cursor(Position(key, seq))
    assert cursor.startswith("ec_") and len(cursor) == 25
    assert decode_after(cursor) == Position(key, seq)


@given(st.text(max_size=64))
def test_anything_else_is_an_event_id_or_refused(value: str) -> None:
    try:
        found = decode_after(value)
    except InvalidEventCursor as refused:
        assert (refused.status, refused.code) == (400, "invalid-cursor")
        assert refused.source == {"parameter": "after"}
        return
    if isinstance(found, Position):
        assert encode_cursor(found) == value  # the one spelling we write
    else:
        assert found == value and value.startswith("evt_")


@pytest.mark.parametrize(
    "value",
    [
        "ec_AAAAAAAAAAAAAAAAAAAAAB",  # the last character carries bits we never write
        "ec_gAAAAAAAAAAAAAAAAAAAAA",  # beyond a BIGINT
        "ec_AAAA",
        "evt_" + "A" * 40,
    ],
)
def test_near_misses_are_refused(value: str) -> None:
    with pytest.raises(InvalidEventCursor):
        decode_after(value)


def test_an_event_id_is_passed_on() -> None:
    assert decode_after("evt_0123abc") == "evt_0123abc"
