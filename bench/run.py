"""Token endpoint and resource-server figures for cardvault, measured with wrk.

Run with ``make bench``. Each backend gets a fresh installation: SQLite in a temporary
directory (never ./.cardvault); PostgreSQL in a new database on BENCH_PG (trust
authentication), dropped afterwards. The same runs go against each: ``cardvault
serve`` with 1 and 2 workers, the vault's endpoints with 2 workers. A table puts the
backends side by side, with PostgreSQL's throughput as a share of SQLite's. wrk runs
on the same machine as the server, so both compete for the same cores (and with
PostgreSQL's server, when it is measured).

Environment:
    BENCH_DURATION  seconds per measured run (default 10)
    BENCH_BACKENDS  comma-separated: sqlite, postgresql (default both)
    BENCH_SQLITE_SYNCHRONOUS  normal: SQLite's faster, less durable setting (default full)
    BENCH_PG        PostgreSQL server's URL to create the database with
                    (default postgresql://postgres@127.0.0.1:5432/postgres)
    BENCH_KEEP      1 keeps the temporary directory (keys, server logs) and the database
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import create_engine, text

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_FILE = BENCH_DIR / "results" / "latest.md"
TOKEN_LUA = BENCH_DIR / "token.lua"
BEARER_LUA = BENCH_DIR / "bearer.lua"
CARDS_LUA = BENCH_DIR / "cards.lua"

REALM_PATH = "/auth/realms/cardvault/protocol/openid-connect"
TOKEN_PATH = f"{REALM_PATH}/token"
CERTS_PATH = f"{REALM_PATH}/certs"
WHOAMI_PATH = "/whoami"

WORKERS = (1, 2)
TOKEN_CONNECTIONS = (16, 64)
RESOURCE_WORKERS = 2
RESOURCE_CONNECTIONS = 64
VAULT_CONNECTIONS = (16, 64)  # a moderate load and saturation
NT_READ = "GET /network-tokens/{pan_alias}"
NT_WRITE = "POST /network-tokens"
WRK_THREADS = 2
WARMUP_SECONDS = 2
DEFAULT_DURATION = 10
TOKEN_LIFETIME = 300  # seconds; the CLI account's access tokens

GOAL_WORKERS = 2
GOAL_CONNECTIONS = 64
GOAL_RPS = 6000.0
GOAL_P99_MS = 30.0
# The vault's goals (issue 4): 2 workers, SQLite; throughput at saturation (64 connections),
# where one is set, and p99 for each endpoint the issue names.
VAULT_GOALS: tuple[tuple[str, float | None], ...] = (
    (NT_READ, 5000.0),
    ("POST /cards", 1500.0),
    (NT_WRITE, None),
)
VAULT_P99_MS = 50.0

BACKENDS = ("sqlite", "postgresql")
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_URL = "http://cardvault.bench"  # the public URL (token issuer) of every bench server
# Side by side: the endpoints at 2 workers and 64 connections, and the share of
# SQLite's throughput PostgreSQL must reach on the token endpoint and the authenticated
# GETs.
COMPARED = ("token", NT_READ, "GET /cards/{id}", "POST /cards")
PG_SHARE_GOAL = 0.70
PG_SHARE_ENDPOINTS = ("token", NT_READ, "GET /cards/{id}")

ERROR_FIELDS = ("errors_status", "errors_connect", "errors_read", "errors_write", "errors_timeout")


class BenchError(Exception):
    """The benchmark cannot go on (server not ready, a check request failed, ...)."""


# --------------------------------------------------------------------------- setup


def say(message: str) -> None:
    """Progress goes to stderr; the report goes to stdout."""
    print(message, file=sys.stderr, flush=True)


def bench_duration() -> int:
    raw = os.environ.get("BENCH_DURATION", str(DEFAULT_DURATION))
    try:
        seconds = int(raw)
    except ValueError:
        raise BenchError(f"BENCH_DURATION must be a whole number of seconds, not {raw!r}") from None
    if seconds < 1:
        raise BenchError("BENCH_DURATION must be at least 1")
    return seconds


def bench_backends() -> tuple[str, ...]:
    raw = os.environ.get("BENCH_BACKENDS", ",".join(BACKENDS))
    chosen = tuple(name.strip().lower() for name in raw.split(",") if name.strip())
    unknown = [name for name in chosen if name not in BACKENDS]
    if unknown or not chosen:
        raise BenchError(f"BENCH_BACKENDS: choose among {', '.join(BACKENDS)}, not {raw!r}")
    return tuple(dict.fromkeys(chosen))  # in the order given, once each


def cardvault_binary() -> str:
    candidate = Path(sys.executable).with_name("cardvault")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("cardvault")
    if found is None:
        raise BenchError("cardvault executable not found; run `make install` first")
    return found


def server_env(data_dir: Path, database_url: str = "") -> dict[str, str]:
    """The caller's environment without CARDVAULT_* settings, using ``data_dir`` and
    ``database_url`` (empty: SQLite in ``data_dir``). Durable settings: the defaults,
    unless ``BENCH_SQLITE_SYNCHRONOUS=normal`` asks for SQLite's faster setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDVAULT_")}
    env["CARDVAULT_DATA_DIR"] = str(data_dir)
    # One public URL for the servers of an installation, whatever port each listens on:
    # the installation holds every node to the issuer it recorded first.
    env["CARDVAULT_URL"] = BENCH_URL
    synchronous = os.environ.get("BENCH_SQLITE_SYNCHRONOUS")
    if synchronous:
        env["CARDVAULT_SQLITE_SYNCHRONOUS"] = synchronous
    if database_url:
        env["CARDVAULT_DATABASE_URL"] = database_url
    return env


@contextmanager
def installation_database(backend: str, data_dir: Path) -> Iterator[str]:
    """The database URL of a fresh installation on ``backend`` (SQLite: a file in
    ``data_dir``; PostgreSQL: a new database, dropped afterwards unless BENCH_KEEP=1)."""
    if backend == "sqlite":
        yield f"sqlite:///{data_dir / 'cardvault.db'}"
        return
    admin = os.environ.get("BENCH_PG", DEFAULT_PG)
    name = f"cardvault_bench_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as error:
        raise BenchError(f"cannot create a PostgreSQL database on {admin}: {error}") from None
    try:
        yield admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    finally:
        if os.environ.get("BENCH_KEEP") == "1":
            say(f"kept PostgreSQL database {name}")
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def init_installation(cardvault: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [cardvault, "init", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise BenchError(f"cardvault init failed ({done.returncode}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- machine


def cpu_model() -> str:
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
    lines = (done.stdout or done.stderr).splitlines()
    return lines[0].split("Copyright")[0].strip() if lines else "unknown"


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_note(sample: float = 1.0) -> str:
    """How busy the machine is just before we start: other work skews every figure."""
    busy0, total0 = cpu_times()
    time.sleep(sample)
    busy1, total1 = cpu_times()
    percent = 100.0 * (busy1 - busy0) / max(total1 - total0, 1)
    note = f"- CPU busy before the run: {percent:.0f}% ({sample:.0f} s sample)"
    if percent > 20:
        note += " — **something else is running; figures may be low**"
    return note


def machine_header(cores: int, duration: int, backends: tuple[str, ...] = ("sqlite",)) -> list[str]:
    python = sys.version.split()[0]
    where = {
        "sqlite": "SQLite in a fresh temporary directory",
        "postgresql": "PostgreSQL in a fresh database on the same machine",
    }
    return [
        "# cardvault benchmark",
        "",
        f"- machine: {cores} CPU(s) (nproc), {cpu_model()}",
        f"- Python {python}, {wrk_version()}",
        f"- wrk runs on the same {cores}-core machine as the server "
        f"(wrk -t{WRK_THREADS}); both compete for the same CPUs.",
        f"- {'; '.join(where[b] for b in backends)}; durable settings (the defaults); "
        f"{duration} s per run, {WARMUP_SECONDS} s warm-up per server.",
        busy_note(),
    ]


# --------------------------------------------------------------------------- server


class Server:
    """``cardvault serve`` in its own process group, logging to a file."""

    def __init__(self, cardvault: str, env: dict[str, str], workers: int, log_path: Path):
        self.cardvault = cardvault
        self.env = env
        self.workers = workers
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        workers, port = str(self.workers), str(self.port)
        command = [self.cardvault, "serve", "--workers", workers, "--port", port]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise BenchError(f"server exited early; see {self.log_path}")
            with suppress(httpx.HTTPError):
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise BenchError(f"server not ready after {timeout:.0f} s; see {self.log_path}")

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to the whole group, then SIGKILL to whatever is left."""
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            say(f"  server (workers={self.workers}) ignored SIGTERM for {grace:.0f} s; killing")
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@contextmanager
def running_server(
    cardvault: str, env: dict[str, str], workers: int, data_dir: Path
) -> Iterator[Server]:
    server = Server(cardvault, env, workers, data_dir / f"server-w{workers}.log")
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- checks


def fetch_token(base_url: str, creds: dict[str, str]) -> str:
    """One real token request; it must succeed so wrk never measures an error path."""
    form = {
        "grant_type": "client_credentials",
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
    }
    response = httpx.post(base_url + TOKEN_PATH, data=form, timeout=10)
    body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
    if response.status_code != 200 or not body.get("access_token"):
        raise BenchError(f"token check failed: {response.status_code} {response.text[:300]}")
    return str(body["access_token"])


def check_get(url: str, headers: dict[str, str], expect_key: str) -> None:
    response = httpx.get(url, headers=headers, timeout=10)
    if response.status_code != 200 or expect_key not in response.json():
        raise BenchError(f"check of {url} failed: {response.status_code} {response.text[:300]}")


# --------------------------------------------------------------------------- wrk


@dataclass
class Result:
    endpoint: str
    workers: int
    connections: int
    fields: dict[str, float]
    line: str
    backend: str = "sqlite"

    @property
    def requests(self) -> int:
        return int(self.fields["requests"])

    @property
    def errors(self) -> int:
        return int(sum(self.fields.get(name, 0) for name in ERROR_FIELDS))


def parse_result_line(output: str) -> tuple[str, dict[str, float]]:
    match = re.search(r"^RESULT (.+)$", output, re.MULTILINE)
    if match is None:
        raise BenchError(f"wrk printed no RESULT line:\n{output}")
    fields = {}
    for pair in match.group(1).split():
        key, _, value = pair.partition("=")
        fields[key] = float(value)
    return match.group(0), fields


def run_wrk(
    url: str, script: Path, connections: int, seconds: int, env: dict[str, str]
) -> tuple[str, dict[str, float]]:
    command = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=seconds + 60
    )
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return parse_result_line(done.stdout)


def token_env(creds: dict[str, str]) -> dict[str, str]:
    return {"CV_CLIENT_ID": creds["client_id"], "CV_CLIENT_SECRET": creds["client_secret"]}


# --------------------------------------------------------------------------- audit


class TokenLedger:
    """How many token requests we know were sent (wrk's completed count + checks)."""

    def __init__(self) -> None:
        self.sent = 0

    def add(self, count: int) -> None:
        self.sent += count


def count_issued_tokens(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            issued = conn.scalar(
                text(
                    "SELECT count(*) FROM audit_events "
                    "WHERE action = 'token.issue' AND outcome = 'success'"
                )
            )
    finally:
        engine.dispose()
    return int(issued or 0)


def audit_line(label: str, database_url: str, ledger: TokenLedger) -> str:
    rows = count_issued_tokens(database_url)
    return (
        f"- audit ({label}): {rows} `token.issue`/success rows; "
        f"{ledger.sent} token requests reported by wrk + checks "
        f"(difference {rows - ledger.sent:+d}; requests in flight when wrk stops are "
        "served but not counted by wrk)"
    )


# --------------------------------------------------------------------------- benchmark


@dataclass
class Context:
    cardvault: str
    env: dict[str, str]
    data_dir: Path
    creds: dict[str, str]
    duration: int
    ledger: TokenLedger
    init: dict[str, Any]
    backend: str = "sqlite"
    database_url: str = ""

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'cardvault.db'}"


def measure_token(ctx: Context, server: Server, connections: int) -> Result:
    fetch_token(server.url, ctx.creds)
    ctx.ledger.add(1)
    say(f"  token      workers={server.workers} c={connections} ({ctx.duration} s)")
    line, fields = run_wrk(
        server.url + TOKEN_PATH, TOKEN_LUA, connections, ctx.duration, token_env(ctx.creds)
    )
    ctx.ledger.add(int(fields["requests"]))
    return Result("token", server.workers, connections, fields, line, ctx.backend)


def warm_up(ctx: Context, server: Server) -> None:
    fetch_token(server.url, ctx.creds)
    ctx.ledger.add(1)
    say(f"  warm-up    workers={server.workers} ({WARMUP_SECONDS} s)")
    _, fields = run_wrk(
        server.url + TOKEN_PATH,
        TOKEN_LUA,
        max(TOKEN_CONNECTIONS),
        WARMUP_SECONDS,
        token_env(ctx.creds),
    )
    ctx.ledger.add(int(fields["requests"]))


def measure_jwks(ctx: Context, server: Server) -> Result:
    check_get(server.url + CERTS_PATH, {}, "keys")
    say(f"  jwks       workers={server.workers} c={RESOURCE_CONNECTIONS} ({ctx.duration} s)")
    line, fields = run_wrk(
        server.url + CERTS_PATH, BEARER_LUA, RESOURCE_CONNECTIONS, ctx.duration, {"CV_BEARER": ""}
    )
    return Result("jwks", server.workers, RESOURCE_CONNECTIONS, fields, line, ctx.backend)


def measure_whoami(ctx: Context, server: Server) -> Result:
    token = fetch_token(server.url, ctx.creds)  # fresh: it lives TOKEN_LIFETIME seconds
    ctx.ledger.add(1)
    check_get(server.url + WHOAMI_PATH, {"Authorization": f"Bearer {token}"}, "client_id")
    say(f"  whoami     workers={server.workers} c={RESOURCE_CONNECTIONS} ({ctx.duration} s)")
    line, fields = run_wrk(
        server.url + WHOAMI_PATH,
        BEARER_LUA,
        RESOURCE_CONNECTIONS,
        ctx.duration,
        {"CV_BEARER": token},
    )
    return Result("whoami", server.workers, RESOURCE_CONNECTIONS, fields, line, ctx.backend)


def vault_account(ctx: Context, server: Server) -> dict[str, str]:
    """A service account with card scopes in the installation's first vault."""
    admin = fetch_token(server.url, ctx.creds)
    ctx.ledger.add(1)
    response = httpx.post(
        f"{server.url}/organizations/{ctx.init['organization_id']}/service-accounts",
        json={
            "name": "bench",
            "scopes": ["cards:write", "network-tokens:write"],
            "vault_ids": [ctx.init["vault_id"]],
        },
        headers={"Authorization": f"Bearer {admin}"},
        timeout=10,
    )
    if response.status_code != 201:
        raise BenchError(f"creating the bench account failed: {response.text[:300]}")
    body = response.json()
    return {"client_id": body["client_id"], "client_secret": body["client_secret"]}


def measure(
    ctx: Context,
    server: Server,
    endpoint: str,
    path: str,
    script: Path,
    connections: int,
    token: str,
) -> Result:
    say(f"  {endpoint} workers={server.workers} c={connections} ({ctx.duration} s)")
    line, fields = run_wrk(
        server.url + path, script, connections, ctx.duration, {"CV_BEARER": token}
    )
    return Result(endpoint, server.workers, connections, fields, line, ctx.backend)


def measure_cards(ctx: Context, server: Server) -> list[Result]:
    """POST /cards (new random PANs) and GET /cards/{id}."""
    token = fetch_token(server.url, vault_account(ctx, server))
    ctx.ledger.add(1)
    headers = {"Authorization": f"Bearer {token}"}
    year = time.gmtime().tm_year + 3
    card = httpx.post(
        f"{server.url}/cards",
        json={"pan": "4242424242424242", "exp_month": 12, "exp_year": year},
        headers=headers,
        timeout=10,
    )
    if card.status_code not in (200, 201):
        raise BenchError(f"card check failed: {card.status_code} {card.text[:300]}")
    path = f"/cards/{card.json()['id']}"
    check_get(server.url + path, headers, "pan_alias")
    results = []
    for connections in VAULT_CONNECTIONS:
        results.append(measure(ctx, server, "POST /cards", "/cards", CARDS_LUA, connections, token))
    for connections in VAULT_CONNECTIONS:
        results.append(
            measure(ctx, server, "GET /cards/{id}", path, BEARER_LUA, connections, token)
        )
    results.extend(measure_network_tokens(ctx, server, token, card.json()["pan_alias"]))
    return results


def measure_network_tokens(
    ctx: Context, server: Server, token: str, pan_alias: str
) -> list[Result]:
    """POST /network-tokens (enrol + provision a new random PAN) and GET by pan_alias."""
    headers = {"Authorization": f"Bearer {token}"}
    year = time.gmtime().tm_year + 3
    provisioned = httpx.post(
        f"{server.url}/network-tokens",
        json={"pan_alias": pan_alias, "exp_month": 12, "exp_year": year},
        headers=headers,
        timeout=10,
    )
    if provisioned.status_code not in (200, 201) or provisioned.json()["state"] != "ACTIVE":
        raise BenchError(f"token check failed: {provisioned.status_code} {provisioned.text[:300]}")
    path = f"/network-tokens/{pan_alias}"
    check_get(server.url + path, headers, "network_token_last4")
    results = [
        measure(ctx, server, NT_WRITE, "/network-tokens", CARDS_LUA, connections, token)
        for connections in VAULT_CONNECTIONS
    ]
    for connections in VAULT_CONNECTIONS:
        results.append(measure(ctx, server, NT_READ, path, BEARER_LUA, connections, token))
    return results


def bench_server(ctx: Context, workers: int, results: list[Result], notes: list[str]) -> None:
    say(f"{ctx.backend}: server with {workers} worker(s)")
    with running_server(ctx.cardvault, ctx.env, workers, ctx.data_dir) as server:
        warm_up(ctx, server)
        for connections in TOKEN_CONNECTIONS:
            results.append(measure_token(ctx, server, connections))
        time.sleep(1.0)  # audit records are flushed every 50 ms
        label = f"{ctx.backend}, live, after workers={workers}"
        notes.append(audit_line(label, ctx.db_url, ctx.ledger))
        if workers == RESOURCE_WORKERS:
            results.append(measure_jwks(ctx, server))
            results.append(measure_whoami(ctx, server))
            results.extend(measure_cards(ctx, server))
        if not server.alive():
            notes.append(
                f"- {ctx.backend}: server with {workers} worker(s) was no longer running at the end"
            )


# --------------------------------------------------------------------------- report


def results_table(results: list[Result]) -> list[str]:
    lines = [
        "| backend | endpoint | workers | connections | req/s | p50 ms | p99 ms | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        f = r.fields
        lines.append(
            f"| {r.backend} | {r.endpoint} | {r.workers} | {r.connections} | {f['rps']:,.0f} "
            f"| {f['p50_ms']:.2f} | {f['p99_ms']:.2f} | {r.errors} |"
        )
    return lines


def side_by_side(results: list[Result]) -> list[str]:
    """SQLite and PostgreSQL at 2 workers and 64 connections, and PostgreSQL's
    throughput as a share of SQLite's."""
    lines = [
        f"## SQLite and PostgreSQL ({RESOURCE_WORKERS} workers, "
        f"{RESOURCE_CONNECTIONS} connections)",
        "",
        "| endpoint | SQLite req/s | SQLite p99 ms | PostgreSQL req/s | PostgreSQL p99 ms "
        "| PostgreSQL/SQLite |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for endpoint in COMPARED:
        lite = find(results, endpoint, RESOURCE_CONNECTIONS, "sqlite", RESOURCE_WORKERS)
        pg = find(results, endpoint, RESOURCE_CONNECTIONS, "postgresql", RESOURCE_WORKERS)
        ratio = share(lite, pg)
        lines.append(
            f"| {endpoint} | {_rps(lite)} | {_p99(lite)} | {_rps(pg)} | {_p99(pg)} "
            f"| {'-' if ratio is None else f'{ratio:.0%}'} |"
        )
    return lines


def share(lite: Result | None, pg: Result | None) -> float | None:
    if lite is None or pg is None or not lite.fields["rps"]:
        return None
    return pg.fields["rps"] / lite.fields["rps"]


def _rps(result: Result | None) -> str:
    return "-" if result is None else f"{result.fields['rps']:,.0f}"


def _p99(result: Result | None) -> str:
    return "-" if result is None else f"{result.fields['p99_ms']:.2f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def find(
    results: list[Result],
    endpoint: str,
    connections: int,
    backend: str = "sqlite",
    workers: int | None = None,
) -> Result | None:
    return next(
        (
            r
            for r in results
            if (r.endpoint, r.connections, r.backend) == (endpoint, connections, backend)
            and (workers is None or r.workers == workers)
        ),
        None,
    )


def goal_lines(results: list[Result]) -> list[str]:
    lines = ["## Goals", "", *token_goals(results), "", *vault_goals(results)]
    if any(r.backend == "postgresql" for r in results):
        lines.extend(["", *share_goals(results)])
    return lines


def share_goals(results: list[Result]) -> list[str]:
    lines = [
        f"PostgreSQL ≥ {PG_SHARE_GOAL:.0%} of SQLite's throughput ({RESOURCE_WORKERS} workers, "
        f"{RESOURCE_CONNECTIONS} connections):",
        "",
    ]
    for endpoint in PG_SHARE_ENDPOINTS:
        ratio = share(
            find(results, endpoint, RESOURCE_CONNECTIONS, "sqlite", RESOURCE_WORKERS),
            find(results, endpoint, RESOURCE_CONNECTIONS, "postgresql", RESOURCE_WORKERS),
        )
        if ratio is None:
            lines.append(f"- {endpoint}: not measured on both: MISS")
        else:
            lines.append(f"- {endpoint}: {ratio:.0%} → {verdict(ratio >= PG_SHARE_GOAL)}")
    return lines


def token_goals(results: list[Result]) -> list[str]:
    row = find(results, "token", GOAL_CONNECTIONS, "sqlite", GOAL_WORKERS)
    head = [f"token endpoint, {GOAL_WORKERS} workers, {GOAL_CONNECTIONS} connections, SQLite:", ""]
    if row is None:
        return [*head, "- not measured: MISS"]
    rps, p99 = row.fields["rps"], row.fields["p99_ms"]
    return [
        *head,
        f"- throughput ≥ {GOAL_RPS:,.0f} req/s: {rps:,.0f} → {verdict(rps >= GOAL_RPS)}",
        f"- p99 < {GOAL_P99_MS:.0f} ms: {p99:.2f} ms → {verdict(p99 < GOAL_P99_MS)}",
        f"- 0 errors: {row.errors} → {verdict(row.errors == 0)}",
    ]


def vault_goals(results: list[Result]) -> list[str]:
    """Throughput at saturation; p99 at a moderate load and at saturation."""
    lines = [f"vault, {RESOURCE_WORKERS} workers, SQLite:", ""]
    for endpoint, goal in VAULT_GOALS:
        row = find(results, endpoint, max(VAULT_CONNECTIONS))
        if row is None:
            lines.append(f"- {endpoint}: not measured: MISS")
            continue
        rps = row.fields["rps"]
        if goal is not None:
            lines.append(
                f"- {endpoint} ≥ {goal:,.0f} req/s ({row.connections} connections): "
                f"{rps:,.0f} → {verdict(rps >= goal and row.errors == 0)}"
            )
        for connections in VAULT_CONNECTIONS:
            at = find(results, endpoint, connections)
            if at is not None:
                p99 = at.fields["p99_ms"]
                lines.append(
                    f"- {endpoint} p99 < {VAULT_P99_MS:.0f} ms ({connections} connections, "
                    f"{at.fields['rps']:,.0f} req/s): {p99:.2f} ms → {verdict(p99 < VAULT_P99_MS)}"
                )
    return lines


def log_findings(data_dir: Path, limit: int = 10) -> list[str]:
    """Warnings, errors and tracebacks from the server logs."""
    found: list[str] = []
    for path in sorted(data_dir.glob("*/server-w*.log")) + sorted(data_dir.glob("server-w*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if is_notable(line):
                found.append(f"{path.name}: {line[:240]}")
    shown = [f"- `{line}`" for line in found[:limit]]
    if len(found) > limit:
        shown.append(f"- … and {len(found) - limit} more")
    return ["## Server log", "", *(shown or ["- no warnings or errors"])]


def is_notable(line: str) -> bool:
    try:
        entry = json.loads(line)
    except ValueError:
        entry = None
    if isinstance(entry, dict):
        return str(entry.get("level", "")).lower() in {"warning", "error", "critical"}
    lowered = line.lower()
    return any(word in lowered for word in ("error", "traceback", "exception", "warn", "killed"))


def write_report(lines: list[str], results: list[Result]) -> None:
    raw = ["## Raw wrk results", "", "```"]
    for r in results:
        raw.append(
            f"{r.backend} {r.endpoint} workers={r.workers} connections={r.connections}: {r.line}"
        )
    raw.append("```")
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text("\n".join([*lines, "", *raw]) + "\n")


# --------------------------------------------------------------------------- main


def run(data_dir: Path, duration: int, backends: tuple[str, ...]) -> tuple[list[Result], list[str]]:
    results: list[Result] = []
    notes: list[str] = []
    try:
        cardvault = cardvault_binary()
        for backend in backends:
            bench_backend(cardvault, backend, data_dir / backend, duration, results, notes)
    except BenchError as error:
        notes.append(f"- ABORTED: {error}")
    notes.extend(["", *log_findings(data_dir)])
    return results, notes


def bench_backend(
    cardvault: str,
    backend: str,
    data_dir: Path,
    duration: int,
    results: list[Result],
    notes: list[str],
) -> None:
    """Every run against a fresh installation on ``backend``."""
    data_dir.mkdir(mode=0o700)
    with installation_database(backend, data_dir) as url:
        env = server_env(data_dir, "" if backend == "sqlite" else url)
        say(f"initializing a fresh {backend} installation ({data_dir})")
        init = init_installation(cardvault, env)
        creds = init["cli_credentials"]
        ctx = Context(cardvault, env, data_dir, creds, duration, TokenLedger(), init, backend, url)
        for workers in WORKERS:
            bench_server(ctx, workers, results, notes)
        notes.append(audit_line(f"{backend}, after the servers stopped", ctx.db_url, ctx.ledger))


def main() -> int:
    try:
        duration = bench_duration()
        backends = bench_backends()
    except BenchError as error:
        say(str(error))
        return 2
    if duration + 30 > TOKEN_LIFETIME:
        say(f"warning: {duration} s runs may outlive the {TOKEN_LIFETIME} s bearer token")
    cores = len(os.sched_getaffinity(0))
    header = machine_header(cores, duration, backends)
    print("\n".join(header), flush=True)
    data_dir = Path(tempfile.mkdtemp(prefix="cardvault-bench-"))
    try:
        results, notes = run(data_dir, duration, backends)
    finally:
        if os.environ.get("BENCH_KEEP") == "1":
            say(f"kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    report = [*header, "", *results_table(results), ""]
    if len(backends) > 1:
        report.extend([*side_by_side(results), ""])
    report.extend([*notes, "", *goal_lines(results)])
    print("\n".join(report[len(header) :]))
    write_report(report, results)
    say(f"\nwritten to {RESULTS_FILE.relative_to(ROOT)}")
    return 1 if any(note.startswith("- ABORTED") for note in notes) else 0


if __name__ == "__main__":
    sys.exit(main())
