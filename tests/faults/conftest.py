"""Fault tests: a server whose PostgreSQL sits behind a proxy the test can cut."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import Databases, assert_no_secrets
from tests.factories import Factory
from tests.proxy import TcpProxy
from tests.servers import Server, free_port


@dataclass
class Proxied:
    """A server that reaches PostgreSQL only through ``proxy``; ``factory`` writes
    test data straight to the database."""

    server: Server
    proxy: TcpProxy
    factory: Factory


@pytest.fixture
def proxied(databases: Databases, tmp_path: Path) -> Iterator[Proxied]:
    direct = make_url(databases.url("postgresql"))
    with TcpProxy(direct.host or "127.0.0.1", direct.port or 5432) as proxy:
        through = direct.set(port=proxy.port).render_as_string(hide_password=False)
        server = Server(tmp_path / "srv", through, free_port())
        server.start()
        plain = dataclasses.replace(
            server, database_url=direct.render_as_string(hide_password=False), process=None
        )
        factory = Factory(plain)
        try:
            yield Proxied(server, proxy, factory)
        finally:
            proxy.restore()  # let the server stop cleanly
            factory.close()
            server.stop()
            assert_no_secrets(server)
