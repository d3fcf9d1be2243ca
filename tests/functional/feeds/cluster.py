"""Several server processes on one database, and a line to each of their workers."""

from __future__ import annotations

import os
import shutil
from http.client import HTTPConnection
from pathlib import Path

from tests.servers import Server, free_port


def second_node(first: Server, data_dir: Path) -> Server:
    """Another ``cardvault serve`` on ``first``'s database, as a second machine would
    run it: same database URL and key-encryption key, its own data directory."""
    data_dir.mkdir(parents=True)
    shutil.copy2(first.data_dir / "kek.key", data_dir / "kek.key")
    node = Server(
        data_dir=data_dir,
        database_url=first.database_url,
        port=free_port(),
        workers=first.workers,
        settings=first.settings,
        init=first.init,
    )
    return node.start()


class WorkerLine:
    """A keep-alive connection known to be served by one worker process."""

    def __init__(self, server: Server, conn: HTTPConnection, pid: int) -> None:
        self.server, self.conn, self.pid = server, conn, pid
        self.port = _local_port(conn)

    def get(self, path: str, token: str) -> int:
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = self.conn.getresponse()
        response.read()
        # Still the same connection, so still the same worker (no silent reconnect).
        assert _local_port(self.conn) == self.port, "the server closed a worker line"
        return response.status

    def close(self) -> None:
        self.conn.close()


def worker_lines(server: Server, attempts: int = 200) -> list[WorkerLine]:
    """One line to each worker of ``server``: connections are opened until every
    worker has accepted one (found through /proc: which process holds the socket)."""
    assert server.process is not None
    found: dict[int, WorkerLine] = {}
    spare: list[HTTPConnection] = []
    for _ in range(attempts):
        conn = HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        pid = _owner(server.port, _local_port(conn), _group(server.process.pid))
        if pid is None or pid in found:
            spare.append(conn)  # kept open meanwhile: the next one goes elsewhere
        else:
            found[pid] = WorkerLine(server, conn, pid)
        if len(found) == server.workers:
            break
    for conn in spare:
        conn.close()
    assert len(found) == server.workers, f"reached {len(found)} of {server.workers} workers"
    return list(found.values())


def _local_port(conn: HTTPConnection) -> int:
    assert conn.sock is not None
    return int(conn.sock.getsockname()[1])


def _group(pgid: int) -> set[int]:
    """The processes of a process group (the server and its workers)."""
    members = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
            members.add(int(entry))
    return members


def _owner(server_port: int, client_port: int, pids: set[int]) -> int | None:
    """The process holding the server's end of the TCP connection from ``client_port``."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.rsplit(":", 1)[1], 16) == server_port and (
            int(remote.rsplit(":", 1)[1], 16) == client_port
        ):
            inode = fields[9]
    if inode is None:
        return None
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None
