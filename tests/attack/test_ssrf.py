"""Webhook URLs that would make the server call into its own network (SSRF).

Registered through the real API of a server with the default settings (only public
addresses): every form is refused with 422 ``url-not-allowed`` and nothing is written.
Deliveries follow no redirect.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.attack.helpers import error_code
from tests.conftest import MakeServer
from tests.factories import Factory
from tests.functional.webhooks.conftest import WEBHOOK_SETTINGS, Vault
from tests.servers import Server, free_port

EVENTS = ["network_token.activated"]

SSRF_URLS = [
    # loopback, private, link-local (cloud metadata), written plainly
    "http://127.0.0.1/hooks",
    "http://10.0.0.1/hooks",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hooks",
    "http://[fd00::1]/hooks",
    "http://0.0.0.0/hooks",
    # other spellings of 127.0.0.1
    "http://2130706433/hooks",
    "http://0x7f000001/hooks",
    "http://0x7f.1/hooks",
    "http://0177.0.0.1/hooks",
    "http://127.1/hooks",
    "http://127.0.0.1./hooks",
    # IPv6 forms carrying a private IPv4 address
    "http://[::ffff:127.0.0.1]/hooks",
    "http://[::ffff:7f00:1]/hooks",
    "http://[::127.0.0.1]/hooks",
    "http://[2002:7f00:1::1]/hooks",
    "http://[2002:a9fe:a9fe::]/latest/meta-data/",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hooks",
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
    "http://[64:ff9b:1::a00:1]/hooks",
    # zone ids, user information, parser confusion
    "http://[fe80::1%25eth0]/hooks",
    "http://public.example@127.0.0.1/hooks",
    "http://public.example:pw@127.0.0.1/hooks",
    "http://127.0.0.1\\@public.example/hooks",
    "http://127.0.0.1%2F@public.example/hooks",
    "http://127.0.0.1:80\t@public.example/hooks",
    # names resolving to loopback
    "http://localhost/hooks",
    "http://LOCALHOST./hooks",
    "http://localhost:8080/hooks",
    # other schemes
    "file:///etc/passwd",
    "gopher://127.0.0.1:25/",
    "ftp://public.example/",
    "dict://127.0.0.1:11211/",
    "javascript:alert(1)",
]


@pytest.fixture(scope="module")
def vault(server: Server, factory: Factory) -> Vault:
    """One vault for the module: every refusal must leave it without endpoints."""
    return Vault(server, factory)


@pytest.mark.parametrize("url", SSRF_URLS)
def test_ssrf_forms_are_refused_and_nothing_is_written(vault: Vault, url: str) -> None:
    response = vault.call("POST", "/webhooks", {"url": url, "events": EVENTS})
    assert response.status_code == 422, response.text
    assert error_code(response) == "url-not-allowed"
    assert response.json()["errors"][0]["detail"].startswith("url: ")
    assert vault.call("GET", "/webhooks").json()["data"] == []


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.215.14/hooks",
        "https://[2606:4700:4700::1111]/hooks",
        "https://[2002:5db8:d70e::1]/hooks",  # 6to4 of a public address
        "https://[::ffff:93.184.215.14]/hooks",
    ],
)
def test_public_addresses_are_accepted(server: Server, factory: Factory, url: str) -> None:
    other = Vault(server, factory)
    response = other.call("POST", "/webhooks", {"url": url, "events": EVENTS})
    assert response.status_code == 201, response.text


class _Redirector(BaseHTTPRequestHandler):
    target = ""
    hits: list[str] = []

    def do_POST(self) -> None:
        type(self).hits.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(307)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def listeners() -> Iterator[tuple[int, int, type[_Redirector]]]:
    """A webhook receiver that redirects to a second one (which must never be called)."""
    first, second = free_port(), free_port()

    class Handler(_Redirector):
        target = f"http://127.0.0.1:{second}/stolen"
        hits: list[str] = []

    servers = [ThreadingHTTPServer(("127.0.0.1", port), Handler) for port in (first, second)]
    for httpd in servers:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield first, second, Handler
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def test_deliveries_follow_no_redirect(
    make_server: MakeServer, listeners: tuple[int, int, type[_Redirector]]
) -> None:
    first, _second, handler = listeners
    srv = make_server("sqlite", **WEBHOOK_SETTINGS)
    factory = Factory(srv)
    vault = Vault(srv, factory)
    endpoint = vault.subscribe(f"http://127.0.0.1:{first}/hooks", ["network_token.activated"])
    vault.provision(vault.card("4111111111111111"))
    deliveries = _wait_for_attempt(vault, endpoint["id"])
    assert deliveries[0]["attempts"][0]["status_code"] == 307
    assert deliveries[0]["state"] != "succeeded"
    assert "/stolen" not in handler.hits and "/hooks" in handler.hits
    factory.close()


def _wait_for_attempt(vault: Vault, endpoint_id: str) -> list[dict[str, Any]]:
    import time

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = vault.call("GET", f"/webhooks/{endpoint_id}/deliveries").json()["data"]
        if found and found[0]["attempts"]:
            return list(found)
        time.sleep(0.05)
    raise AssertionError("no delivery attempt")
