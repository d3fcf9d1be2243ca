"""Feeds under concurrent, out-of-order commits: every revocation reaches every worker
of every node, and a client following ``GET /events`` sees every event exactly once.

On PostgreSQL an id is taken at insert and becomes visible at commit, so changes
commit out of id order all the time; a reader that advanced to the highest id it saw
skipped the late ones for good. Here hundreds of changes commit in random order from
many connections (written as the server writes them, and through the real API on
two nodes), and every reader must still see each of them.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jwt
import psycopg
import pytest

from tests.conftest import BACKENDS, Databases, assert_no_secrets
from tests.factories import Client, Factory
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.feeds.cluster import WorkerLine, second_node, worker_lines
from tests.functional.oauth.helpers import access_token
from tests.servers import Server, free_port

TOKENS = 120  # per test
OPEN_AT_ONCE = 20  # transactions held open together by the out-of-order writer
DEADLINE = 20.0  # seconds; a revocation takes milliseconds, but other tests share the server


@pytest.fixture(scope="module")
def nodes(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory, feed_backend: str
) -> Iterator[list[Server]]:
    """PostgreSQL: two nodes of two workers on one database. SQLite: one node of two
    workers (a SQLite database is one machine's). Shared by the module's tests, which
    each make their own clients and tokens."""
    root = tmp_path_factory.mktemp(f"feeds-{feed_backend}")
    # Nodes behind one load balancer share its public URL: tokens name it as issuer.
    first = Server(
        data_dir=root / "node-a",
        database_url=databases.url(feed_backend),
        port=free_port(),
        workers=2,
        settings={"url": "http://cardvault.test"},
    ).start()
    started = [first]
    try:
        if feed_backend == "postgresql":
            started.append(second_node(first, root / "node-b"))
        yield started
    finally:
        for node in started:
            node.stop()
        for node in started:
            assert_no_secrets(node)


@pytest.fixture(scope="module", params=BACKENDS)
def feed_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def node_factory(nodes: list[Server]) -> Iterator[Factory]:
    made = Factory(nodes[0])
    yield made
    made.close()


def _claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _tokens(server: Server, client: Client, count: int) -> list[str]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: access_token(server, client), range(count)))


@pytest.fixture
def lines(nodes: list[Server]) -> Iterator[list[WorkerLine]]:
    """A connection to each worker of each node."""
    found = [line for node in nodes for line in worker_lines(node)]
    yield found
    for line in found:
        line.close()


def _accepted_everywhere(lines: Sequence[WorkerLine], tokens: Sequence[str]) -> bool:
    return all(line.get("/whoami", token) == 200 for line in lines for token in tokens)


def _wait_refused(lines: Sequence[WorkerLine], tokens: Sequence[str]) -> None:
    """Every worker refuses every token before the deadline (asks again only about
    the tokens a worker still accepted)."""
    still = {n: list(tokens) for n in range(len(lines))}
    deadline = time.monotonic() + DEADLINE
    while True:
        still = {
            n: [t for t in left if lines[n].get("/whoami", t) != 401] for n, left in still.items()
        }
        if not any(still.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    accepted = {f"port {lines[n].server.port} pid {lines[n].pid}": len(t) for n, t in still.items()}
    assert not any(still.values()), f"revoked tokens still accepted after {DEADLINE} s: {accepted}"


def _pg_url(server: Server) -> str:
    return server.database_url.replace("postgresql+psycopg://", "postgresql://")


def commit_out_of_order(
    url: str, items: Sequence[Any], write: Callable[[psycopg.Connection, Any], None]
) -> None:
    """Write each item in its own transaction and connection, ``OPEN_AT_ONCE``
    transactions open together, committed in random order (ids are taken at insert)."""
    shuffle = random.Random(secrets.randbits(32))
    pending: list[psycopg.Connection] = []
    upcoming = iter(items)

    def open_next() -> None:
        item = next(upcoming, None)
        if item is not None:
            conn = psycopg.connect(url)
            write(conn, item)
            pending.append(conn)

    try:
        for _ in range(OPEN_AT_ONCE):
            open_next()
        while pending:
            conn = pending.pop(shuffle.randrange(len(pending)))
            conn.commit()
            conn.close()
            open_next()
    finally:  # a failure leaves no connection open for the garbage collector
        for conn in pending:
            conn.close()


def _revoke_as_the_server_does(conn: psycopg.Connection, token: str) -> None:
    """What ``oauth/revocation.py`` writes: the revoked token, the change, a NOTIFY."""
    claims = _claims(token)
    conn.execute(
        "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at)"
        " VALUES (%s, %s, to_timestamp(%s), now())",
        (claims["jti"], claims["client_id"], claims["exp"]),
    )
    conn.execute(
        "INSERT INTO changes (kind, subject, created_at) VALUES ('token', %s, now())",
        (claims["jti"],),
    )
    conn.execute("SELECT pg_notify('cardvault_changes', '')")


@pytest.mark.parametrize("feed_backend", ["postgresql"], indirect=True)
def test_revocations_committed_out_of_order_reach_every_worker_of_every_node(
    nodes: list[Server], node_factory: Factory, lines: list[WorkerLine]
) -> None:
    client = node_factory.client(org_id=nodes[0].init["organization_id"])
    control, *tokens = _tokens(nodes[0], client, TOKENS + 1)
    assert _accepted_everywhere(lines, [control, *tokens[:10]])

    commit_out_of_order(_pg_url(nodes[0]), tokens, _revoke_as_the_server_does)

    _wait_refused(lines, tokens)
    assert _accepted_everywhere(lines, [control])  # refused for being revoked, not else


def test_concurrent_rfc7009_revocations_through_every_node_reach_every_worker(
    nodes: list[Server], node_factory: Factory, lines: list[WorkerLine]
) -> None:
    client = node_factory.client(org_id=nodes[0].init["organization_id"])
    control, *tokens = _tokens(nodes[0], client, TOKENS + 1)
    assert _accepted_everywhere(lines, [control, *tokens[:10]])

    def revoke(n: int) -> int:
        node = nodes[n % len(nodes)]
        return httpx.post(
            f"{node.issuer}/protocol/openid-connect/revoke",
            data={"token": tokens[n]},
            auth=(client.client_id, client.client_secret),
            timeout=30,
        ).status_code

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(revoke, range(len(tokens)))) == {200}

    _wait_refused(lines, tokens)
    assert _accepted_everywhere(lines, [control])  # refused for being revoked, not else


class Poller:
    """A client following ``GET /events`` with ``next_after``, through every node in
    turn, from a thread, while events are being written."""

    def __init__(self, nodes: Sequence[Server], token: str) -> None:
        self.nodes, self.token = nodes, token
        self.seen: list[str] = []
        self.after: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def poll(self, n: int) -> int:
        params = {"limit": "50"} if self.after is None else {"limit": "50", "after": self.after}
        response = httpx.get(
            f"{self.nodes[n % len(self.nodes)].url}/events",
            params=params,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        page = response.json()
        self.seen.extend(event["id"] for event in page["data"])
        self.after = page["next_after"] or self.after
        return len(page["data"])

    def _run(self) -> None:
        n = 0
        try:
            while not self._stop.is_set():
                n += 1
                if not self.poll(n):
                    time.sleep(0.005)
        except BaseException as failure:  # reported by finish()
            self._error = failure

    def finish(self, expected: set[str]) -> None:
        """Stop the thread, then poll until every expected event was seen (or the
        deadline passed); each must have been seen exactly once."""
        self.__exit__()
        assert self._error is None, self._error
        deadline = time.monotonic() + DEADLINE
        n = 0
        while set(self.seen) < expected and time.monotonic() < deadline:
            n += 1
            if not self.poll(n):
                time.sleep(0.05)
        twice = [event for event, count in Counter(self.seen).items() if count > 1]
        assert not twice, f"{len(twice)} events listed more than once"
        missed = expected - set(self.seen)
        assert not missed, f"{len(missed)} of {len(expected)} events never listed"
        assert set(self.seen) == expected


def _events_reader(server: Server, factory: Factory) -> tuple[Client, str]:
    client = factory.client(
        org_id=server.init["organization_id"], scopes=["cards:write", "webhooks:read"]
    )
    return client, access_token(server, client)


@pytest.mark.parametrize("feed_backend", ["postgresql"], indirect=True)
def test_events_committed_out_of_order_are_each_listed_once(
    nodes: list[Server], node_factory: Factory
) -> None:
    client, token = _events_reader(nodes[0], node_factory)
    vault_id = client.vault_ids[0]
    ids = [f"evt_{secrets.token_hex(12)}" for _ in range(300)]

    def write(conn: psycopg.Connection, event_id: str) -> None:
        payload = json.dumps({"id": event_id, "event": "card.updated", "vault_id": vault_id})
        conn.execute(
            "INSERT INTO events (id, event, org_id, vault_id, subject, occurred_at, payload,"
            " dispatched) VALUES (%s, 'card.updated', %s, %s, 'card_x', now(), %s, true)",
            (event_id, client.org_id, vault_id, payload),
        )

    with Poller(nodes, token) as poller:
        commit_out_of_order(_pg_url(nodes[0]), ids, write)
        poller.finish(set(ids))


def test_events_of_concurrent_requests_through_every_node_are_each_listed_once(
    nodes: list[Server], node_factory: Factory
) -> None:
    client, token = _events_reader(nodes[0], node_factory)
    headers = {"Authorization": f"Bearer {token}"}
    cards = [
        httpx.post(
            f"{nodes[0].url}/cards",
            json={"pan": random_pan(), "exp_month": 7, "exp_year": NEXT_YEAR},
            headers=headers,
        ).json()["id"]
        for _ in range(40)
    ]

    def patch(n: int) -> int:
        """Each card's expiry changes three times (months 1, 2, 3): one event each."""
        body = {"exp_month": n // len(cards) + 1, "exp_year": NEXT_YEAR}
        return httpx.patch(
            f"{nodes[n % len(nodes)].url}/cards/{cards[n % len(cards)]}",
            json=body,
            headers=headers,
            timeout=30,
        ).status_code

    with Poller(nodes, token) as poller, ThreadPoolExecutor(12) as pool:
        assert set(pool.map(patch, range(3 * len(cards)))) == {200}
        expected = _event_ids(node_factory, client.vault_ids[0])
        assert len(expected) == 3 * len(cards)
        poller.finish(expected)


def _event_ids(factory: Factory, vault_id: str) -> set[str]:
    from sqlalchemy import select

    from cardvault.store.event_models import Event

    with factory.db.sessions() as session:
        return set(session.scalars(select(Event.id).where(Event.vault_id == vault_id)))


@pytest.mark.parametrize(
    ("after", "status", "code"),
    [
        ("ec_AAAAAAAAAAAAAAAAAAAAAA", 200, None),
        ("ec_AAAAAAAAAAAAAAAAAAAAAB", 400, "invalid-cursor"),  # not our spelling
        ("ec_gAAAAAAAAAAAAAAAAAAAAA", 400, "invalid-cursor"),  # beyond a BIGINT
        ("ec_AAAA", 400, "invalid-cursor"),
        ("ec_" + "A" * 21 + "!", 400, "invalid-cursor"),
        ("not a cursor", 400, "invalid-cursor"),
        ("x" * 500, 400, "invalid-cursor"),
        ("x" * 5000, 414, "uri-too-long"),  # the input layer bounds every query
        ("evt_" + "A" * 40, 400, "invalid-cursor"),
        ("evt_nope", 422, "invalid-format"),  # well formed, no such event
    ],
)
def test_a_malformed_after_is_refused(
    server: Server, factory: Factory, after: str, status: int, code: str | None
) -> None:
    _client, token = _events_reader(server, factory)
    response = httpx.get(
        f"{server.url}/events",
        params={"after": after},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["errors"][0]["code"] == code
    else:
        assert response.json() == {"data": [], "next_after": None}
