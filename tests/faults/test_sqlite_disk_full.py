"""SQLite on a full disk (a real one: a tiny tmpfs): writes answer 503
``unavailable``, never 500; once space is freed the database is intact
(``PRAGMA integrity_check``) and serves writes again, without a restart."""

from __future__ import annotations

import errno
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.factories import Factory
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.oauth.helpers import access_token
from tests.servers import Server, free_port

SIZE = "4m"  # room for the schema and some cards, soon filled


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: Path) -> Path:
    """Write a file until the disk is full; returns it (delete it to free the space)."""
    filler = directory / "filler"
    block = b"\0" * 65536
    with filler.open("wb", buffering=0) as handle:
        while True:
            try:
                handle.write(block)
            except OSError as error:
                assert error.errno == errno.ENOSPC
                break
        while True:  # the last partial block
            try:
                handle.write(b"\0" * 512)
            except OSError:
                return filler


def test_a_full_disk_answers_503_and_corrupts_nothing(tmp_path: Path, tiny_disk: Path) -> None:
    database = tiny_disk / "cardvault.db"
    server = Server(tmp_path / "data", f"sqlite:///{database}", free_port()).start()
    factory = Factory(server)
    try:
        client = factory.client(scopes=["cards:write", "cards:read"])
        bearer = {"Authorization": f"Bearer {access_token(server, client)}"}

        def enrol() -> httpx.Response:
            body = {"pan": random_pan(), "exp_month": 7, "exp_year": NEXT_YEAR}
            return httpx.post(f"{server.url}/cards", json=body, headers=bearer, timeout=10)

        kept = [enrol().json()["id"]]
        filler = _fill(tiny_disk)
        statuses: list[int] = []
        for _ in range(300):  # the WAL's free space first, then the disk's
            started = time.monotonic()
            response = enrol()
            assert time.monotonic() - started < 5
            statuses.append(response.status_code)
            assert response.status_code in (201, 503), response.text
            if response.status_code == 201:
                kept.append(response.json()["id"])
                continue
            assert response.json()["errors"][0]["code"] == "unavailable"
            assert int(response.headers["Retry-After"]) > 0
            if statuses.count(503) >= 5:
                break
        assert statuses.count(503) >= 5, "the disk never filled"
        assert httpx.get(f"{server.url}/readyz").status_code in (200, 503)  # answers

        filler.unlink()
        deadline = time.monotonic() + 10
        while (response := enrol()).status_code != 201:
            assert response.status_code == 503, response.text
            assert time.monotonic() < deadline, "writes did not come back after space was freed"
            time.sleep(0.1)
        kept.append(response.json()["id"])
        for card_id in kept:  # every acknowledged card is there
            got = httpx.get(f"{server.url}/cards/{card_id}", headers=bearer)
            assert got.status_code == 200, got.text
        with sqlite3.connect(database) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        log = server.log_path.read_text(errors="replace")
        assert "internal-error" not in log and '"level":"error"' not in log
    finally:
        factory.close()
        server.stop()
