"""`cardvault keys rotate-data-key` on a local installation, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from cardvault.crypto import Fingerprinter, LocalFileKeyProvider, Pan, VaultCipher
from cardvault.keys import fingerprint_key, load_vault_cipher
from cardvault.store import create_database
from cardvault.store.models import Card
from tests.conftest import BACKENDS, Databases
from tests.servers import cli_env, run_cli

PANS = ["4242424242424242", "5555555555554444"]


@pytest.fixture(params=BACKENDS)
def installation(
    request: pytest.FixtureRequest, databases: Databases, tmp_path: Path
) -> tuple[dict[str, str], dict[str, str]]:
    """An initialized installation: its CLI environment and `cardvault init --json`."""
    env = cli_env(tmp_path / "data", databases.url(request.param))
    return env, json.loads(run_cli(env, "init", "--json").stdout)


def _add_cards(env: dict[str, str], org_id: str, vault_id: str) -> None:
    db = create_database(env["CARDVAULT_DATABASE_URL"])
    kek = LocalFileKeyProvider(Path(env["CARDVAULT_DATA_DIR"]) / "kek.key", create=False)
    try:
        with db.transaction() as session:
            cipher = load_vault_cipher(session, kek, vault_id)
            fingerprints = Fingerprinter(fingerprint_key(session, kek, org_id))
            for n, number in enumerate(PANS):
                pan, card_id = Pan(number), f"card_{n}"
                session.add(
                    Card(
                        id=card_id,
                        vault_id=vault_id,
                        org_id=org_id,
                        pan_alias=f"pan_{n}",
                        fingerprint=fingerprints.digest(pan),
                        pan_encrypted=cipher.encrypt(
                            number.encode(), record_id=card_id, field="pan"
                        ),
                        data_key_version=cipher.current_version,
                        bin=pan.bin,
                        last4=pan.last4,
                        brand="visa",
                        exp_month=1,
                        exp_year=2031,
                    )
                )
    finally:
        db.dispose()


def _card_versions(env: dict[str, str], vault_id: str) -> dict[str, tuple[int, int, str]]:
    db = create_database(env["CARDVAULT_DATABASE_URL"])
    kek = LocalFileKeyProvider(Path(env["CARDVAULT_DATA_DIR"]) / "kek.key", create=False)
    try:
        with db.sessions() as session:
            cipher = load_vault_cipher(session, kek, vault_id)
            return {
                c.id: (
                    c.data_key_version,
                    VaultCipher.version_of(c.pan_encrypted),
                    cipher.decrypt(c.pan_encrypted, record_id=c.id, field="pan").decode(),
                )
                for c in session.scalars(select(Card).where(Card.vault_id == vault_id))
            }
    finally:
        db.dispose()


def test_rotation_prints_the_new_version(
    installation: tuple[dict[str, str], dict[str, str]],
) -> None:
    env, init = installation
    vault_id = init["vault_id"]

    first = run_cli(env, "keys", "rotate-data-key", "--vault", vault_id)
    second = run_cli(env, "keys", "rotate-data-key", "--vault", vault_id)

    # The vault had no data key yet: version 1 is created first, then 2.
    assert json.loads(first.stdout) == {"vault_id": vault_id, "version": 2}
    assert json.loads(second.stdout) == {"vault_id": vault_id, "version": 3}


def test_rotation_with_rewrap_moves_every_card(
    installation: tuple[dict[str, str], dict[str, str]],
) -> None:
    env, init = installation
    vault_id = init["vault_id"]
    _add_cards(env, init["organization_id"], vault_id)

    result = run_cli(env, "keys", "rotate-data-key", "--vault", vault_id, "--rewrap")

    assert json.loads(result.stdout) == {"vault_id": vault_id, "version": 2, "rewrapped": 2}
    assert _card_versions(env, vault_id) == {
        "card_0": (2, 2, PANS[0]),
        "card_1": (2, 2, PANS[1]),
    }
    again = run_cli(env, "keys", "rotate-data-key", "--vault", vault_id, "--rewrap")
    assert json.loads(again.stdout) == {"vault_id": vault_id, "version": 3, "rewrapped": 2}
    for pan in PANS:
        assert pan not in result.stdout + result.stderr + again.stdout + again.stderr


def test_unknown_vault_is_one_line_and_exit_code_1(
    installation: tuple[dict[str, str], dict[str, str]],
) -> None:
    env, _ = installation

    result = run_cli(env, "keys", "rotate-data-key", "--vault", "vlt_missing", check=False)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == ["error: vault vlt_missing does not exist"]
