"""A CLI runner bound to one server and a set of credentials."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from tests.servers import CARDVAULT, Server

Cli = Callable[..., subprocess.CompletedProcess[str]]


def cli_for(server: Server, client_id: str, secret: str) -> Cli:
    def run(
        *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **server.env,
            "CARDVAULT_URL": server.url,
            "CARDVAULT_CLIENT_ID": client_id,
            "CARDVAULT_CLIENT_SECRET": secret,
        }
        env.pop("CARDVAULT_DATABASE_URL")  # a remote client knows nothing of the database
        env.pop("CARDVAULT_DATA_DIR")
        result = subprocess.run(
            [CARDVAULT, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
        )
        if check and result.returncode != 0:
            raise AssertionError(f"cardvault {' '.join(args)} failed:\n{result.stderr}")
        return result

    return run


@pytest.fixture(scope="session")
def admin_cli(server: Server) -> Cli:
    """The CLI with the `cardvault-cli` credentials that `cardvault init` printed."""
    creds = server.init["cli_credentials"]
    return cli_for(server, creds["client_id"], creds["client_secret"])
