"""The service's Prometheus metrics: the domain's families, and how the worker
processes of one ``cardvault serve`` share every family.

Domain packages count what they do through :func:`metrics` (tokens issued and
refused, throttled attempts, webhook failures, provider errors, the change feed's
delay); the HTTP layer counts requests (``web/metrics.py``); the runtime samples its
database pools. What a database query answers (queue depth and age) is read when
``/metrics`` is scraped (:class:`Snapshot`), never on a request's path. Every label
takes values from a fixed set, never from what a caller sent.

Several workers: prometheus-client's multiprocess mode. ``cardvault serve`` calls
:func:`use_directory` before it starts its workers; from then on every value lives in
a memory-mapped file of that directory, one file per process and kind, and a scrape
adds the processes up (:func:`exposition`). A value made before that call would stay
private to one process, so the families are built on first use, in a worker.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

__all__ = [
    "CONTENT_TYPE",
    "Backlog",
    "Metrics",
    "Snapshot",
    "exposition",
    "forget_dead_workers",
    "labelled",
    "metrics",
    "record_pool",
    "run_directory",
    "use_directory",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST  # the text exposition format
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds, from the change feed's few milliseconds to a node that lost its database.
FEED_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_LIVE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


@dataclass(frozen=True)
class Metrics:
    """The domain's families (the HTTP layer's are in ``web/metrics.py``)."""

    tokens_issued: Counter  # grant_type
    tokens_refused: Counter  # reason
    throttled: Counter  # limiter
    webhook_failures: Counter  # reason
    webhooks_given_up: Counter
    provider_errors: Counter  # network, operation, code
    feed_delay: Histogram  # kind
    feed_read: Gauge
    pool_size: Gauge  # pool
    pool_in_use: Gauge  # pool
    pool_waiting: Gauge  # pool


@functools.cache
def metrics() -> Metrics:
    """The families, built once per process on first use (see the module's docstring)."""
    return Metrics(
        tokens_issued=Counter(
            "cardvault_tokens_issued",
            "Access tokens issued by the token endpoint, by grant type.",
            ["grant_type"],
        ),
        tokens_refused=Counter(
            "cardvault_tokens_refused",
            "Token requests refused, by reason (the RFC 6749 error code, or throttled).",
            ["reason"],
        ),
        throttled=Counter(
            "cardvault_throttled_requests",
            "Requests refused by a failure throttle: client_auth (token, introspection, "
            "revocation endpoints) or signin (the dashboard).",
            ["limiter"],
        ),
        webhook_failures=Counter(
            "cardvault_webhook_delivery_failures",
            "Webhook delivery attempts that failed, by reason.",
            ["reason"],
        ),
        webhooks_given_up=Counter(
            "cardvault_webhook_deliveries_given_up",
            "Webhook deliveries given up after their retry horizon (state failed).",
        ),
        provider_errors=Counter(
            "cardvault_provider_errors",
            "Refusals and failures of the card networks' token services, by network, "
            "operation and error code.",
            ["network", "operation", "code"],
        ),
        feed_delay=Histogram(
            "cardvault_change_feed_delay_seconds",
            "Seconds from a change being written (a revoked token, a client's change, "
            "new keys) to a worker applying it, by kind of change.",
            ["kind"],
            buckets=FEED_BUCKETS,
        ),
        feed_read=Gauge(
            "cardvault_change_feed_last_read_timestamp_seconds",
            "When the change feed was last read (Unix time); the least recent of the live "
            "workers. Now minus this is how far behind the feed may be.",
            multiprocess_mode="livemin",
        ),
        pool_size=Gauge(
            "cardvault_db_pool_size",
            "Database connections the pool may hold, summed over the live workers.",
            ["pool"],
            multiprocess_mode="livesum",
        ),
        pool_in_use=Gauge(
            "cardvault_db_pool_in_use",
            "Database connections checked out of the pool, summed over the live workers.",
            ["pool"],
            multiprocess_mode="livesum",
        ),
        pool_waiting=Gauge(
            "cardvault_db_pool_waiting",
            "Callers waiting for a pooled database connection, summed over the live workers.",
            ["pool"],
            multiprocess_mode="livesum",
        ),
    )


Family = TypeVar("Family", Counter, Gauge, Histogram)


@functools.lru_cache(maxsize=4096)
def labelled(family: Family, *values: str) -> Family:
    """``family.labels(*values)``, remembered: each label set is looked up once."""
    return family.labels(*values)


def record_pool(name: str, size: int, in_use: int, waiting: int) -> None:
    """This worker's pool ``name`` as sampled now."""
    families = metrics()
    labelled(families.pool_size, name).set(size)
    labelled(families.pool_in_use, name).set(in_use)
    labelled(families.pool_waiting, name).set(waiting)


# ---------------------------------------------------------------- read at scrape time


@dataclass(frozen=True)
class Backlog:
    """What waits in one queue: how many items, and when the oldest was queued."""

    depth: int
    oldest: dt.datetime | None


class Snapshot(Collector):
    """Queue depth and the age of the oldest item, as read for this scrape."""

    def __init__(self, backlogs: Mapping[str, Backlog], now: dt.datetime) -> None:
        self._backlogs = backlogs
        self._now = now

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "cardvault_queue_depth",
            "Items waiting in a background queue (bulk_jobs, bulk_rows, webhook_events, "
            "webhook_deliveries), read from the database at scrape time.",
            labels=["queue"],
        )
        age = GaugeMetricFamily(
            "cardvault_queue_oldest_age_seconds",
            "Age of the oldest item waiting in a background queue (0 when empty).",
            labels=["queue"],
        )
        for queue, backlog in sorted(self._backlogs.items()):
            depth.add_metric([queue], backlog.depth)
            oldest = backlog.oldest
            seconds = (self._now - oldest).total_seconds() if oldest is not None else 0.0
            age.add_metric([queue], max(seconds, 0.0))
        yield depth
        yield age


# ------------------------------------------------------------ several worker processes


def run_directory(data_dir: Path, pid: int) -> Path:
    """A new, empty directory for the metrics of the ``serve`` process ``pid``
    (``{data_dir}/metrics/{pid}``); those of earlier runs whose process is gone are
    removed. Several nodes may share a data directory: each has its own."""
    root = data_dir.resolve() / "metrics"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    for old in root.iterdir():
        if old.name.isdigit() and (int(old.name) == pid or not _alive(int(old.name))):
            shutil.rmtree(old, ignore_errors=True)
    directory = root / str(pid)
    directory.mkdir(mode=0o700)
    return directory


def use_directory(directory: Path) -> None:
    """Multiprocess mode from now on, in this process and the workers it forks, with
    ``directory`` (empty) for the values. Called before any family is built."""
    if any(family.name.startswith("cardvault_") for family in REGISTRY.collect()):
        raise RuntimeError("metrics were built before multiprocess mode was set up")
    os.environ[MULTIPROC_ENV] = str(directory)
    # prometheus-client chose its value class when it was imported, maybe before the
    # variable was set (the command line imports the domain): choose again.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The text exposition of every family: all workers' values (multiprocess mode) or
    this process's, then ``extra`` (collectors read for this scrape)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        forget_dead_workers(directory)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    scraped = CollectorRegistry()
    for collector in extra:
        scraped.register(collector)
    return body + generate_latest(scraped)


def forget_dead_workers(directory: str) -> None:
    """Drop the live gauges of workers that exited (the server respawns a worker that
    died): their last pool sizes and feed reads no longer describe anything."""
    dead: set[int] = set()
    for name in os.listdir(directory):
        found = _LIVE_FILE.fullmatch(name)
        if found and not _alive(int(found.group(1))):
            dead.add(int(found.group(1)))
    for pid in dead:
        mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    return True
