"""`cardvault backup` and `cardvault restore` on SQLite: a backup taken while the server
serves writes restores into a fresh directory where a new server reads every card back;
a restore refuses whatever it cannot trust, and then leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from cardvault.store.migrate import downgrade, head, revision_of
from tests.conftest import MakeServer, assert_no_secrets
from tests.factories import Client, Factory
from tests.functional.api.test_cards import NEXT_YEAR, random_pan
from tests.functional.oauth.helpers import access_token
from tests.servers import Server, cli_env, free_port, run_cli

URL = "http://vault.backup.test"  # one public URL: the restored server is the same service
WRITERS = 4
CARDS_BEFORE = 40  # acknowledged before the backup starts
CARDS_DURING = 20  # more acknowledged after it started, before the writers stop
KEK_NOTE = "a backup without its key cannot be read"


@dataclass
class Writers:
    """Threads enrolling cards on ``server`` until stopped: what was acknowledged."""

    server: Server
    client: Client
    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        token = access_token(self.server, self.client)
        self.threads = [threading.Thread(target=self._run, args=(token,)) for _ in range(WRITERS)]
        for thread in self.threads:
            thread.start()

    def _run(self, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=self.server.url, headers=headers, timeout=30) as http:
            while not self.stopping.is_set():
                body = {"pan": random_pan(), "exp_month": 7, "exp_year": NEXT_YEAR}
                response = http.post("/cards", json=body)
                with self.lock:
                    if response.status_code == 201:
                        self.acknowledged[response.json()["id"]] = response.json()
                    else:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")

    def cards(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return dict(self.acknowledged)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)


def _wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _all_cards(server: Server, token: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {"limit": 100}
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        page = httpx.get(f"{server.url}/cards", params=params, headers=headers, timeout=30)
        assert page.status_code == 200, page.text
        found.update({card["id"]: card for card in page.json()["data"]})
        if not page.json()["next_cursor"]:
            return found
        params["cursor"] = page.json()["next_cursor"]


def _database_rows(database: Path, sql: str) -> set[str]:
    conn = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute(sql)}
    finally:
        conn.close()


def test_a_backup_taken_while_serving_writes_restores_and_serves_every_card(
    make_server: MakeServer, tmp_path: Path
) -> None:
    original = make_server("sqlite", workers=2, url=URL)
    factory = Factory(original)
    client = factory.client(scopes=["cards:write", "network-tokens:write"])
    factory.close()
    writers = Writers(original, client)
    # A long read (a report, another backup) holds WAL checkpoints back: from here on the
    # commits are only in the -wal file, where a copy of the database file misses them.
    database = Path(original.database_url.removeprefix("sqlite:///"))
    reader = sqlite3.connect(f"{database.as_uri()}?mode=rw", uri=True, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM cards").fetchone()
    writers.start()
    try:
        _wait_for(lambda: len(writers.cards()) >= CARDS_BEFORE)
        before = writers.cards()  # acknowledged before the backup began: must be in it
        backup, kek_copy = tmp_path / "backups" / "one", tmp_path / "keys" / "kek.key"
        (tmp_path / "keys").mkdir(mode=0o700)
        done = original.cli("backup", str(backup), "--kek-to", str(kek_copy))
        grown = len(writers.cards())
        _wait_for(lambda: len(writers.cards()) >= grown + CARDS_DURING)  # still serving
    finally:
        writers.stop()
        reader.close()
    acknowledged = writers.cards()
    assert writers.failures == []

    # The backup: a 0700 directory of 0600 files, its manifest true to the copy.
    manifest = json.loads((backup / "manifest.json").read_text())
    assert json.loads(done.stdout) == {"backup": str(backup), **manifest}
    assert manifest["schema_revision"] == head()
    copy = backup / "cardvault.db"
    assert manifest["database"] == {
        "file": "cardvault.db",
        "bytes": copy.stat().st_size,
        "sha256": hashlib.sha256(copy.read_bytes()).hexdigest(),
    }
    assert sorted(p.name for p in backup.iterdir()) == ["cardvault.db", "manifest.json"]
    assert _mode(backup) == 0o700 and {_mode(p) for p in backup.iterdir()} == {0o600}
    assert _mode(kek_copy) == 0o600
    assert kek_copy.read_bytes() == (original.data_dir / "kek.key").read_bytes()
    # A consistent snapshot: every card has the audit record of its own transaction.
    cards = _database_rows(copy, "SELECT id FROM cards")
    audited = _database_rows(copy, "SELECT target_id FROM audit_events WHERE action='card.create'")
    assert cards == audited
    assert set(before) <= cards <= set(acknowledged)

    # Restored into a fresh directory, a new server reads every card back.
    fresh = tmp_path / "restored"
    env = cli_env(tmp_path / "elsewhere", "")  # --data-dir names the target
    restored_run = run_cli(
        env, "restore", str(backup), "--data-dir", str(fresh), "--kek", str(kek_copy)
    )
    result = json.loads(restored_run.stdout)
    assert result["database"] == str(fresh / "cardvault.db")
    assert result["issuer"] == f"{URL}/auth/realms/cardvault"
    assert _mode(fresh) == 0o700 and _mode(fresh / "kek.key") == 0o600
    restored = Server(
        data_dir=fresh,
        database_url=f"sqlite:///{fresh / 'cardvault.db'}",
        port=free_port(),
        settings={"url": URL},
        init=original.init,
    ).start()
    try:
        token = access_token(restored, client)  # the same client, secret and pepper
        served = _all_cards(restored, token)
        assert set(served) == cards
        headers = {"Authorization": f"Bearer {token}"}
        for card_id, card in before.items():
            one = httpx.get(f"{restored.url}/cards/{card_id}", headers=headers)
            assert one.status_code == 200 and one.json() == card
        # The card numbers decrypt under the restored keys: tokens are provisioned.
        for card in list(before.values())[:3]:
            body = {"card_id": card["id"]}
            made = httpx.post(f"{restored.url}/network-tokens", json=body, headers=headers)
            assert made.status_code == 201, made.text
            assert made.json()["card"]["last4"] == card["last4"]
    finally:
        restored.stop()
        assert_no_secrets(restored)


# --------------------------------------------------------------------------- refusals


@dataclass(frozen=True)
class Backup:
    """An installation (not serving), a backup of it and its key kept apart."""

    env: dict[str, str]
    data_dir: Path
    path: Path
    kek: Path


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Backup:
    root = tmp_path_factory.mktemp("backup-refusals")
    data_dir = root / "data"
    env = cli_env(data_dir, "")
    run_cli(env, "init", "--json")
    path, kek = root / "backup", root / "kek.key"
    run_cli(env, "backup", str(path), "--kek-to", str(kek))
    return Backup(env, data_dir, path, kek)


def _restore(
    made: Backup, target: Path, *args: str, source: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = cli_env(target, "")
    return run_cli(env, "restore", str(source or made.path), *args, check=False)


def _refused(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_restore_refuses_an_existing_database(made: Backup, tmp_path: Path) -> None:
    target = tmp_path / "data"
    assert _restore(made, target, "--kek", str(made.kek)).returncode == 0
    database = target / "cardvault.db"
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    again = _restore(made, target, "--kek", str(made.kek))
    _refused(again, f"a database already exists at {database}")
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before
    # Nor into a data directory holding anything but the key.
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    _refused(_restore(made, other, "--kek", str(made.kek)), "is not empty (notes.txt)")
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


def test_restore_refuses_a_damaged_backup(made: Backup, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(made.path, damaged)
    database = damaged / "cardvault.db"
    data = bytearray(database.read_bytes())
    data[len(data) // 2] ^= 0x01
    database.write_bytes(bytes(data))
    target = tmp_path / "data"
    result = _restore(made, target, "--kek", str(made.kek), source=damaged)
    _refused(result, "does not match its manifest (SHA-256 or size differs)")
    assert not target.exists()


def test_restore_refuses_a_key_that_does_not_open_the_backup(made: Backup, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(bytes(range(32)))
    target = tmp_path / "data"
    result = _restore(made, target, "--kek", str(wrong))
    _refused(result, f"the key-encryption key at {wrong} does not match this backup")
    assert not target.exists()  # nothing half-written: no directory, database or key
    # Without a key at all, it says what it needs.
    _refused(_restore(made, target), "a restore needs the backup's key-encryption key")
    assert not target.exists()


def test_restore_refuses_a_schema_newer_than_its_code(made: Backup, tmp_path: Path) -> None:
    newer = tmp_path / "newer"
    shutil.copytree(made.path, newer)
    manifest = json.loads((newer / "manifest.json").read_text())
    (newer / "manifest.json").write_text(json.dumps({**manifest, "schema_revision": "9999"}))
    target = tmp_path / "data"
    result = _restore(made, target, "--kek", str(made.kek), source=newer)
    _refused(result, "the backup's schema revision 9999 is newer than this cardvault's")
    assert not target.exists()


def test_restore_of_an_older_schema_migrates_it_forward(made: Backup, tmp_path: Path) -> None:
    """A backup made by an older cardvault (here: the schema one revision back) is
    restored and brought to this code's revision."""
    older = tmp_path / "older"
    shutil.copytree(made.path, older)
    database = older / "cardvault.db"
    database.chmod(0o600)
    url = f"sqlite:///{database}"
    current = head()
    downgrade(url, "-1")
    previous = revision_of(url)
    assert previous is not None and previous != current
    manifest = json.loads((older / "manifest.json").read_text())
    manifest["schema_revision"] = previous
    manifest["database"]["bytes"] = database.stat().st_size
    manifest["database"]["sha256"] = hashlib.sha256(database.read_bytes()).hexdigest()
    (older / "manifest.json").write_text(json.dumps(manifest))
    result = _restore(made, tmp_path / "data", "--kek", str(made.kek), source=older)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["backup_schema_revision"] == previous
    assert json.loads(result.stdout)["schema_revision"] == current
    assert revision_of(f"sqlite:///{tmp_path / 'data' / 'cardvault.db'}") == current


def test_backup_keeps_the_key_apart(made: Backup, tmp_path: Path) -> None:
    inside = tmp_path / "b1"
    result = run_cli(
        made.env, "backup", str(inside), "--kek-to", str(inside / "kek.key"), check=False
    )
    _refused(result, "is inside the backup")
    assert not inside.exists()
    # Without --kek-to: a backup, and the note that its key must be kept elsewhere.
    plain = run_cli(made.env, "backup", str(tmp_path / "b2"))
    assert KEK_NOTE in plain.stderr and str(made.data_dir / "kek.key") in plain.stderr
    assert not any("kek" in p.name for p in (tmp_path / "b2").iterdir())
    # Into a directory that is not empty: refused, nothing touched.
    _refused(run_cli(made.env, "backup", str(tmp_path / "b2"), check=False), "is not empty")


def test_a_backup_in_the_data_directory_is_written_with_a_warning(made: Backup) -> None:
    """Decided: exit 0 (the copy is sound and may serve, e.g. before an upgrade) with a
    warning that it shares the disk, and the reader, of the key it needs."""
    dest = made.data_dir / "backups" / "now"
    result = run_cli(made.env, "backup", str(dest))
    assert result.returncode == 0
    assert f"warning: {dest} is inside the data directory" in result.stderr
    assert (dest / "manifest.json").is_file()
    shutil.rmtree(made.data_dir / "backups")


def test_backup_on_postgresql_points_to_its_tools(made: Backup, tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data", "postgresql+psycopg://postgres@127.0.0.1:5432/none")
    result = run_cli(env, "backup", str(tmp_path / "b"), check=False)
    assert result.returncode == 2
    assert "pg_dump" in result.stderr and "point-in-time recovery" in result.stderr
    assert "docs/backup.md" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "b").exists()
    restore = run_cli(env, "restore", str(made.path), "--kek", str(made.kek), check=False)
    assert restore.returncode == 2 and "pg_restore" in restore.stderr
