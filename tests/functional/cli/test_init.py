"""`cardvault init` and first start of `cardvault serve` (the embedded default)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx

from tests.conftest import Databases
from tests.servers import Server, cli_env, free_port, run_cli


def test_init_creates_once_and_reports_ids_later(tmp_path: Path, databases: Databases) -> None:
    env = cli_env(tmp_path, databases.url("postgresql"))
    first = json.loads(run_cli(env, "init", "--json").stdout)
    assert set(first) == {"organization_id", "vault_id", "admin", "cli_credentials"}
    assert set(first["admin"]) == {"email", "password"}
    assert set(first["cli_credentials"]) == {"client_id", "client_secret"}
    assert first["cli_credentials"]["client_secret"].startswith("cvs_")
    assert len(first["admin"]["password"]) >= 20

    second = json.loads(run_cli(env, "init", "--json").stdout)
    assert second == {
        "organization_id": first["organization_id"],
        "vault_id": first["vault_id"],
        "admin": {"email": first["admin"]["email"], "password": None},
        "cli_credentials": {
            "client_id": first["cli_credentials"]["client_id"],
            "client_secret": None,
        },
    }


def test_serve_on_an_empty_data_dir_uses_sqlite_and_a_0600_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    server = Server(data_dir=data_dir, database_url="", port=free_port())
    env = cli_env(data_dir, "")
    del env["CARDVAULT_DATABASE_URL"]
    assert "CARDVAULT_DATABASE_URL" not in server.env or not server.env["CARDVAULT_DATABASE_URL"]
    server.start()  # no database configured: the embedded default
    try:
        assert (data_dir / "cardvault.db").is_file()
        mode = stat.S_IMODE((data_dir / "kek.key").stat().st_mode)
        assert mode == 0o600
        assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        creds = server.init["cli_credentials"]
        response = httpx.post(
            server.token_url,
            data={**creds, "grant_type": "client_credentials"},
        )
        assert response.status_code == 200
        assert response.json()["scope"] == "organization:admin"
    finally:
        server.stop()


def test_bad_configuration_is_one_clear_line(tmp_path: Path) -> None:
    env = cli_env(tmp_path, "", signing_alg="HS256")
    result = run_cli(env, "init", "--json", check=False)
    assert result.returncode == 2
    assert "CARDVAULT_SIGNING_ALG" in result.stderr
    assert "Traceback" not in result.stderr
