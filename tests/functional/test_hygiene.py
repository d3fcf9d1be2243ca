"""The data-hygiene check itself: it learns what tests use and finds it where it lies.

Every server the suite starts is searched when it stops (tests/conftest.py); these
tests show that the search would fail on a value left in clear, on both backends.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import psycopg

from cardvault.crypto.pan import Pan
from tests import hygiene
from tests.conftest import Databases
from tests.functional.api.test_cards import random_pan
from tests.servers import Server


def test_what_a_test_sends_and_receives_is_remembered(server: Server) -> None:
    pan, cvc = random_pan(), "4821"
    written = " ".join(pan[i : i + 4] for i in range(0, 16, 4))
    httpx.post(f"{server.url}/cards", json={"pan": written, "cvc": cvc, "exp_month": 1})
    assert hygiene.USED.digits[pan.encode()] == Pan(pan).masked
    assert cvc.encode() in hygiene.USED.cvcs
    password = server.init["admin"]["password"]
    secret = server.init["cli_credentials"]["client_secret"]
    assert hygiene.USED.literals[password.encode()][0] == hygiene.PASSWORD
    assert hygiene.USED.literals[secret.encode()][0] == hygiene.CLIENT_SECRET


def _leaving(pan: str, secret: str) -> list[str]:
    hygiene.USED.text(f"pan {pan}, secret {secret}")
    return [f"pan {pan}", f'{{"cvc": "{731}"}}', f"x{secret}x"]


def test_a_value_left_in_a_sqlite_file_or_log_is_found_and_shown_masked(
    tmp_path: Path,
) -> None:
    pan, secret = random_pan(), "cvs_" + "k" * 40
    hygiene.USED.cvcs.add(b"731")
    left = _leaving(pan, secret)
    database = tmp_path / "db.sqlite"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.executemany("INSERT INTO t VALUES (?)", [(v,) for v in left[:2]])
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "server.log").write_text(left[2])
    found = hygiene.leaks(data_dir, f"sqlite:///{database}")
    assert found == [
        f"{data_dir / 'server.log'}: client secret cvs_k… (44 characters)",
        f"{database}: CVC (3 digits) next to a cvc name",
        f"{database}: card number {Pan(pan).masked}",
    ]
    assert pan not in str(found) and secret not in str(found)


def test_a_value_left_in_postgresql_is_found_in_a_dump(
    databases: Databases, tmp_path: Path
) -> None:
    pan = random_pan()
    hygiene.USED.text(pan)
    url = databases.url("postgresql")
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.execute("INSERT INTO t VALUES (%s)", [f"holder {pan[:8]}-{pan[8:]}"])
    name = url.rsplit("/", 1)[-1]
    assert hygiene.leaks(tmp_path, url) == [f"pg_dump of {name}: card number {Pan(pan).masked}"]
