"""Per-worker cache of client records for the token endpoint.

Entries are dropped when the change feed reports a change to their client, and after
``TTL`` seconds in any case. Together with :class:`~cardvault.sync.changes.Freshness`
this keeps the token endpoint from reading the database on every request without
ever accepting a client that was deleted, disabled or demoted. That holds only where
the database sees every commit at once (``Capabilities.sees_every_commit``: SQLite).
Elsewhere (PostgreSQL, where other nodes' commits arrive by ``NOTIFY`` a few
milliseconds later) the cache is off and every request reads the client's row, so a
revocation still takes effect at once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from cardvault.accounts.services import ClientRecord
from cardvault.sync.changes import ChangeEvent

TTL = 60.0
MAX_ENTRIES = 10_000


class ClientCache:
    def __init__(
        self,
        load: Callable[[str], Awaitable[ClientRecord | None]],
        sync: Callable[[], None],
        *,
        enabled: bool = True,
    ) -> None:
        self._load = load
        self._sync = sync
        self._enabled = enabled
        self._entries: dict[str, tuple[ClientRecord, float]] = {}
        self._generation = 0

    async def get(self, client_id: str) -> ClientRecord | None:
        """The client's record, fresh as of this call; ``None`` for an unknown client."""
        if not self._enabled:
            return await self._load(client_id)
        self._sync()
        now = time.monotonic()
        entry = self._entries.get(client_id)
        if entry is not None and entry[1] > now:
            return entry[0]
        generation = self._generation
        record = await self._load(client_id)
        if record is not None and generation == self._generation:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[client_id] = (record, now + TTL)
        else:
            self._entries.pop(client_id, None)
        return record

    def apply(self, events: Sequence[ChangeEvent]) -> None:
        """Change-feed handler: forget clients that changed."""
        for event in events:
            if event.kind == "client":
                self._generation += 1
                self._entries.pop(event.subject, None)
