"""Each aggregate's record holds exactly its table's columns: a migration that adds a
column must add it to the record, or reads would silently drop it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Table

from cardvault.store import records


@pytest.mark.parametrize(
    ("table", "fields"),
    [
        (records.CARDS, records.CARD_FIELDS),
        (records.TOKENS, records.TOKEN_FIELDS),
    ],
    ids=["card", "network token"],
)
def test_a_record_has_its_tables_columns(table: Table, fields: tuple[str, ...]) -> None:
    assert sorted(fields) == sorted(table.columns.keys())


def test_a_records_repr_shows_no_encrypted_value() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    card = records.CardRecord(
        id="card_1",
        vault_id="vlt_1",
        org_id="org_1",
        pan_alias="pan_x",
        fingerprint=b"\x01" * 32,
        pan_encrypted=b"SECRET",
        data_key_version=1,
        bin="424242",
        last4="4242",
        brand="visa",
        exp_month=12,
        exp_year=2030,
        holder_info={"name": "Ada Holder"},
        created_at=now,
        updated_at=now,
    )
    assert "SECRET" not in repr(card) and "Ada" not in repr(card)
