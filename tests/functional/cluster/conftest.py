"""Two ``cardvault serve`` nodes (2 workers each) on one PostgreSQL behind nginx."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from deploy.balancer import Nginx
from tests import hygiene
from tests.conftest import Databases, assert_no_secrets
from tests.factories import Client, Factory
from tests.servers import Server, free_port

NODES = 2
WORKERS = 2


@dataclass
class Cluster:
    nodes: list[Server]
    balancer: Nginx
    factory: Factory

    @property
    def url(self) -> str:
        return self.balancer.url

    @property
    def front(self) -> Server:
        """The balancer seen as a server (never started): for the suite's helpers that
        take a Server, so that they go through nginx."""
        first = self.nodes[0]
        return Server(
            data_dir=first.data_dir,
            database_url=first.database_url,
            port=self.balancer.port,
            settings=first.settings,
            init=first.init,
        )

    @property
    def issuer(self) -> str:
        return f"{self.url}/auth/realms/{self.nodes[0].realm}"

    def token(self, client: Client, base: str | None = None) -> str:
        """An access token from the token endpoint at ``base`` (the balancer's by default)."""
        response = httpx.post(
            f"{base or self.url}/auth/realms/{self.nodes[0].realm}/protocol/openid-connect/token",
            data={
                "client_id": client.client_id,
                "client_secret": client.client_secret,
                "grant_type": "client_credentials",
            },
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def client(self, scopes: tuple[str, ...] = ("cards:write", "cards:read")) -> Client:
        return self.factory.client(org_id=self.nodes[0].init["organization_id"], scopes=scopes)

    def admin_token(self) -> str:
        """The ``cardvault-cli`` account's token, through the balancer."""
        creds = self.nodes[0].init["cli_credentials"]
        response = httpx.post(
            f"{self.issuer}/protocol/openid-connect/token",
            data={**creds, "grant_type": "client_credentials"},
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


@pytest.fixture(scope="module")
def cluster(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Nodes as separate machines would run them: one database, the key-encryption key
    copied, ``init`` once, and every node's ``CARDVAULT_URL`` the balancer's URL."""
    root = tmp_path_factory.mktemp("cluster")
    port = free_port()
    database_url = databases.url("postgresql")
    settings = {
        "url": f"http://127.0.0.1:{port}",
        "trusted_proxies": "127.0.0.1/32",  # the balancer
        "db_pool_size": 3,
        "db_readers": 2,
    }
    nodes: list[Server] = []
    balancer: Nginx | None = None
    try:
        for i in range(NODES):
            node = Server(
                data_dir=root / f"node{i}",
                database_url=database_url,
                port=free_port(),
                workers=WORKERS,
                settings=settings,
            )
            if nodes:
                node.data_dir.mkdir(parents=True)
                shutil.copy2(nodes[0].data_dir / "kek.key", node.data_dir / "kek.key")
                node.init = nodes[0].init
            nodes.append(node.start())
        balancer = Nginx(root / "nginx", port, [f"127.0.0.1:{n.port}" for n in nodes]).start()
        factory = Factory(nodes[0])
        yield Cluster(nodes, balancer, factory)
        factory.close()
    finally:
        if balancer is not None:
            balancer.stop()
        for node in nodes:
            node.stop()
    for node in nodes:
        assert_no_secrets(node)
    if balancer is not None:  # nginx's logs and temporary files: no card number either
        leaks = hygiene.leaks(balancer.run_dir, database_url="")
        assert not leaks, "sensitive values in clear in nginx's files:\n" + "\n".join(leaks)
