"""One database per backend for the simulator tests; every test makes its own tokens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cardvault.store import Database, create_database, upgrade
from tests.conftest import BACKENDS, Databases


@pytest.fixture(scope="package", params=BACKENDS)
def db(request: pytest.FixtureRequest, databases: Databases) -> Iterator[Database]:
    url = databases.url(request.param)
    upgrade(url)
    database = create_database(url)
    yield database
    database.dispose()
