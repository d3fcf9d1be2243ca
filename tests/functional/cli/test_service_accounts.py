"""The `cardvault` CLI against a real server: DESIGN §1 steps 1, 2 and 5."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml

from tests.factories import Factory
from tests.functional.cli.conftest import Cli, cli_for
from tests.functional.oauth.helpers import eventually
from tests.servers import Server

REFERENCE_CALM = """\
apiVersion: 1.0.0
kind: ServiceAccount
data:
  annotations:
    "vgs.io/vault-id": "{vault}"
  name: calm
  scopes:
    - name: cards:write
    - name: network-tokens:write
"""


def _token(server: Server, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/auth/realms/cardvault/protocol/openid-connect/token",
        data={"client_id": client_id, "client_secret": secret, "grant_type": "client_credentials"},
    )


def _whoami(server: Server, token: str) -> int:
    return httpx.get(
        f"{server.url}/whoami", headers={"Authorization": f"Bearer {token}"}
    ).status_code


def _apply(admin_cli: Cli, tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "credentials.yaml"
    path.write_text(text)
    applied = admin_cli("apply", "service-account", "-f", str(path)).stdout
    return dict(yaml.safe_load(applied)["data"])


def test_generate_prints_the_reference_document(server: Server, admin_cli: Cli) -> None:
    vault = server.init["vault_id"]
    out = admin_cli("generate", "service-account", "-t", "calm", "--var", f"vault_id={vault}")
    assert out.stdout == REFERENCE_CALM.format(vault=vault)


def test_generate_errors_say_what_to_do(admin_cli: Cli) -> None:
    missing = admin_cli("generate", "service-account", "-t", "calm", check=False)
    assert missing.returncode == 1
    assert "--var vault_id=value" in missing.stderr
    unknown = admin_cli("generate", "service-account", "-t", "nope", check=False)
    assert unknown.returncode == 1
    assert "known templates: calm, calm-read, cardvault-cli, full" in unknown.stderr
    assert "Traceback" not in missing.stderr + unknown.stderr


def test_generate_apply_token_call_delete_refused(
    server: Server, admin_cli: Cli, tmp_path: Path
) -> None:
    vault = server.init["vault_id"]
    generated = admin_cli(
        "generate", "service-account", "-t", "calm", "--var", f"vault_id={vault}"
    ).stdout
    (tmp_path / "credentials.yaml").write_text(generated)
    applied = admin_cli(
        "apply",
        "service-account",
        "-O",
        server.init["organization_id"],
        "-f",
        str(tmp_path / "credentials.yaml"),
    ).stdout
    document = yaml.safe_load(applied)
    assert applied.startswith("apiVersion: 1.0.0\nkind: ServiceAccount\ndata:\n  name: calm\n")
    assert "annotations" not in document["data"]
    assert document["data"]["scopes"] == [{"name": "cards:write"}, {"name": "network-tokens:write"}]
    client_id, secret = document["data"]["clientId"], document["data"]["clientSecret"]
    assert secret.startswith("cvs_")

    response = _token(server, client_id, secret)
    assert response.status_code == 200
    assert response.json()["scope"] == "cards:write network-tokens:write"
    token = response.json()["access_token"]
    me = httpx.get(f"{server.url}/whoami", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["vault_id"] == vault

    listed = json.loads(admin_cli("get", "service-accounts", "-o", "json").stdout)
    (mine,) = [a for a in listed if a["client_id"] == client_id]
    assert mine["name"] == "calm" and mine["vault_ids"] == [vault]
    assert "client_secret" not in mine and secret not in json.dumps(listed)

    deleted = admin_cli(
        "delete", "service-account", client_id, "-O", server.init["organization_id"]
    )
    assert deleted.returncode == 0
    assert _token(server, client_id, secret).status_code == 401
    eventually(lambda: _whoami(server, token) == 401)


def test_apply_reads_standard_input_and_plain_string_scopes(server: Server, admin_cli: Cli) -> None:
    document = (
        "apiVersion: 1.0.0\nkind: ServiceAccount\ndata:\n"
        f"  annotations:\n    cardvault.io/vault-id: {server.init['vault_id']}\n"
        "  name: reader\n  scopes: [cards:read]\n  accessTokenLifespan: 600\n"
    )
    data = yaml.safe_load(admin_cli("apply", "service-account", "-f", "-", stdin=document).stdout)
    response = _token(server, data["data"]["clientId"], data["data"]["clientSecret"])
    assert response.json()["expires_in"] == 600
    assert response.json()["scope"] == "cards:read"


def test_removing_the_member_revokes(server: Server, admin_cli: Cli, tmp_path: Path) -> None:
    data = _apply(admin_cli, tmp_path, REFERENCE_CALM.format(vault=server.init["vault_id"]))
    client_id, secret = data["clientId"], data["clientSecret"]
    token = _token(server, client_id, secret).json()["access_token"]
    member = f"{client_id}@cardvault.local"
    members = json.loads(admin_cli("get", "members", "-o", "json").stdout)
    (entry,) = [m for m in members if m["name"] == member]
    assert (entry["kind"], entry["access"]) == ("service_account", "write")
    assert any(m["kind"] == "person" and m["name"] == "admin@cardvault.local" for m in members)

    admin_cli("remove", "member", member)
    assert _token(server, client_id, secret).status_code == 401
    eventually(lambda: _whoami(server, token) == 401)
    members = json.loads(admin_cli("get", "members", "-o", "json").stdout)
    assert member not in {m["name"] for m in members}


def test_read_access_refuses_credentials(server: Server, admin_cli: Cli, tmp_path: Path) -> None:
    data = _apply(admin_cli, tmp_path, REFERENCE_CALM.format(vault=server.init["vault_id"]))
    client_id, secret = data["clientId"], data["clientSecret"]
    token = _token(server, client_id, secret).json()["access_token"]
    creds = server.init["cli_credentials"]
    admin = _token(server, creds["client_id"], creds["client_secret"]).json()["access_token"]
    patched = httpx.patch(
        f"{server.url}/organizations/{server.init['organization_id']}/members/"
        f"{client_id}@cardvault.local",
        json={"access": "read"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert patched.status_code == 200 and patched.json()["access"] == "read"
    refused = _token(server, client_id, secret)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    eventually(lambda: _whoami(server, token) == 401)


def test_rotation_with_a_grace_period(server: Server, admin_cli: Cli, tmp_path: Path) -> None:
    data = _apply(admin_cli, tmp_path, REFERENCE_CALM.format(vault=server.init["vault_id"]))
    client_id, old = data["clientId"], data["clientSecret"]
    rotated = json.loads(
        admin_cli("rotate", "service-account", client_id, "--grace", "2s", "-o", "json").stdout
    )
    new = rotated["clientSecret"]
    assert new != old and new.startswith("cvs_")
    assert _token(server, client_id, old).status_code == 200
    assert _token(server, client_id, new).status_code == 200
    eventually(lambda: _token(server, client_id, old).status_code == 401, timeout=4)
    assert _token(server, client_id, new).status_code == 200
    # A second rotation without grace: only the newest secret works.
    newest = json.loads(
        admin_cli("rotate", "service-account", client_id, "--grace", "0", "-o", "json").stdout
    )["clientSecret"]
    assert _token(server, client_id, new).status_code == 401
    assert _token(server, client_id, newest).status_code == 200


BAD_DOCUMENTS = {
    "unknown scope": ("scopes: [cards:write, cards:steal]", "scopes: unknown scope 'cards:steal'"),
    "foreign vault": (
        "scopes: [cards:write]",
        "vault_ids: vault 'vlt_notours' is not in the organization",
    ),
    "missing vault annotation": ("scopes: [cards:write]", "missing vault annotation"),
    "bad name": ("scopes: [cards:write]", "name: must be 1-64 characters"),
    "lifespan too short": (
        "scopes: [cards:write]\n  accessTokenLifespan: 59",
        "access_token_lifespan: must be between 60 and 3600 seconds",
    ),
    "lifespan too long": (
        "scopes: [cards:write]\n  accessTokenLifespan: 3601",
        "access_token_lifespan: must be between 60 and 3600 seconds",
    ),
    "scopes not a list": ("scopes: cards:write", "data.scopes: a non-empty list is required"),
}


@pytest.mark.parametrize("case", list(BAD_DOCUMENTS))
def test_bad_documents_are_refused_with_one_clear_line(
    server: Server, admin_cli: Cli, case: str
) -> None:
    scopes, message = BAD_DOCUMENTS[case]
    vault = {"foreign vault": "vlt_notours"}.get(case, server.init["vault_id"])
    annotations = (
        ""
        if case == "missing vault annotation"
        else (f'  annotations:\n    "vgs.io/vault-id": "{vault}"\n')
    )
    name = "bad name!" if case == "bad name" else "calm"
    document = (
        f"apiVersion: 1.0.0\nkind: ServiceAccount\ndata:\n{annotations}  name: {name}\n  {scopes}\n"
    )

    def client_ids() -> set[str]:
        listed = json.loads(admin_cli("get", "service-accounts", "-o", "json").stdout)
        return {a["client_id"] for a in listed}

    before = client_ids()
    result = admin_cli("apply", "service-account", "-f", "-", stdin=document, check=False)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert client_ids() == before


def test_another_organization_is_invisible(server: Server, factory: Factory) -> None:
    other = factory.client(scopes=["organization:admin"], vaults=0)
    other_cli = cli_for(server, other.client_id, other.client_secret)
    mine = factory.client(org_id=server.init["organization_id"])
    listed = json.loads(other_cli("get", "service-accounts", "-o", "json").stdout)
    assert mine.client_id not in {a["client_id"] for a in listed}
    refused = other_cli("delete", "service-account", mine.client_id, check=False)
    assert refused.returncode == 1
    assert "not found" in refused.stderr
    foreign = other_cli("get", "vaults", "-O", server.init["organization_id"], check=False)
    assert foreign.returncode == 1
    assert f"organization {server.init['organization_id']} not found" in foreign.stderr
    assert _token(server, mine.client_id, mine.client_secret).status_code == 200


def test_create_and_get_vaults(admin_cli: Cli) -> None:
    created = json.loads(admin_cli("create", "vault", "payments-eu", "-o", "json").stdout)
    assert created["name"] == "payments-eu" and created["id"].startswith("vlt_")
    listed = json.loads(admin_cli("get", "vaults", "-o", "json").stdout)
    assert created in listed
    table = admin_cli("get", "vaults").stdout
    assert "payments-eu" in table and created["id"] in table
    as_yaml = yaml.safe_load(admin_cli("get", "vaults", "-o", "yaml").stdout)
    assert created["id"] in {v["id"] for v in as_yaml}


def test_wrong_credentials_are_one_line(server: Server) -> None:
    bad = cli_for(server, "cv-nobody00000000000000", "cvs_wrong")
    result = bad("get", "vaults", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: Invalid client or Invalid client credentials (invalid_client)"
    )
