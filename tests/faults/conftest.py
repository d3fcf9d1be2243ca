"""Fault tests: a server whose PostgreSQL sits behind a proxy the test can cut."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


MakeProxied = Callable[..., Proxied]


@pytest.fixture
def make_proxied(databases: Databases, tmp_path: Path) -> Iterator[MakeProxied]:
    """``make_proxied(**settings)``: a server on a new PostgreSQL database, reached
    through a proxy."""
    made: list[Proxied] = []

    def make(**settings: Any) -> Proxied:
        direct = make_url(databases.url("postgresql"))
        proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 5432)
        proxy.restore()
        through = direct.set(port=proxy.port).render_as_string(hide_password=False)
        server = Server(tmp_path / f"srv{len(made)}", through, free_port(), settings=settings)
        plain = dataclasses.replace(
            server, database_url=direct.render_as_string(hide_password=False)
        )
        try:
            server.start()
        except BaseException:
            proxy.cut()
            raise
        made.append(Proxied(server, proxy, Factory(plain)))
        return made[-1]

    yield make
    for proxied in made:
        proxied.proxy.restore()  # let the server stop cleanly
        proxied.factory.close()
        proxied.server.stop()
        assert_no_secrets(proxied.server)  # its pg_dump goes through the proxy too
        proxied.proxy.cut()


@pytest.fixture
def proxied(make_proxied: MakeProxied) -> Proxied:
    return make_proxied()
