"""Fixtures of the fuzz suites: a dedicated server per backend, a bearer token holding
every scope on its vault, and the check that the server log holds no traceback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cardvault.accounts import services as accounts
from cardvault.accounts.grants import OPERATOR
from cardvault.accounts.scopes import ALL_SCOPES
from tests.conftest import BACKENDS, Databases, assert_no_secrets
from tests.factories import Factory
from tests.fuzz.budget import TALLY
from tests.servers import Server, free_port

# Fuzzing the token endpoint fails client authentication thousands of times from one
# address; the throttle would then answer 429 to everything, hiding the parsing paths.
SETTINGS = {
    "throttle_ip_failures": 1_000_000,
    "throttle_client_failures": 1_000_000,
    "webhook_allowed_networks": "127.0.0.0/8",
}


class Credentials:
    """A service account of the installation's organization holding every scope on its
    vault, and its current bearer token. The fuzzer may delete the account, rotate its
    secret or lower its access: :meth:`renew` then makes a new one."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.factory = Factory(server)
        self.org_id: str = server.init["organization_id"]
        self.vault_id: str = server.init["vault_id"]
        self.client_id = ""
        self._secret = ""
        self._token = ""
        self._renew_at = 0.0

    def _new_account(self) -> None:
        with self.factory.db.transaction() as session:
            account, secret = accounts.create_service_account(
                session,
                self.factory.hasher,
                grantor=OPERATOR,
                actor=None,
                org_id=self.org_id,
                name="fuzz",
                scopes=list(ALL_SCOPES),
                vault_ids=[self.vault_id],
                lifespan=300,
            )
            self.client_id, self._secret = account.client_id, secret.reveal()

    def headers(self) -> dict[str, str]:
        if time.monotonic() >= self._renew_at:
            self.renew()
        return {"Authorization": f"Bearer {self._token}"}

    def renew(self) -> None:
        for _ in range(2):
            if not self.client_id:
                self._new_account()
            form = {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self._secret,
            }
            answer = httpx.post(self.server.token_url, data=form, timeout=30)
            if answer.status_code == 200:
                body = answer.json()
                self._token = body["access_token"]
                self._renew_at = time.monotonic() + body["expires_in"] - 60
                return
            self.client_id = ""
        raise AssertionError(f"the token endpoint refused a new account: {answer.text}")

    def close(self) -> None:
        self.factory.close()


@pytest.fixture(scope="session", params=BACKENDS)
def fuzz_server(
    request: pytest.FixtureRequest, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of its own per backend: the fuzzer fills it with odd data."""
    srv = Server(
        data_dir=tmp_path_factory.mktemp(f"fuzz-{request.param}"),
        database_url=databases.url(request.param),
        port=free_port(),
        settings=SETTINGS,
    ).start()
    yield srv
    srv.stop()
    assert_no_secrets(srv)


@pytest.fixture(scope="session")
def credentials(fuzz_server: Server) -> Iterator[Credentials]:
    creds = Credentials(fuzz_server)
    yield creds
    creds.close()


def tracebacks(text: str) -> list[str]:
    """Log lines of an unhandled error: a traceback or an ``error``-level entry."""
    return [
        line
        for line in text.splitlines()
        if "Traceback" in line or '"level":"error"' in line or '"level":"critical"' in line
    ]


@pytest.fixture(autouse=True)
def no_traceback_in_log(fuzz_server: Server) -> Iterator[None]:
    """Whatever the test sent, the server logged no unhandled error meanwhile."""
    start = fuzz_server.log_path.stat().st_size
    yield
    with fuzz_server.log_path.open("rb") as log:
        log.seek(start)
        found = tracebacks(log.read().decode(errors="replace"))
    assert not found, f"{len(found)} error lines in the server log, first:\n{found[0][:4000]}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TALLY.cases:
        return
    failed = [r for r in terminalreporter.stats.get("failed", []) if "tests/fuzz" in r.nodeid]
    parts = ", ".join(f"{part} {n}" for part, n in sorted(TALLY.cases.items()))
    minutes = (time.monotonic() - TALLY.start) / 60
    terminalreporter.write_line(
        f"fuzz: {TALLY.total} cases ({parts}) in {minutes:.1f} minutes, {len(failed)} failures"
    )
