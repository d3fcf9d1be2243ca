"""Small HTTP helpers shared by the OAuth functional tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from tests.factories import Client
from tests.servers import Server


def token_request(server: Server, client: Client, **extra: str) -> httpx.Response:
    data = {
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "grant_type": "client_credentials",
        **extra,
    }
    return httpx.post(server.token_url, data=data)


def access_token(server: Server, client: Client, **extra: str) -> str:
    response = token_request(server, client, **extra)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a token, without verification (for assertions only)."""
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


def whoami(server: Server, token: str) -> httpx.Response:
    return httpx.get(f"{server.url}/whoami", headers={"Authorization": f"Bearer {token}"})


def eventually(check: Callable[[], bool], timeout: float = 1.0, step: float = 0.02) -> float:
    """Seconds until ``check()`` held; fails if it did not within ``timeout``."""
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)
