"""nginx from Debian's packages in front of cardvault nodes, run unprivileged from a
directory of its own (``make cluster`` and the cluster tests use it)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

TEMPLATE = Path(__file__).with_name("nginx.conf.template")
INSTALL = (
    "command -v nginx >/dev/null || (apt-get update -qq && apt-get install -y -qq nginx-light)"
)


def ensure_nginx() -> str:
    """The nginx executable, installed from Debian's ``nginx-light`` when missing."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found is None:
        subprocess.run(["sh", "-c", INSTALL], check=True, timeout=600)
        found = shutil.which("nginx", path="/usr/sbin:/sbin:/usr/bin")
    if found is None:
        raise RuntimeError("nginx is not installed and apt-get could not install it")
    return found


def render(run_dir: Path, listen: str, nodes: Sequence[str], fail_timeout: int = 5) -> str:
    """The configuration from the template: ``nodes`` are ``host:port`` strings."""
    servers = "\n".join(
        f"        server {node} max_fails=2 fail_timeout={fail_timeout}s;" for node in nodes
    )
    return (
        TEMPLATE.read_text()
        .replace("{{run_dir}}", str(run_dir))
        .replace("{{listen}}", listen)
        .replace("{{servers}}", servers)
        .replace("{{user}}", pwd.getpwuid(os.getuid()).pw_name)
    )


def _served(line: str, node: str) -> bool:
    """Whether an access log line (the template's format) shows a 2xx from ``node``."""
    fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
    addresses = fields.get("upstream", "").rstrip(",")
    statuses = fields.get("status", "")
    return addresses == node and statuses.startswith("2")


class Nginx:
    """An nginx process balancing ``127.0.0.1:port`` over ``nodes``."""

    def __init__(self, run_dir: Path, port: int, nodes: Sequence[str]) -> None:
        self.run_dir, self.port, self.nodes = run_dir, port, list(nodes)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        return self.run_dir / "nginx.conf"

    def start(self, timeout: float = 10.0) -> Nginx:
        nginx = ensure_nginx()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(render(self.run_dir, f"127.0.0.1:{self.port}", self.nodes))
        # -p, -e: the prefix and the first error log, so nothing is read or written
        # under /etc or /var.
        command = [
            nginx,
            "-p",
            str(self.run_dir),
            "-e",
            str(self.run_dir / "error.log"),
            "-c",
            str(self.config),
        ]
        check = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"nginx refused its configuration:\n{check.stderr}")
        with (self.run_dir / "stderr.log").open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited:\n{self.error_log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen on {self.port}:\n{self.error_log()}")

    def wait_routed(self, node: str, timeout: float = 30.0) -> None:
        """Until nginx has had a 2xx from ``node`` (``host:port``) since this call: a
        restarted node is back in the rotation (after ``fail_timeout``). Probes with
        ``GET /healthz`` meanwhile, so that it happens without other traffic."""
        log = self.run_dir / "access.log"
        offset = log.stat().st_size if log.exists() else 0
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=5) as http:
            while time.monotonic() < deadline:
                with log.open() as lines:
                    lines.seek(offset)
                    if any(_served(line, node) for line in lines):
                        return
                with contextlib.suppress(httpx.TransportError):
                    http.get("/healthz")
                time.sleep(0.05)
        raise RuntimeError(f"nginx sent nothing to {node} in {timeout} s:\n{self.error_log()}")

    def error_log(self) -> str:
        path = self.run_dir / "error.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        """Stop at once (SIGTERM is nginx's fast shutdown)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
