"""What a node checks before it serves: that its key-encryption key is the one the
database's keys were made under, and that its issuer (CARDVAULT_URL) is the one every
other node uses. Either mistake stops it with one clear line, never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, MakeServer
from tests.functional.feeds.cluster import second_node
from tests.servers import CARDVAULT, Server, cli_env, free_port, run_cli

MISMATCH = (
    "error: the key-encryption key at {path} does not match this database (it cannot "
    "decrypt the installation's signing key); every node needs the same key"
)


def _serve_refused(env: dict[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``cardvault serve`` with ``env``, which must exit by itself (a node that starts
    serving instead is stopped, and the caller's assertions fail)."""
    process = subprocess.Popen(
        [CARDVAULT, "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _one_clear_line(result: subprocess.CompletedProcess[str], line: str) -> None:
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [line], result.stderr[-2000:]


def _node_env(server: Server, port: int, **settings: str) -> dict[str, str]:
    env = {**server.env, "CARDVAULT_PORT": str(port)}
    env.update({f"CARDVAULT_{name.upper()}": value for name, value in settings.items()})
    return env


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_node_with_another_key_encryption_key_says_so(
    make_server: MakeServer, tmp_path: Path, backend: str
) -> None:
    server = make_server(backend)
    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(32))
    other.chmod(0o600)
    env = _node_env(server, free_port(), kek_file=str(other))
    _one_clear_line(_serve_refused(env), MISMATCH.format(path=other))
    _one_clear_line(run_cli(env, "init", check=False), MISMATCH.format(path=other))
    # The node that has the right key still serves.
    assert server.process is not None and server.process.poll() is None


def test_a_node_without_its_key_file_makes_no_key_of_its_own(
    make_server: MakeServer, tmp_path: Path
) -> None:
    server = make_server("sqlite")
    missing = tmp_path / "nowhere" / "kek.key"
    result = _serve_refused(_node_env(server, free_port(), kek_file=str(missing)))
    _one_clear_line(
        result,
        f"error: there is no key-encryption key at {missing}, but this database's keys "
        "were made under one: put the key the other nodes use (or the one kept apart "
        "from the backup) there; every node needs the same key",
    )
    assert not missing.exists()


def test_a_node_with_another_url_on_the_same_postgresql_refuses_to_start(
    make_server: MakeServer, tmp_path: Path
) -> None:
    first = make_server("postgresql", url="http://a.cardvault.test")
    data_dir = tmp_path / "node-b"
    data_dir.mkdir()
    (data_dir / "kek.key").write_bytes((first.data_dir / "kek.key").read_bytes())
    env = {
        **first.env,
        "CARDVAULT_DATA_DIR": str(data_dir),
        "CARDVAULT_PORT": str(free_port()),
        "CARDVAULT_URL": "http://b.cardvault.test",
    }
    _one_clear_line(
        _serve_refused(env),
        "error: this node's token issuer is http://b.cardvault.test/auth/realms/cardvault, "
        "but the database records http://a.cardvault.test/auth/realms/cardvault: every "
        "node must have the same CARDVAULT_URL (and CARDVAULT_REALM); set "
        "CARDVAULT_URL=http://a.cardvault.test, or, if the service's public URL has "
        "changed, run `cardvault db set-issuer` once with the new settings",
    )
    # With the same URL, a second node joins.
    node = second_node(first, tmp_path / "node-c")
    try:
        assert node.process is not None and node.process.poll() is None
    finally:
        node.stop()


def test_a_key_file_that_is_not_a_key_says_so(tmp_path: Path) -> None:
    bad = tmp_path / "kek.key"
    bad.write_bytes(b"not a key")
    env = cli_env(tmp_path / "data", "", kek_file=str(bad))
    result = run_cli(env, "init", check=False)
    _one_clear_line(result, f"error: key-encryption key file {bad} is not a 256-bit key")
