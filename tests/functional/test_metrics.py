"""``GET /metrics``: after real traffic on a server with two workers, every family is
there with the values of what was sent, added up over the workers; labels never carry
a path a caller made up; only the allowed networks may read it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cardvault.accounts.scopes import ALL_SCOPES
from cardvault.events import EVENT_TYPES
from tests.conftest import BACKENDS, MakeServer
from tests.factories import Client, Factory
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.oauth.helpers import access_token, token_request
from tests.servers import Server, free_port

WORKERS = 2
WRITERS, READERS = 3, 2  # PostgreSQL connections per worker
TOKENS = 5
CARDS = 4
HOSTILE = ["/<script>alert(1)</script>", "/metrics-evil-path-7f3a", "/a/%2e%2e/etc/passwd"]
MARKS = ("alert(1)", "evil-path", "passwd")  # of the hostile paths
DECLINED_PAN = "4000000000000002"  # the Visa simulator declines it
TOKEN_ROUTE = "POST /auth/realms/{realm}/protocol/openid-connect/token"
SETTINGS = {
    "throttle_client_ip_failures": 1,  # the second failure of a pair on a worker: 429
    "webhook_allowed_networks": "127.0.0.0/8",
    "webhook_backoff_base": 0.2,
    "webhook_backoff_max": 1,
    "webhook_poll_interval": 0.1,
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: Server) -> tuple[httpx.Response, Samples]:
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def named(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for sample_name, labels in samples if sample_name == name]


def eventually(server: Server, check: Callable[[Samples], bool], timeout: float = 15.0) -> Samples:
    """The first scrape for which ``check`` holds (polled with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        _, samples = scrape(server)
        if check(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError("the metrics did not get there in time")
        time.sleep(0.1)


def traffic(server: Server, factory: Factory) -> dict[str, int]:
    """Tokens (issued, refused, throttled), cards, a provider's refusal, a revoked token,
    a failing webhook, hostile paths and a dashboard page."""
    client = factory.client(scopes=list(ALL_SCOPES))
    tokens = [access_token(server, client) for _ in range(TOKENS)]
    headers = {"Authorization": f"Bearer {tokens[0]}"}
    refused = token_request(server, client, scope="no-such-scope")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"
    revoke = httpx.post(
        f"{server.issuer}/protocol/openid-connect/revoke",
        data={
            "token": tokens[-1],
            "client_id": client.client_id,
            "client_secret": client.client_secret,
        },
    )
    assert revoke.status_code == 200
    unknown = Client("no-such-client", "cvs_wrong", client.org_id, client.vault_ids, "")
    statuses = [token_request(server, unknown).status_code for _ in range(2 * WORKERS + 1)]
    assert statuses[0] == 401 and 429 in statuses, statuses  # refused, then throttled

    def post(path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=10)

    for _ in range(CARDS):
        card = {"pan": random_pan(), "exp_month": 7, "exp_year": NEXT_YEAR}
        assert post("/cards", card).status_code == 201
    closed = f"http://127.0.0.1:{free_port()}/closed"  # nobody listens: every attempt fails
    hook = post("/webhooks", {"url": closed, "events": EVENT_TYPES})
    assert hook.status_code == 201, hook.text
    declined = post("/cards", {"pan": DECLINED_PAN, "exp_month": 7, "exp_year": NEXT_YEAR})
    answer = post("/network-tokens", {"pan_alias": declined.json()["pan_alias"]})
    assert answer.status_code == 404 and answer.json()["errors"][0]["code"] == "declined"
    good = post("/cards", {"pan": random_pan(), "exp_month": 7, "exp_year": NEXT_YEAR})
    assert post("/network-tokens", {"pan_alias": good.json()["pan_alias"]}).status_code == 201
    for path in HOSTILE:
        assert httpx.get(server.url + path).is_client_error
    assert httpx.get(f"{server.url}/dashboard/sign-in").status_code == 200
    return {"invalid_client": statuses.count(401), "throttled": statuses.count(429)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_family_after_traffic_on_two_workers(make_server: MakeServer, backend: str) -> None:
    pools = {"db_pool_size": WRITERS, "db_readers": READERS}
    server = make_server(backend, workers=WORKERS, **SETTINGS, **pools)
    factory = Factory(server)
    try:
        sent = traffic(server, factory)
    finally:
        factory.close()

    # Each worker applies the revocation once: two only if both workers are added up.
    samples = eventually(
        server,
        lambda s: (
            value(s, "cardvault_change_feed_delay_seconds_count", kind="token") >= WORKERS
            and value(s, "cardvault_webhook_delivery_failures_total", reason="connection") >= 1
        ),
    )
    response, _ = scrape(server)
    assert response.headers["content-type"].startswith("text/plain; version=")

    # Requests by route and status; latency by route.
    requests = "cardvault_http_requests_total"
    assert value(samples, requests, route=TOKEN_ROUTE, status="200") >= TOKENS
    assert value(samples, requests, route="POST /cards", status="201") >= CARDS
    unmatched = sum(
        v
        for (name, labels), v in samples.items()
        if name == requests and ("route", "unmatched") in labels
    )
    assert unmatched >= len(HOSTILE)
    assert value(samples, requests, route="dashboard", status="200") >= 1
    duration = "cardvault_http_request_duration_seconds"
    assert value(samples, f"{duration}_count", route="POST /cards") >= CARDS
    assert value(samples, f"{duration}_bucket", route="POST /cards", le="+Inf") >= CARDS
    assert 0 < value(samples, f"{duration}_sum", route="POST /cards") < 60
    routes = {labels["route"] for labels in named(samples, requests)}
    assert routes <= _known_routes(), routes - _known_routes()  # no path a caller made up
    assert not any(mark in response.text for mark in MARKS)

    # Tokens issued and refused, throttled requests.
    issued = value(samples, "cardvault_tokens_issued_total", grant_type="client_credentials")
    assert issued >= TOKENS
    refused = "cardvault_tokens_refused_total"
    assert value(samples, refused, reason="invalid_scope") >= 1
    assert value(samples, refused, reason="invalid_client") >= sent["invalid_client"] >= 1
    assert value(samples, refused, reason="throttled") >= sent["throttled"] >= 1
    throttled = value(samples, "cardvault_throttled_requests_total", limiter="client_auth")
    assert throttled >= sent["throttled"]

    # The change feed: read moments ago by every worker; the revocation's delay.
    last_read = value(samples, "cardvault_change_feed_last_read_timestamp_seconds")
    assert time.time() - 10 < last_read <= time.time() + 1
    delay = value(samples, "cardvault_change_feed_delay_seconds_sum", kind="token")
    assert 0 <= delay < 10 * WORKERS

    # Webhooks, providers, queues.
    assert "cardvault_webhook_deliveries_given_up_total" in {name for name, _ in samples}
    errors = "cardvault_provider_errors_total"
    labels = {"network": "visa", "operation": "provision", "code": "declined"}
    assert value(samples, errors, **labels) >= 1
    queues = {labels["queue"] for labels in named(samples, "cardvault_queue_depth")}
    assert queues == {"bulk_jobs", "bulk_rows", "webhook_events", "webhook_deliveries"}
    for queue in queues:
        assert value(samples, "cardvault_queue_oldest_age_seconds", queue=queue) >= 0
    # The failing endpoint's delivery waits for its retry: at least one, since a while.
    assert value(samples, "cardvault_queue_depth", queue="webhook_deliveries") >= 1
    assert value(samples, "cardvault_queue_oldest_age_seconds", queue="webhook_deliveries") > 0

    if backend == "postgresql":  # every worker's pools, added up
        found = eventually(
            server,
            lambda s: (
                value(s, "cardvault_db_pool_size", pool="writers") == WRITERS * WORKERS
                and value(s, "cardvault_db_pool_size", pool="readers") == READERS * WORKERS
            ),
        )
        for pool, size in (("writers", WRITERS * WORKERS), ("readers", READERS * WORKERS)):
            assert 0 <= value(found, "cardvault_db_pool_in_use", pool=pool) <= size
            assert value(found, "cardvault_db_pool_waiting", pool=pool) >= 0


def _known_routes() -> set[str]:
    from cardvault.app import route_table
    from cardvault.settings import Settings

    table = {route.name for route in route_table(Settings(), lambda: None)}
    return table | {"dashboard", "docs", "healthz", "readyz", "unmatched"}


def test_only_allowed_networks_read_the_metrics(make_server: MakeServer) -> None:
    """A client outside ``metrics_allowed_networks`` gets what an unknown path gets."""
    server = make_server("sqlite", metrics_allowed_networks="10.0.0.0/8,fd00::/8")
    unknown = httpx.get(f"{server.url}/no-such-path")
    refused = httpx.get(f"{server.url}/metrics")
    assert (refused.status_code, refused.content) == (unknown.status_code, unknown.content)
    assert refused.status_code == 404
    assert refused.headers["content-type"] == unknown.headers["content-type"]
