"""Throttling of failed client authentication.

Three sliding one-minute windows of failures, kept per worker process:

* per client id *and* source address (default 10): a guesser is stopped at once;
* per source address, any client id (default 30): stops spraying many client ids;
* per client id, any address (default 100): stops a distributed attack on one client.

The last two never apply to an address from which that client authenticated
successfully within the past hour, so an attacker elsewhere cannot lock a well-behaved
client out of its own address. Checks happen before the secret is examined, so a
throttled caller learns nothing about it.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque

WINDOW = 60.0
TRUSTED_FOR = 3600.0
MAX_KEYS = 100_000


class _Windows:
    """Failure timestamps per key, the oldest keys forgotten past ``MAX_KEYS``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._data: OrderedDict[object, deque[float]] = OrderedDict()

    def add(self, key: object, now: float) -> None:
        times = self._data.get(key)
        if times is None:
            times = self._data[key] = deque(maxlen=self.limit)
            if len(self._data) > MAX_KEYS:
                self._data.popitem(last=False)
        times.append(now)

    def retry_after(self, key: object, now: float) -> int:
        """Seconds until ``key`` is below its limit again; 0 if it is already."""
        times = self._data.get(key)
        if times is None or len(times) < self.limit:
            return 0
        wait = times[0] + WINDOW - now
        if wait <= 0:
            return 0
        return max(1, math.ceil(wait))

    def clear(self, key: object) -> None:
        self._data.pop(key, None)


class FailureThrottle:
    def __init__(self, *, per_client_ip: int, per_ip: int, per_client: int) -> None:
        self._pair = _Windows(per_client_ip)
        self._ip = _Windows(per_ip)
        self._client = _Windows(per_client)
        self._trusted: OrderedDict[tuple[str, str], float] = OrderedDict()

    def _is_trusted(self, client_id: str, ip: str, now: float) -> bool:
        since = self._trusted.get((client_id, ip))
        return since is not None and now - since < TRUSTED_FOR

    def retry_after(self, client_id: str, ip: str, now: float) -> int:
        """0 if the request may proceed, else the seconds to wait."""
        wait = self._pair.retry_after((client_id, ip), now)
        if wait or self._is_trusted(client_id, ip, now):
            return wait
        return max(self._ip.retry_after(ip, now), self._client.retry_after(client_id, now))

    def failure(self, client_id: str, ip: str, now: float) -> None:
        self._pair.add((client_id, ip), now)
        self._ip.add(ip, now)
        self._client.add(client_id, now)

    def success(self, client_id: str, ip: str, now: float) -> None:
        key = (client_id, ip)
        self._pair.clear(key)
        self._trusted[key] = now
        self._trusted.move_to_end(key)
        if len(self._trusted) > MAX_KEYS:
            self._trusted.popitem(last=False)
