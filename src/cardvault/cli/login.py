"""``cardvault login`` / ``logout``: people sign the CLI in with the device grant (RFC 8628).

The token is kept in ``$XDG_CONFIG_HOME/cardvault/credentials.json`` (default
``~/.config/cardvault``), the directory 0700 and the file 0600, and used by the
management commands when no CARDVAULT_CLIENT_ID/SECRET are set.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from cardvault.client import DEFAULT_URL

CLI_CLIENT_ID = "cardvault-cli"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

err = Console(stderr=True, soft_wrap=True, highlight=False)

Url = Annotated[str, typer.Option("--url", envvar="CARDVAULT_URL", help="Server base URL.")]
Realm = Annotated[str, typer.Option("--realm", envvar="CARDVAULT_REALM", help="Realm.")]


def credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cardvault" / "credentials.json"


def stored_token(url: str) -> str | None:
    """The stored access token for ``url`` if it has not expired, else ``None``."""
    try:
        saved = json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return None
    entry = saved.get(url.rstrip("/")) if isinstance(saved, dict) else None
    if not isinstance(entry, dict) or entry.get("expires_at", 0) <= time.time():
        return None
    token = entry.get("access_token")
    return token if isinstance(token, str) else None


def _write_private(path: Path, content: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content)
    path.chmod(0o600)


def _load_all() -> dict[str, Any]:
    try:
        saved = json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def _oauth_base(url: str, realm: str) -> str:
    return f"{url.rstrip('/')}/auth/realms/{realm}/protocol/openid-connect"


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(1)


def _start(http: httpx.Client, base: str) -> dict[str, Any]:
    response = http.post(f"{base}/auth/device", data={"client_id": CLI_CLIENT_ID})
    if response.status_code != 200:
        raise _fail(f"the server refused the sign-in request ({response.status_code})")
    body: dict[str, Any] = response.json()
    return body


def _poll(http: httpx.Client, base: str, device: dict[str, Any]) -> dict[str, Any]:
    """Poll the token endpoint at the server's interval until a decision (RFC 8628 §3.4)."""
    interval = int(device.get("interval", 5))
    deadline = time.monotonic() + int(device.get("expires_in", 600))
    form = {"grant_type": DEVICE_GRANT, "device_code": device["device_code"]}
    form["client_id"] = CLI_CLIENT_ID
    while time.monotonic() < deadline:
        time.sleep(interval)
        response = http.post(f"{base}/token", data=form)
        body: dict[str, Any] = response.json()
        if response.status_code == 200:
            return body
        error = body.get("error")
        if error == "slow_down":
            interval += 5
        elif error != "authorization_pending":
            raise _fail(str(body.get("error_description", error)))
    raise _fail("the code expired before it was approved; run `cardvault login` again")


def login(url: Url = DEFAULT_URL, realm: Realm = "cardvault") -> None:
    """Sign in as a person: approve the printed code in the dashboard."""
    base = _oauth_base(url, realm)
    try:
        with httpx.Client(timeout=15) as http:
            device = _start(http, base)
            err.print(f"Open  {device['verification_uri']}")
            err.print(f"and enter the code  [bold]{device['user_code']}[/]")
            err.print(f"(or open {device['verification_uri_complete']})")
            err.print("Waiting for approval…")
            token = _poll(http, base, device)
    except httpx.TransportError as exc:
        raise _fail(f"cannot reach {url} ({exc.__class__.__name__})") from None
    saved = _load_all()
    saved[url.rstrip("/")] = {
        "access_token": token["access_token"],
        "expires_at": int(time.time()) + int(token.get("expires_in", 300)),
        "scope": token.get("scope", ""),
    }
    _write_private(credentials_path(), json.dumps(saved, indent=2) + "\n")
    err.print(f"Signed in; the token is stored in {credentials_path()}.")


def logout(url: Url = DEFAULT_URL) -> None:
    """Forget the token stored by `cardvault login` for this server."""
    saved = _load_all()
    if saved.pop(url.rstrip("/"), None) is None:
        err.print("Not signed in to this server.")
        return
    _write_private(credentials_path(), json.dumps(saved, indent=2) + "\n")
    err.print("Signed out.")


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
