"""``make cluster``: several ``cardvault serve`` nodes on one PostgreSQL behind nginx,
on loopback, until Ctrl-C. Run from the repository: ``python -m deploy.cluster``.

What it does is what an operator does on several machines (docs/operations.md,
"Running several nodes"): one database, ``cardvault init`` once, the key-encryption key
copied to every node, every node's ``CARDVAULT_URL`` the balancer's URL.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import httpx
import psycopg
from psycopg import sql

from deploy.balancer import Nginx

CARDVAULT = str(Path(sys.executable).with_name("cardvault"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_database(admin_url: str, name: str, kek: Path) -> str:
    """``name`` on the PostgreSQL of ``admin_url``, created when missing; its URL. An
    existing, initialized database needs the key-encryption key it was made with."""
    base = admin_url.rsplit("/", 1)[0]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    if exists is not None and not kek.exists():
        with psycopg.connect(f"{base}/{name}") as conn:
            used = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
        if used is not None and used[0]:
            raise SystemExit(
                f"database {name} was initialized with another key-encryption key (not in "
                f"{kek.parent.parent}): use the --dir it was made with, another --database, "
                f"or drop it (dropdb -h 127.0.0.1 -U postgres {name})"
            )
    return f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"


class Node:
    """One ``cardvault serve`` process group with its own data directory and port."""

    def __init__(self, data_dir: Path, port: int, env: dict[str, str], workers: int) -> None:
        self.data_dir, self.port, self.workers = data_dir, port, workers
        self.env = {**env, "CARDVAULT_DATA_DIR": str(data_dir), "CARDVAULT_PORT": str(port)}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.data_dir / "server.log").open("ab")
        self.process = subprocess.Popen(
            [CARDVAULT, "serve", "--workers", str(self.workers)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"node on port {self.port} exited: see {self.data_dir}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"node on port {self.port} not ready: see {self.data_dir}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="worker processes per node")
    parser.add_argument("--port", type=int, default=8080, help="the balancer's port")
    parser.add_argument("--dir", type=Path, default=Path(".cardvault-cluster"))
    parser.add_argument(
        "--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres", help="admin URL"
    )
    parser.add_argument("--database", default="cardvault_cluster")
    args = parser.parse_args(argv)

    root = args.dir.resolve()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    public_url = f"http://127.0.0.1:{args.port}"
    database_url = ensure_database(args.postgres, args.database, root / "node0" / "kek.key")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDVAULT_")}
    env.update(CARDVAULT_DATABASE_URL=database_url, CARDVAULT_URL=public_url)
    # The balancer (on this machine) names the caller in X-Forwarded-For.
    env.update(CARDVAULT_TRUSTED_PROXIES="127.0.0.1/32")
    env.update({k: v for k, v in os.environ.items() if k.startswith("CARDVAULT_DB_")})

    nodes = [Node(root / f"node{i}", free_port(), env, args.workers) for i in range(args.nodes)]
    first = nodes[0]
    first.data_dir.mkdir(mode=0o700, exist_ok=True)
    # init once: migrations, the first organization and credentials (printed only the
    # first time), and the key-encryption key every node must share.
    subprocess.run([CARDVAULT, "init"], env=first.env, check=True, timeout=120)
    for node in nodes[1:]:
        node.data_dir.mkdir(mode=0o700, exist_ok=True)
        shutil.copy2(first.data_dir / "kek.key", node.data_dir / "kek.key")

    balancer = Nginx(root / "nginx", args.port, [f"127.0.0.1:{n.port}" for n in nodes])
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_ready()
        balancer.start()
        pool = int(env.get("CARDVAULT_DB_POOL_SIZE", 4)) + int(env.get("CARDVAULT_DB_READERS", 4))
        print(
            f"\ncardvault cluster at {public_url} (issuer {public_url}/auth/realms/cardvault)\n"
            f"  {args.nodes} nodes x {args.workers} workers: "
            + ", ".join(n.url for n in nodes)
            + f"\n  database {args.database}: up to {args.nodes * args.workers * (pool + 1)} "
            "connections\n"
            f"  logs in {root}/node*/server.log and {root}/nginx/\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        while not stopping:
            for node in nodes:
                if node.process is not None and node.process.poll() is not None:
                    print(f"node {node.url} exited: see {node.data_dir}/server.log", flush=True)
                    node.process = None
            time.sleep(0.5)
    finally:
        balancer.stop()
        for node in nodes:
            node.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
