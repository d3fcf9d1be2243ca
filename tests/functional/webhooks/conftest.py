"""A real webhook receiver on loopback and a server allowed to reach it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, Databases, assert_no_secrets
from tests.factories import Factory
from tests.functional.oauth.helpers import access_token
from tests.servers import Server, free_port

# Fast retries so that tests need not wait; loopback receivers are allowed.
WEBHOOK_SETTINGS = {
    "webhook_allowed_networks": "127.0.0.0/8",
    "webhook_backoff_base": 0.2,
    "webhook_backoff_max": 1,
    "webhook_timeout": 2,
    "webhook_poll_interval": 0.1,
    "settle_interval": 0.2,
}
SCOPES = ["cards:write", "network-tokens:write", "webhooks:write"]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int
    at: float  # when it arrived (unix time), to verify the signature's age as a receiver would

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    """Records every request; answers 500 to the first ``fail`` ones and waits
    ``delay`` seconds before answering when asked to."""

    port: int
    fail: int = 0
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            status = 500 if self.fail > 0 else 200
            self.fail -= 1 if self.fail > 0 else 0
            self.requests.append(Received(headers, body, status, time.time()))
            return status

    def acknowledged(self) -> list[dict[str, Any]]:
        """Bodies of the requests answered 2xx, in arrival order."""
        with self.lock:
            return [r.json for r in self.requests if r.answered == 200]

    def wait_for(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.acknowledged()
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"receiver got {len(self.acknowledged())} of {count} events")


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if receiver.delay:
                time.sleep(receiver.delay)
            status = receiver.answer(dict(self.headers.items()), body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _receivers()


@pytest.fixture
def other_receiver() -> Iterator[Receiver]:
    yield from _receivers()


def _receivers() -> Iterator[Receiver]:
    rec = Receiver(port=free_port())
    httpd = ThreadingHTTPServer(("127.0.0.1", rec.port), _handler(rec))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield rec
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session", params=BACKENDS)
def hook_server(
    request: pytest.FixtureRequest, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A shared server per backend that may deliver to loopback receivers."""
    srv = Server(
        data_dir=tmp_path_factory.mktemp(f"hooks-{request.param}"),
        database_url=databases.url(request.param),
        port=free_port(),
        settings=dict(WEBHOOK_SETTINGS),
    ).start()
    yield srv
    srv.stop()
    assert_no_secrets(srv)


@pytest.fixture(scope="session")
def hook_factory(hook_server: Server) -> Iterator[Factory]:
    f = Factory(hook_server)
    yield f
    f.close()


class Vault:
    """One vault's API caller with card, network-token and webhook scopes."""

    def __init__(self, server: Server, factory: Factory) -> None:
        self.server = server
        self.client = factory.client(scopes=SCOPES)
        self.headers = {"Authorization": f"Bearer {access_token(server, self.client)}"}

    def call(self, method: str, path: str, body: object = None) -> httpx.Response:
        return httpx.request(
            method, f"{self.server.url}{path}", json=body, headers=self.headers, timeout=10
        )

    def subscribe(self, url: str, events: list[str] | None = None) -> dict[str, Any]:
        from cardvault.events import EVENT_TYPES

        response = self.call("POST", "/webhooks", {"url": url, "events": events or EVENT_TYPES})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def card(self, pan: str, exp_month: int = 7, exp_year: int | None = None) -> dict[str, Any]:
        from tests.functional.api.test_cards import NEXT_YEAR

        body = {"pan": pan, "exp_month": exp_month, "exp_year": exp_year or NEXT_YEAR}
        response = self.call("POST", "/cards", body)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    def provision(self, card: dict[str, Any]) -> dict[str, Any]:
        response = self.call("POST", "/network-tokens", {"pan_alias": card["pan_alias"]})
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture
def vault(hook_server: Server, hook_factory: Factory) -> Vault:
    return Vault(hook_server, hook_factory)
