"""HTTP client with client-credentials token caching.

The access token is fetched on first use, cached, and fetched again shortly before
``expires_in`` runs out or after a 401, so a long-running program never presents an
expired token.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
REFRESH_MARGIN = 0.1  # refresh when 10 % of the lifetime (at least 5 s) is left


class CardvaultError(Exception):
    """An error answer of the server, or the server could not be reached."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{detail} ({code})" if code else detail)
        self.status = status
        self.code = code
        self.detail = detail

    @classmethod
    def from_response(cls, response: httpx.Response) -> CardvaultError:
        try:
            body = response.json()
        except ValueError:
            return cls(response.status_code, "http-error", f"HTTP {response.status_code}")
        if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
            first = body["errors"][0]
            return cls(
                response.status_code, str(first.get("code", "")), str(first.get("detail", ""))
            )
        if isinstance(body, dict) and "error" in body:
            return cls(
                response.status_code,
                str(body["error"]),
                str(body.get("error_description", body["error"])),
            )
        return cls(response.status_code, "http-error", f"HTTP {response.status_code}")


class Client:
    """A service account's view of one cardvault server."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        realm: str = "cardvault",
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        access_token: str | None = None,
    ) -> None:
        """``access_token``: a token obtained elsewhere (``cardvault login``), used as is
        instead of client credentials."""
        self.url = url.rstrip("/")
        self.token_url = f"{self.url}/auth/realms/{realm}/protocol/openid-connect/token"
        self._credentials = (client_id, client_secret)
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)
        self._token: str | None = access_token
        self._refresh_at = float("inf") if access_token else 0.0
        self._lock = threading.Lock()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def access_token(self) -> str:
        """A valid access token, fetched again when close to its expiry."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._refresh_at:
                self._fetch_token()
            assert self._token is not None
            return self._token

    def _fetch_token(self) -> None:
        client_id, client_secret = self._credentials
        if not client_id or not client_secret:
            raise CardvaultError(
                401,
                "missing-credentials",
                "run `cardvault login`, or set CARDVAULT_CLIENT_ID and CARDVAULT_CLIENT_SECRET "
                "(printed by `cardvault init`)",
            )
        response = self._send(
            "POST",
            self.token_url,
            data={"grant_type": "client_credentials"},
            auth=(client_id, client_secret),
        )
        if response.status_code != 200:
            raise CardvaultError.from_response(response)
        body = response.json()
        lifetime = float(body.get("expires_in", 60))
        self._token = str(body["access_token"])
        self._refresh_at = time.monotonic() + lifetime - max(5.0, lifetime * REFRESH_MARGIN)

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise CardvaultError(
                0, "unreachable", f"cannot reach {self.url} ({exc.__class__.__name__})"
            ) from exc

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send an authenticated request; a 401 fetches a new token and retries once."""
        extra = kwargs.pop("headers", {})
        for attempt in (1, 2):
            headers = {**extra, "Authorization": f"Bearer {self.access_token()}"}
            response = self._send(method, path, headers=headers, **kwargs)
            if response.status_code != 401 or attempt == 2:
                break
            with self._lock:
                self._token = None
        if response.status_code >= 400:
            raise CardvaultError.from_response(response)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None).json()

    def post(self, path: str, body: Any = None) -> Any:
        response = self.request("POST", path, json=body)
        return response.json() if response.content else None

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body).json()

    def delete(self, path: str) -> None:
        self.request("DELETE", path)
