"""Real ``cardvault`` server processes for functional tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

CARDVAULT = str(Path(sys.executable).with_name("cardvault"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_env(data_dir: Path, database_url: str, **settings: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDVAULT_")}
    env["CARDVAULT_DATA_DIR"] = str(data_dir)
    env["CARDVAULT_DATABASE_URL"] = database_url
    if database_url.startswith("postgresql"):
        # The suite's servers share one PostgreSQL (max_connections 100) with each
        # other and with the other test process: small pools, as an operator running
        # many nodes would set them. A test may set its own.
        settings = {"db_pool_size": 4, "db_readers": 2, **settings}
    for name, value in settings.items():
        env[f"CARDVAULT_{name.upper()}"] = str(value)
    return env


def run_cli(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CARDVAULT, *args], env=env, capture_output=True, text=True, timeout=60, check=check
    )


@dataclass
class Server:
    """A running ``cardvault serve`` with its installation's first credentials."""

    data_dir: Path
    database_url: str
    port: int
    workers: int = 1
    settings: dict[str, Any] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    init: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def realm(self) -> str:
        return str(self.settings.get("realm", "cardvault"))

    @property
    def issuer(self) -> str:
        return f"{self.url}/auth/realms/{self.realm}"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def env(self) -> dict[str, str]:
        return cli_env(self.data_dir, self.database_url, port=self.port, **self.settings)

    def start(self) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.init:
            result = run_cli(self.env, "init", "--json")
            self.init = json.loads(result.stdout)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [CARDVAULT, "serve", "--workers", str(self.workers)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL the server and its workers (a crash: no shutdown code runs) and wait."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli(self.env, *args, check=check)
