"""Fresh, migrated databases for the store's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cardvault.store import Database
from tests.conftest import Databases, migrated


@pytest.fixture
def pg(databases: Databases) -> Iterator[Database]:
    """A new PostgreSQL database at the latest revision."""
    yield from migrated(databases, "postgresql")


@pytest.fixture
def sqlite_db(databases: Databases) -> Iterator[Database]:
    """A new SQLite database at the latest revision."""
    yield from migrated(databases, "sqlite")
