"""Headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright.

One browser per test session; each test gets a fresh context (its own cookies). The
servers here are this package's own, so scenarios may demote or remove members.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.conftest import Databases, assert_no_secrets
from tests.servers import Server, free_port

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Module scope, not session: Playwright's sync API keeps an event loop running in the
# test process while it is open, and tests elsewhere that call asyncio.run() on the
# same xdist worker would fail. The browser tests run as one xdist group.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(
            "/usr/bin/chromium is missing: `make test` installs it (apt-get install chromium)"
        )
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    # Playwright gives every launch a fresh, temporary user data directory.
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(
    request: pytest.FixtureRequest, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of this module's own (one per backend), polling interval 1 s for logins."""
    srv = Server(
        data_dir=tmp_path_factory.mktemp(f"browser-{request.param}"),
        database_url=databases.url(request.param),
        port=free_port(),
        settings={"device_poll_interval": 1},
    ).start()
    yield srv
    srv.stop()
    assert_no_secrets(srv)


@pytest.fixture
def context(chromium: Browser, site: Server) -> Iterator[BrowserContext]:
    ctx = chromium.new_context(viewport=DESKTOP, base_url=site.url)
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/dashboard/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def sign_in_admin(page: Page, server: Server) -> None:
    sign_in(page, server.init["admin"]["email"], server.init["admin"]["password"])
    page.wait_for_url("**/dashboard/settings")


def screenshot(page: Page, name: str, backend: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}-{backend}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
