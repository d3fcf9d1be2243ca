"""The same Alembic migrations build SQLite and PostgreSQL, up and down."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect

from cardvault.store.migrate import downgrade, upgrade
from cardvault.store.models import Base
from tests.conftest import BACKENDS, Databases


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_builds_every_model_table(databases: Databases, backend: str) -> None:
    url = databases.url(backend)
    upgrade(url)
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        assert "alembic_version" in tables
        columns = {c["name"] for c in inspect(engine).get_columns("service_accounts")}
        assert {"client_id", "secret_hash", "previous_secret_hash", "scopes"} <= columns
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_downgrade_to_base_and_up_again(databases: Databases, backend: str) -> None:
    url = databases.url(backend)
    upgrade(url)
    downgrade(url, "base")
    engine = create_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    upgrade(url)


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_builds_every_model_index(databases: Databases, backend: str) -> None:
    """A model's index that no migration creates would be missing on every installation."""
    url = databases.url(backend)
    upgrade(url)
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        for table in Base.metadata.sorted_tables:
            built = {index["name"] for index in inspector.get_indexes(table.name)}
            wanted = {str(index.name) for index in table.indexes}
            assert wanted <= built, f"{table.name}: no migration creates {wanted - built}"
    finally:
        engine.dispose()
