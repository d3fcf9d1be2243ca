"""Data hygiene: no sensitive value any test used is left in clear where a server writes.

While the suite runs, every card number, CVC, client secret, webhook secret and
password the tests send or receive is remembered: from the HTTP requests and
responses of httpx, from ``cardvault`` command lines, their input and output (``init
--json`` prints the admin's password and the CLI's secret) and from the factory's
clients. When a server stops, every file of its data directory (the SQLite database
with its -wal, -shm and -journal files, the log, anything else) and, for PostgreSQL,
a ``pg_dump`` of its database are searched for all of them. Card numbers are searched
as ASCII digits written with or without spaces and dashes between them (as the tests
wrote them, or otherwise). A CVC is only three or four digits, so it is searched next
to a ``cvc``-like name.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import psycopg
import pytest

from cardvault.crypto.pan import MAX_LENGTH, MIN_LENGTH, UUID, pans_in

PAN, CVC, CLIENT_SECRET, WEBHOOK_SECRET, PASSWORD = (
    "card number",
    "CVC",
    "client secret",
    "webhook secret",
    "password",
)
SECRET_TOKEN = re.compile(r"\bcv(?:s|wh)_[A-Za-z0-9_-]{20,}")
SECRET_KEYS = {
    "client_secret": CLIENT_SECRET,
    "clientsecret": CLIENT_SECRET,
    "secret": WEBHOOK_SECRET,
    "webhook_secret": WEBHOOK_SECRET,
    "password": PASSWORD,
    "new_password": PASSWORD,
    "current_password": PASSWORD,
}
CVC_KEYS = frozenset(("cvc", "cvv", "cvc2", "cvv2", "security_code"))
_DIGIT_RUN = re.compile(rb"(?:[0-9][ -]*+){%d,}+" % MIN_LENGTH)  # 12+ digits, spaced or not
_SEPARATORS = bytes.maketrans(b"", b"")
_CVC_IN_FILE = re.compile(
    rb"(?i)(?:cvc2?|cvv2?|security_code)[\"'\\]{0,3}\s*[:=]\s*[\"'\\]{0,3}\s*([0-9]{3,4})(?![0-9])"
)


def _kind_of_secret(value: str) -> str:
    return WEBHOOK_SECRET if value.startswith("cvwh_") else CLIENT_SECRET


@dataclass
class Used:
    """The sensitive values the tests used so far: value → (kind, shown form)."""

    digits: dict[bytes, str] = field(default_factory=dict)  # card numbers → masked
    literals: dict[bytes, tuple[str, str]] = field(default_factory=dict)  # secrets, passwords
    cvcs: set[bytes] = field(default_factory=set)

    def text(self, text: str) -> None:
        """Card numbers and secrets written anywhere in ``text`` (a UUID, such as an
        ``Idempotency-Key``, is an identifier whatever its digits: the service keeps it)."""
        for _written, pan in pans_in(UUID.sub("-", text)):
            self.digits[pan.reveal().encode()] = pan.masked
        for token in SECRET_TOKEN.findall(text):
            self.secret(_kind_of_secret(token), token)

    def secret(self, kind: str, value: str) -> None:
        if len(value) >= 8:
            self.literals[value.encode()] = (kind, f"{value[:5]}… ({len(value)} characters)")

    def data(self, value: Any, key: str = "") -> None:
        """Values under secret-like names in decoded JSON or form data."""
        if isinstance(value, dict):
            for name, item in value.items():
                self.data(item, str(name))
        elif isinstance(value, list):
            for item in value:
                self.data(item, key)
        elif isinstance(value, str | int) and not isinstance(value, bool):
            text, name = str(value), key.lower()
            if name in CVC_KEYS and text.isdigit():
                self.cvcs.add(text.encode())
            elif name in SECRET_KEYS and isinstance(value, str):
                kind = SECRET_KEYS[name]
                ours = text.startswith(("cvs_", "cvwh_"))
                if kind == PASSWORD or ours:
                    # A guessed secret not in our format ("x", a grant type, a client
                    # id...) is no secret; one in our format may be a real one.
                    self.secret(_kind_of_secret(text) if ours else kind, text)
            if isinstance(value, str):
                self.text(value)

    def body(self, content: bytes, content_type: str) -> None:
        text = content.decode("utf-8", "replace")
        self.text(text)
        if "json" in content_type:
            with contextlib.suppress(ValueError, RecursionError):  # tests send bad JSON too
                self.data(json.loads(text))
        elif "x-www-form-urlencoded" in content_type:
            self.data(dict(parse_qsl(text)))


USED = Used()


# -- collecting ------------------------------------------------------------------------


def _request(request: httpx.Request) -> None:
    USED.text(str(request.url))
    for value in request.headers.values():
        USED.text(value)
    try:
        content = request.content
    except httpx.RequestNotRead:  # a streamed upload: read where it was made
        return
    USED.body(content, request.headers.get("content-type", ""))


def _response(response: httpx.Response) -> None:
    try:
        content = response.content
    except httpx.ResponseNotRead:
        return
    text = content.decode("utf-8", "replace")
    for token in SECRET_TOKEN.findall(text):
        USED.secret(_kind_of_secret(token), token)
    if "json" in response.headers.get("content-type", ""):
        try:
            body = json.loads(text)
        except ValueError:
            return
        _secrets_only(body)


def _secrets_only(value: Any, key: str = "") -> None:
    """Secrets and passwords a response gave (card numbers in responses are not the
    tests' own: a network token number may be one)."""
    if isinstance(value, dict):
        for name, item in value.items():
            _secrets_only(item, str(name))
    elif isinstance(value, list):
        for item in value:
            _secrets_only(item, key)
    elif isinstance(value, str) and key.lower() in SECRET_KEYS:
        USED.secret(SECRET_KEYS[key.lower()], value)


def _command(args: Any, stdin: Any, stdout: Any) -> None:
    words = [str(a) for a in args] if isinstance(args, list | tuple) else [str(args)]
    if not words or Path(words[0]).name != "cardvault":
        return
    for word in words[1:]:
        USED.text(word)
        path = Path(word)
        if len(word) < 4096 and path.is_file() and path.stat().st_size < 5_000_000:
            USED.text(path.read_text(errors="replace"))
    if isinstance(stdin, bytes | str):
        USED.text(stdin.decode("utf-8", "replace") if isinstance(stdin, bytes) else stdin)
    if isinstance(stdout, bytes | str):  # secrets only: a command may show a token number
        stream = stdout.decode("utf-8", "replace") if isinstance(stdout, bytes) else stdout
        for token in SECRET_TOKEN.findall(stream):
            USED.secret(_kind_of_secret(token), token)
        for line in stream.splitlines():
            if line.startswith(("{", "[")):
                with contextlib.suppress(ValueError):
                    _secrets_only(json.loads(line))


@pytest.fixture(scope="session", autouse=True)
def collect_used_values() -> Iterator[None]:
    """Watch what the tests send and receive (httpx, ``cardvault`` commands)."""
    send, async_send, run = httpx.Client.send, httpx.AsyncClient.send, subprocess.run

    def sync(client: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        _request(request)
        response = send(client, request, **kwargs)
        _response(response)
        return response

    async def asynchronous(
        client: httpx.AsyncClient, request: httpx.Request, **kwargs: Any
    ) -> httpx.Response:
        _request(request)
        response = await async_send(client, request, **kwargs)
        _response(response)
        return response

    def command(*args: Any, **kwargs: Any) -> Any:
        result = run(*args, **kwargs)
        _command(args[0] if args else kwargs.get("args"), kwargs.get("input"), result.stdout)
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx.Client, "send", sync)
        patch.setattr(httpx.AsyncClient, "send", asynchronous)
        patch.setattr(subprocess, "run", command)
        yield


# -- searching ---------------------------------------------------------------------------


def _found_in(data: bytes) -> Iterator[tuple[str, str]]:
    """(kind, shown) of each used value that ``data`` holds in clear."""
    if USED.digits:
        hits: set[bytes] = set()
        for run in _DIGIT_RUN.finditer(data):
            digits = run.group().translate(_SEPARATORS, b" -")
            for size in range(MIN_LENGTH, min(MAX_LENGTH, len(digits)) + 1):
                for start in range(len(digits) - size + 1):
                    if digits[start : start + size] in USED.digits:
                        hits.add(digits[start : start + size])
        for number in sorted(hits):
            yield PAN, USED.digits[number]
    for literal, (kind, shown) in USED.literals.items():
        if literal in data:
            yield kind, shown
    for match in _CVC_IN_FILE.finditer(data):
        if match.group(1) in USED.cvcs:
            yield CVC, f"({len(match.group(1))} digits) next to a cvc name"


def _pg_dump(database_url: str) -> bytes:
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    version = int(row[0])
    matching = Path(f"/usr/lib/postgresql/{version // 10000}/bin/pg_dump")
    pg_dump = str(matching) if matching.exists() else shutil.which("pg_dump") or "pg_dump"
    return subprocess.run(
        [pg_dump, "--no-owner", "--dbname", url], capture_output=True, check=True, timeout=120
    ).stdout


def places(data_dir: Path, database_url: str) -> Iterator[tuple[str, bytes]]:
    """(name, content) of everything a server wrote: its files and its database."""
    files = [p for p in sorted(data_dir.rglob("*")) if p.is_file()]
    if database_url.startswith("sqlite:///"):
        db = Path(database_url.removeprefix("sqlite:///"))
        files += [Path(f"{db}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")]
    for path in files:
        if path.is_file():
            yield str(path), path.read_bytes()
    if database_url.startswith("postgresql"):
        yield f"pg_dump of {database_url.rsplit('/', 1)[-1]}", _pg_dump(database_url)


def leaks(data_dir: Path, database_url: str) -> list[str]:
    """One line per sensitive value found in clear: where, which kind, masked."""
    return [
        f"{name}: {kind} {shown}"
        for name, data in places(data_dir, database_url)
        for kind, shown in sorted(set(_found_in(data)))
    ]
