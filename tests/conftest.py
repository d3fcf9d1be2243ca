"""Shared fixtures: databases on SQLite and PostgreSQL, real servers, factories."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings

from cardvault.store import Database, create_database, upgrade
from tests import hygiene
from tests.factories import Factory
from tests.hygiene import collect_used_values  # noqa: F401 (the session watches every test)
from tests.servers import Server, free_port

BACKENDS = ["sqlite", "postgresql"]

# Property tests: a bounded run in `make test` ("suite"), a long one with
# CARDVAULT_HYPOTHESIS_PROFILE=thorough (`make fuzz`). No per-example deadline: the
# machine runs real servers beside them, and a slow example is not a wrong one.
settings.register_profile(
    "suite", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("CARDVAULT_HYPOTHESIS_PROFILE", "suite"))
PG_ADMIN_URL = os.environ.get("CARDVAULT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET_IN_TEXT = re.compile(r"cvs_[A-Za-z0-9_-]{20,}")


class Databases:
    """Creates a fresh database per call; PostgreSQL ones are dropped at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.created: list[str] = []
        self.run_id = secrets.token_hex(4)

    def url(self, backend: str) -> str:
        name = f"cv_{self.run_id}_{len(self.created)}"
        self.created.append(name)
        if backend == "sqlite":
            return f"sqlite:///{self.root / name}.db"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return (
            PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            + f"/{name}"
        )

    def drop_all(self) -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrated(databases: Databases, backend: str) -> Iterator[Database]:
    """A new database of ``backend`` at the latest revision, disposed of afterwards
    (``yield from`` it in a fixture)."""
    url = databases.url(backend)
    upgrade(url)
    database = create_database(url)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    dbs = Databases(tmp_path_factory.mktemp("databases"))
    yield dbs
    dbs.drop_all()


def assert_no_secrets(server: Server) -> None:
    if server.log_path.exists():
        found = SECRET_IN_TEXT.findall(server.log_path.read_text(errors="replace"))
        assert not found, f"client secret written to the server log ({len(found)} times)"
    leaks = hygiene.leaks(server.data_dir, server.database_url)
    assert not leaks, "sensitive values in clear where the server writes:\n" + "\n".join(leaks)


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A shared server per backend (one worker), for tests that do not change settings."""
    srv = Server(
        data_dir=tmp_path_factory.mktemp(f"server-{request.param}"),
        database_url=databases.url(request.param),
        port=free_port(),
    ).start()
    yield srv
    srv.stop()
    assert_no_secrets(srv)


@pytest.fixture(scope="session")
def factory(server: Server) -> Iterator[Factory]:
    f = Factory(server)
    yield f
    f.close()


@pytest.fixture
def backend(server: Server) -> str:
    return "sqlite" if server.database_url.startswith("sqlite") else "postgresql"


MakeServer = Callable[..., Server]


@pytest.fixture
def make_server(databases: Databases, tmp_path: Path) -> Iterator[MakeServer]:
    """Start a dedicated server: ``make_server(backend, workers=2, **settings)``."""
    started: list[Server] = []

    def make(backend: str, *, workers: int = 1, **settings: Any) -> Server:
        srv = Server(
            data_dir=tmp_path / f"srv{len(started)}",
            database_url=databases.url(backend),
            port=free_port(),
            workers=workers,
            settings=settings,
        )
        started.append(srv)
        return srv.start()

    yield make
    for srv in started:
        srv.stop()
    for srv in started:
        assert_no_secrets(srv)
