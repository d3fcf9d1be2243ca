"""A real TCP proxy between a server and PostgreSQL, which a test can cut.

``cut()`` resets every open connection and refuses new ones (as a database that
restarts, or a network that drops, does to its clients); ``restore()`` accepts
again; ``reset()`` drops the open connections only; ``drop_on`` drops any
connection on which the server sends those bytes (a statement), so that a fault
hits one chosen step and not the others. Threads, plain sockets, nothing mocked:
the server's driver sees real resets and real refusals.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType

from tests.servers import free_port


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._clients: set[socket.socket] = set()  # the server's ends of connections
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self.drop_on: bytes | None = None  # drop a connection that sends this

    def __enter__(self) -> TcpProxy:
        self.restore()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.cut()

    # ------------------------------------------------------------------ control

    def restore(self) -> None:
        """Listen (again) on the same port and forward new connections."""
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(128)
            self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def cut(self) -> None:
        """Reset every forwarded connection and refuse new ones until :meth:`restore`."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._open = self._open, set()
            self._clients = set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets:
            _reset(sock)
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
            self._acceptor = None

    def reset(self) -> None:
        """Drop every forwarded connection; new ones are accepted as before."""
        with self._lock:
            sockets, self._open = self._open, set()
            self._clients = set()
        for sock in sockets:
            _reset(sock)

    @property
    def listening(self) -> bool:
        with self._lock:
            return self._listener is not None

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._open) // 2

    # ------------------------------------------------------------------ forwarding

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    _reset(client)
                    _reset(server)
                    return
                self._open.update((client, server))
                self._clients.add(client)
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                trigger = self.drop_on
                if trigger is not None and source in self._clients and trigger in data:
                    break  # a fault at a chosen moment: the statement never arrives
                target.sendall(data)
        except OSError:
            pass
        with self._lock:
            gone = source in self._open
            self._open.discard(source)
            self._open.discard(target)
            self._clients.discard(source)
            self._clients.discard(target)
        if gone:
            _reset(source)
            _reset(target)


def _reset(sock: socket.socket) -> None:
    """Drop a connection: the peer sees it closed, the pump blocked on it wakes up
    (``shutdown``; a bare ``close`` would leave another thread's ``recv`` waiting)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
