"""Every file in the data directory is 0600 and the directory 0700 (DESIGN §3):
the database, SQLite's -wal and -shm, the key file, locks, logs, leftovers."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx

from tests.factories import Factory
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.oauth.helpers import access_token
from tests.servers import Server, free_port


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_directory_and_everything_in_it_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    leftover = data_dir / "left-by-an-older-version.txt"
    leftover.write_text("x")
    leftover.chmod(0o644)
    server = Server(data_dir, f"sqlite:///{data_dir / 'cardvault.db'}", free_port())
    server.start()
    factory = Factory(server)
    try:
        client = factory.client()
        bearer = {"Authorization": f"Bearer {access_token(server, client)}"}
        body = {"pan": random_pan(), "exp_month": 7, "exp_year": NEXT_YEAR}
        created = httpx.post(f"{server.url}/cards", json=body, headers=bearer)
        assert created.status_code == 201, created.text
        files = {p.name: _mode(p) for p in data_dir.rglob("*") if p.is_file()}
        assert {"cardvault.db", "cardvault.db-wal", "cardvault.db-shm", "kek.key"} <= set(files)
        assert {name: mode for name, mode in files.items() if mode != 0o600} == {}
        assert _mode(data_dir) == 0o700
    finally:
        factory.close()
        server.stop()


def test_init_creates_a_private_data_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    server = Server(data_dir, f"sqlite:///{data_dir / 'cardvault.db'}", free_port())
    server.cli("init", "--json")
    assert _mode(data_dir) == 0o700
    files = {p.name: _mode(p) for p in data_dir.rglob("*") if p.is_file()}
    assert "kek.key" in files and "cardvault.db" in files
    assert {name: mode for name, mode in files.items() if mode != 0o600} == {}
