"""Connection pools that tell how busy they are, for the metrics (``/metrics``)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.pool import ConnectionPoolEntry, Pool, QueuePool


@dataclass(frozen=True)
class PoolStatus:
    """One pool of this process, now: its size, connections in use, callers waiting."""

    name: str
    size: int
    in_use: int
    waiting: int


class WatchedPool(QueuePool):
    """SQLAlchemy's queue pool, counting the callers that wait for a connection because
    every one it may open is in use. Counting costs nothing while a connection is free."""

    def __init__(self, creator: Any, pool_size: int = 5, max_overflow: int = 10, **kw: Any):
        super().__init__(creator, pool_size=pool_size, max_overflow=max_overflow, **kw)
        self._capacity = pool_size + max_overflow if max_overflow >= 0 else None
        self._waiting = 0
        self._count = threading.Lock()

    @property
    def waiting(self) -> int:
        return self._waiting

    def _do_get(self) -> ConnectionPoolEntry:
        if self._capacity is None or self.checkedout() < self._capacity:
            return super()._do_get()  # an idle connection, or room to open one
        with self._count:
            self._waiting += 1
        try:
            return super()._do_get()
        finally:
            with self._count:
                self._waiting -= 1


def pool_status(name: str, engine: Engine) -> PoolStatus:
    """``engine``'s pool now (a pool that is not a :class:`WatchedPool` waits for none)."""
    pool: Pool = engine.pool
    if not isinstance(pool, QueuePool):
        return PoolStatus(name, 0, 0, 0)
    waiting = pool.waiting if isinstance(pool, WatchedPool) else 0
    return PoolStatus(name, pool.size(), pool.checkedout(), waiting)
