"""Fresh, migrated databases for the store's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cardvault.store import Database, create_database, upgrade
from tests.conftest import Databases


def _migrated(databases: Databases, backend: str) -> Iterator[Database]:
    url = databases.url(backend)
    upgrade(url)
    database = create_database(url)
    yield database
    database.dispose()


@pytest.fixture
def pg(databases: Databases) -> Iterator[Database]:
    """A new PostgreSQL database at the latest revision."""
    yield from _migrated(databases, "postgresql")


@pytest.fixture
def sqlite_db(databases: Databases) -> Iterator[Database]:
    """A new SQLite database at the latest revision."""
    yield from _migrated(databases, "sqlite")
