"""Prometheus metrics, HTTP side: every request counted, and ``GET /metrics``.

:class:`RequestMetrics` is an observer of the one HTTP layer: each answer of every
route adds to ``cardvault_http_requests_total{route, status}`` and
``cardvault_http_request_duration_seconds{route}``. ``route`` is the route's template
(``GET /cards/{card_id}``) or a name the layer gives what it does not route itself
(``dashboard``, ``unmatched``...), never the path a caller sent: hostile paths make
no new series. A request costs two memory-mapped counter writes, a few microseconds.

``/metrics`` answers only clients in ``metrics_allowed_networks`` (others get the 404
of an unknown path) with the text exposition of every family: the HTTP layer's, the
domain's (``cardvault.observability``), and the queues' depth and age, read from the
database for this scrape.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging

from prometheus_client import Counter, Histogram

from cardvault.bulk.jobs import backlog as bulk_backlog
from cardvault.observability import (
    CONTENT_TYPE,
    Backlog,
    Snapshot,
    exposition,
    record_pool,
)
from cardvault.problems import NotFound
from cardvault.runtime import Runtime
from cardvault.settings import Settings, in_networks
from cardvault.store.unavailable import log_failure
from cardvault.web.http import Call, HttpLayer, Route
from cardvault.web.reply import Reply
from cardvault.webhooks.deliveries import backlog as webhook_backlog

log = logging.getLogger(__name__)

PATH = "/metrics"
# Seconds: the token endpoint answers in about a millisecond, a bulk upload in seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@functools.cache
def _families() -> tuple[Counter, Histogram]:
    """Built on first use, in a worker (see ``cardvault.observability``)."""
    requests = Counter(
        "cardvault_http_requests",
        "HTTP requests answered, by route (its template, or dashboard, healthz, readyz, "
        "docs, unmatched) and status.",
        ["route", "status"],
    )
    duration = Histogram(
        "cardvault_http_request_duration_seconds",
        "Seconds from a request's arrival to its answer being sent, by route.",
        ["route"],
        buckets=BUCKETS,
    )
    return requests, duration


class RequestMetrics:
    """The layer's observer: one count and one duration per answer."""

    def __init__(self) -> None:
        # (route, status) -> its two children; as bounded as the labels are.
        self._children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    def __call__(self, route: str, status: int, seconds: float) -> None:
        children = self._children.get((route, status))
        if children is None:
            requests, duration = _families()
            children = requests.labels(route, str(status)), duration.labels(route)
            self._children[(route, status)] = children
        children[0].inc()
        children[1].observe(seconds)


def install(layer: HttpLayer) -> None:
    """Count every answer of ``layer``."""
    layer.observers.append(RequestMetrics())


def routes(settings: Settings) -> list[Route]:
    """``GET /metrics`` for the clients of ``metrics_allowed_networks``."""
    networks = settings.metrics_networks

    def metrics(call: Call) -> Reply:
        """The Prometheus metrics of this node (text exposition format)."""
        if not in_networks(call.source_ip, networks):
            raise NotFound("Not Found")  # as an unknown path answers
        body = exposition([Snapshot(_scrape(call.runtime), dt.datetime.now(dt.UTC))])
        headers = [(b"content-type", CONTENT_TYPE.encode()), (b"cache-control", b"no-store")]
        return Reply(200, body, headers)

    return [Route("GET", PATH, metrics, bearer=False, vault=False, document=False)]


def _scrape(runtime: Runtime) -> dict[str, Backlog]:
    """This worker's pools sampled now (the others sample theirs every second) and the
    queues as the database has them; without a database, the queues are left out."""
    for pool in runtime.db.pools():
        record_pool(pool.name, pool.size, pool.in_use, pool.waiting)
    try:
        return {**bulk_backlog(runtime.db), **webhook_backlog(runtime.db)}
    except Exception as error:
        log_failure(log, "reading the queues for /metrics failed", error)
        return {}
