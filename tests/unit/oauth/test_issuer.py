"""The installation's issuer: recorded by the first node (on an upgraded database too),
held against every later one, changed only on purpose."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cardvault.oauth.issuer import (
    Issuer,
    IssuerMismatch,
    hold_issuer,
    recorded_issuer,
    set_issuer,
)
from cardvault.store import Database
from tests.conftest import Databases, migrated

A = Issuer("https://vault.example.com", "cardvault")
B = Issuer("http://10.0.0.7:8000", "cardvault")


@pytest.fixture
def db(databases: Databases) -> Iterator[Database]:
    """PostgreSQL, the database several machines share."""
    yield from migrated(databases, "postgresql")


def test_a_sqlite_installation_moves_with_its_only_machine(databases: Databases) -> None:
    """A SQLite file is one machine's: a node started with another URL is the
    service moving (a new port, say), not a node that disagrees with the others."""
    for sqlite in migrated(databases, "sqlite"):
        hold_issuer(sqlite, A)
        hold_issuer(sqlite, B)
        assert recorded_issuer(sqlite) == B


def test_the_first_node_records_its_issuer_and_the_others_are_held_to_it(db: Database) -> None:
    assert recorded_issuer(db) is None
    hold_issuer(db, A)
    assert recorded_issuer(db) == A
    hold_issuer(db, A)  # the same settings: a node joins
    with pytest.raises(IssuerMismatch) as refused:
        hold_issuer(db, B)
    message = str(refused.value)
    assert A.value in message and B.value in message
    assert "set CARDVAULT_URL=https://vault.example.com," in message
    assert recorded_issuer(db) == A


def test_another_realm_names_the_realm_to_set(db: Database) -> None:
    hold_issuer(db, A)
    with pytest.raises(IssuerMismatch, match="CARDVAULT_REALM=cardvault"):
        hold_issuer(db, Issuer(A.url, "other"))


def test_set_issuer_moves_the_installation_to_a_new_url(db: Database) -> None:
    hold_issuer(db, A)
    assert set_issuer(db, B) == A
    hold_issuer(db, B)
    with pytest.raises(IssuerMismatch):
        hold_issuer(db, A)
