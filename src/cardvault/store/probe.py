"""A cheap "has anything been committed since I last looked?" for background loops
and per-worker caches.

Where the backend sees every commit (SQLite: ``PRAGMA data_version`` on a private
connection changes whenever any other connection commits, and costs microseconds),
the answer is exact: an idle server's loops (webhook fan-out, bulk jobs) skip their
queries while nothing changed. Elsewhere (PostgreSQL: other nodes write too) the
answer is always yes, and :attr:`ChangeProbe.exact` is False.
"""

from __future__ import annotations

from cardvault.store.db import Database


class ChangeProbe:
    def __init__(self, db: Database) -> None:
        self._counter = db.commit_counter()
        self._version = -1

    @property
    def exact(self) -> bool:
        """True if :meth:`changed` sees every commit; False if it always says yes."""
        return self._counter is not None

    def changed(self) -> bool:
        """True if a commit happened since the previous call (and on the first call)."""
        if self._counter is None:
            return True
        version = self._counter()
        changed, self._version = version != self._version, version
        return changed

    def close(self) -> None:
        if self._counter is not None:
            self._counter.close()
            self._counter = None
