"""``LISTEN``/``NOTIFY``: nodes sharing one PostgreSQL wake each other up."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Connection, text

log = logging.getLogger(__name__)


def notify(conn: Connection, channel: str) -> None:
    """Notify ``channel`` when ``conn``'s transaction commits (nothing if it rolls back)."""
    conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})


class Listener:
    """A thread that listens on ``channel`` with a connection of its own and calls
    ``wake`` for each notification; it reconnects after losing its connection."""

    def __init__(
        self, dsn: str, connect_args: dict[str, Any], channel: str, wake: Callable[[], None]
    ) -> None:
        self._dsn = dsn
        self._args = connect_args
        self._channel = channel
        self._wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cardvault-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, **self._args) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._wake()
            except Exception:
                if self._stop.wait(1.0):
                    return
                log.warning("change listener lost its connection; reconnecting")

    def close(self) -> None:
        """Stop listening (within a second)."""
        self._stop.set()
