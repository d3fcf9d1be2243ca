"""A cheap "has anything been committed since I last looked?" for background loops.

On SQLite, ``PRAGMA data_version`` on a private connection changes whenever any
other connection commits, and costs microseconds: an idle server's loops (webhook
fan-out, bulk jobs) skip their queries while nothing changed. On PostgreSQL other
nodes write too and the answer is always yes.
"""

from __future__ import annotations

import sqlite3

from cardvault.store.db import Database


class ChangeProbe:
    def __init__(self, db: Database) -> None:
        self._conn: sqlite3.Connection | None = None
        self._version = -1
        path = db.engine.url.database if db.dialect == "sqlite" else None
        if path and path != ":memory:":
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)

    def changed(self) -> bool:
        """True if a commit happened since the previous call (and on the first call)."""
        if self._conn is None:
            return True
        version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        changed, self._version = version != self._version, version
        return changed

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
