"""Vault data keys, fingerprint keys and re-wrapping, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.accounts import services
from cardvault.crypto import (
    DecryptionError,
    Fingerprinter,
    LocalFileKeyProvider,
    Pan,
    VaultCipher,
    luhn_check_digit,
    random_id,
    unwrap_data_key,
)
from cardvault.keys import (
    UnknownVault,
    create_data_key,
    fingerprint_key,
    load_vault_cipher,
    rewrap_cards,
    rotate_data_key,
)
from cardvault.store import Database, create_database, upgrade
from cardvault.store.models import Card, Change, DataKey, WrappedSecret
from tests.conftest import BACKENDS, Databases

T = TypeVar("T")


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, databases: Databases) -> Iterator[Database]:
    url = databases.url(request.param)
    upgrade(url)
    database = create_database(url)
    yield database
    database.dispose()


@pytest.fixture
def kek(tmp_path: Path) -> LocalFileKeyProvider:
    return LocalFileKeyProvider(tmp_path / "kek.key")


def _vault(db: Database) -> tuple[str, str]:
    with db.transaction() as session:
        org = services.create_organization(session, "Acme")
        vault = services.create_vault(session, org.id, "main", actor=None)
        return org.id, vault.id


def _pan(rng: random.Random) -> Pan:
    partial = "411111" + "".join(str(rng.randrange(10)) for _ in range(9))
    return Pan(partial + luhn_check_digit(partial))


def _add_cards(
    db: Database, kek: LocalFileKeyProvider, org_id: str, vault_id: str, n: int
) -> dict[str, Pan]:
    """Insert ``n`` cards sealed with the vault's current key; returns their PANs by id."""
    rng = random.Random()
    added: dict[str, Pan] = {}
    with db.transaction() as session:
        cipher = load_vault_cipher(session, kek, vault_id)
        fingerprinter = Fingerprinter(fingerprint_key(session, kek, org_id))
        for _ in range(n):
            pan, card_id = _pan(rng), random_id("card_")
            session.add(
                Card(
                    id=card_id,
                    vault_id=vault_id,
                    org_id=org_id,
                    pan_alias=random_id("pan_", 24),
                    fingerprint=fingerprinter.digest(pan),
                    pan_encrypted=cipher.encrypt(
                        pan.reveal().encode(), record_id=card_id, field="pan"
                    ),
                    data_key_version=cipher.current_version,
                    bin=pan.bin,
                    last4=pan.last4,
                    brand="visa",
                    exp_month=12,
                    exp_year=2030,
                )
            )
            added[card_id] = pan
    return added


def _read_cards(
    db: Database, kek: LocalFileKeyProvider, vault_id: str
) -> dict[str, tuple[int, int, Pan]]:
    """Each card's (column version, blob version, decrypted PAN) by id."""
    with db.sessions() as session:
        cipher = load_vault_cipher(session, kek, vault_id)
        cards = session.scalars(select(Card).where(Card.vault_id == vault_id)).all()
        return {
            c.id: (
                c.data_key_version,
                VaultCipher.version_of(c.pan_encrypted),
                Pan(cipher.decrypt(c.pan_encrypted, record_id=c.id, field="pan").decode()),
            )
            for c in cards
        }


def test_versions_count_up_from_one(db: Database, kek: LocalFileKeyProvider) -> None:
    _, vault_id = _vault(db)

    with db.transaction() as session:
        assert create_data_key(session, kek, vault_id) == 1
        assert create_data_key(session, kek, vault_id) == 2
    with db.transaction() as session:
        assert create_data_key(session, kek, vault_id) == 3


def test_rows_hold_only_the_wrapped_key(db: Database, kek: LocalFileKeyProvider) -> None:
    _, vault_id = _vault(db)
    with db.transaction() as session:
        create_data_key(session, kek, vault_id)
        create_data_key(session, kek, vault_id)

    with db.sessions() as session:
        rows = session.scalars(select(DataKey).where(DataKey.vault_id == vault_id)).all()
    assert sorted(r.version for r in rows) == [1, 2]
    for row in rows:
        raw = unwrap_data_key(kek, row.wrapped, vault_id, row.version)
        assert len(raw) == 32
        assert raw not in row.wrapped and row.wrapped != raw
        assert row.id.startswith("dk_")


def test_first_load_creates_version_one_once(db: Database, kek: LocalFileKeyProvider) -> None:
    _, vault_id = _vault(db)

    with db.transaction() as session:
        first = load_vault_cipher(session, kek, vault_id)
    blob = first.encrypt(b"secret", record_id="r", field="f")
    with db.transaction() as session:
        second = load_vault_cipher(session, kek, vault_id)

    assert first.current_version == second.current_version == 1
    assert second.decrypt(blob, record_id="r", field="f") == b"secret"
    with db.sessions() as session:
        assert len(session.scalars(select(DataKey).where(DataKey.vault_id == vault_id)).all()) == 1


def test_unknown_vault_is_refused_and_nothing_is_written(
    db: Database, kek: LocalFileKeyProvider
) -> None:
    for call in (load_vault_cipher, rotate_data_key, create_data_key):
        with db.transaction() as session, pytest.raises(UnknownVault) as caught:
            call(session, kek, "vlt_missing")
        assert str(caught.value) == "vault vlt_missing does not exist"
    with pytest.raises(UnknownVault):
        rewrap_cards(db, kek, "vlt_missing")
    with db.sessions() as session:
        assert session.scalars(select(DataKey)).all() == []
        assert session.scalars(select(Change)).all() == []


def test_rotation_publishes_a_change_and_new_writes_use_it(
    db: Database, kek: LocalFileKeyProvider
) -> None:
    _, vault_id = _vault(db)
    with db.transaction() as session:
        before = load_vault_cipher(session, kek, vault_id)
    old_blob = before.encrypt(b"4242424242424242", record_id="card_1", field="pan")

    with db.transaction() as session:
        assert rotate_data_key(session, kek, vault_id) == 2
    with db.transaction() as session:
        after = load_vault_cipher(session, kek, vault_id)
        changes = session.scalars(select(Change).where(Change.kind == "data-key")).all()

    assert [c.subject for c in changes] == [vault_id]
    assert after.current_version == 2
    assert after.decrypt(old_blob, record_id="card_1", field="pan") == b"4242424242424242"
    new_blob = after.encrypt(b"4242424242424242", record_id="card_1", field="pan")
    assert VaultCipher.version_of(new_blob) == 2
    with pytest.raises(DecryptionError):
        before.decrypt(new_blob, record_id="card_1", field="pan")


def test_rotation_of_a_vault_without_keys_creates_one_and_two(
    db: Database, kek: LocalFileKeyProvider
) -> None:
    _, vault_id = _vault(db)

    with db.transaction() as session:
        assert rotate_data_key(session, kek, vault_id) == 2
    with db.transaction() as session:
        assert rotate_data_key(session, kek, vault_id) == 3
        cipher = load_vault_cipher(session, kek, vault_id)

    assert cipher.versions == (1, 2, 3)


def test_vaults_have_independent_keys(db: Database, kek: LocalFileKeyProvider) -> None:
    _, vault_a = _vault(db)
    _, vault_b = _vault(db)
    with db.transaction() as session:
        a = load_vault_cipher(session, kek, vault_a)
        rotate_data_key(session, kek, vault_b)
        b = load_vault_cipher(session, kek, vault_b)

    assert a.current_version == 1 and b.current_version == 2
    blob = a.encrypt(b"x", record_id="r", field="f")
    with pytest.raises(DecryptionError):
        b.decrypt(blob, record_id="r", field="f")


def test_fingerprint_key_is_created_once_per_organization(
    db: Database, kek: LocalFileKeyProvider
) -> None:
    org_a, _ = _vault(db)
    org_b, _ = _vault(db)
    with db.transaction() as session:
        key_a = fingerprint_key(session, kek, org_a)
    with db.transaction() as session:
        again = fingerprint_key(session, kek, org_a)
        key_b = fingerprint_key(session, kek, org_b)
        row = session.get(WrappedSecret, f"fingerprint:{org_a}")

    assert len(key_a) == 32 and key_a == again
    assert key_a != key_b
    assert row is not None and key_a not in row.wrapped
    pan = Pan("4242424242424242")
    assert Fingerprinter(key_a).digest(pan) == Fingerprinter(again).digest(pan)
    assert Fingerprinter(key_a).digest(pan) != Fingerprinter(key_b).digest(pan)


def test_fingerprint_key_is_bound_to_its_name(db: Database, kek: LocalFileKeyProvider) -> None:
    org_a, _ = _vault(db)
    org_b, _ = _vault(db)
    with db.transaction() as session:
        fingerprint_key(session, kek, org_a)
        fingerprint_key(session, kek, org_b)
        row_a = session.get(WrappedSecret, f"fingerprint:{org_a}")
        row_b = session.get(WrappedSecret, f"fingerprint:{org_b}")
        assert row_a is not None and row_b is not None
        row_b.wrapped = row_a.wrapped  # an org's key copied to another org

    with db.sessions() as session, pytest.raises(DecryptionError):
        fingerprint_key(session, kek, org_b)


def _race(
    db: Database, first: Callable[[Session], T], second: Callable[[Session], T]
) -> tuple[T, T]:
    """Run ``second`` in another transaction while ``first``'s is still open."""
    results: dict[str, T] = {}
    errors: list[BaseException] = []

    def other() -> None:
        try:
            with db.transaction() as session:
                results["second"] = second(session)
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    with db.transaction() as session:
        results["first"] = first(session)
        session.flush()
        thread = threading.Thread(target=other)
        thread.start()
        time.sleep(0.3)  # the other insert now waits for this transaction
    thread.join(timeout=20)
    assert not thread.is_alive() and not errors, errors
    return results["first"], results["second"]


def test_concurrent_first_loads_converge_on_one_key(
    db: Database, kek: LocalFileKeyProvider
) -> None:
    _, vault_id = _vault(db)

    a, b = _race(
        db,
        lambda s: load_vault_cipher(s, kek, vault_id),
        lambda s: load_vault_cipher(s, kek, vault_id),
    )

    blob = a.encrypt(b"x", record_id="r", field="f")
    assert b.current_version == 1
    assert b.decrypt(blob, record_id="r", field="f") == b"x"


def test_concurrent_first_fingerprint_keys_converge(
    db: Database, kek: LocalFileKeyProvider
) -> None:
    org_id, _ = _vault(db)

    a, b = _race(
        db,
        lambda s: fingerprint_key(s, kek, org_id),
        lambda s: fingerprint_key(s, kek, org_id),
    )

    assert a == b


def test_rotate_and_rewrap_leave_every_card_readable_at_the_current_version(
    db: Database, kek: LocalFileKeyProvider
) -> None:
    org_id, vault_id = _vault(db)
    other_org, other_vault = _vault(db)
    pans = _add_cards(db, kek, org_id, vault_id, 7)
    other_pans = _add_cards(db, kek, other_org, other_vault, 2)
    with db.transaction() as session:
        rotate_data_key(session, kek, vault_id)
        rotate_data_key(session, kek, other_vault)
    pans.update(_add_cards(db, kek, org_id, vault_id, 2))  # already at version 2

    assert rewrap_cards(db, kek, vault_id, batch_size=3) == 7

    cards = _read_cards(db, kek, vault_id)
    assert {card_id: pan for card_id, (_, _, pan) in cards.items()} == pans
    assert {(col, blob) for col, blob, _ in cards.values()} == {(2, 2)}
    untouched = _read_cards(db, kek, other_vault)
    assert {(col, blob) for col, blob, _ in untouched.values()} == {(1, 1)}
    assert {card_id: pan for card_id, (_, _, pan) in untouched.items()} == other_pans


def test_rewrap_is_idempotent(db: Database, kek: LocalFileKeyProvider) -> None:
    org_id, vault_id = _vault(db)
    _add_cards(db, kek, org_id, vault_id, 4)
    with db.transaction() as session:
        rotate_data_key(session, kek, vault_id)

    assert rewrap_cards(db, kek, vault_id, batch_size=2) == 4
    assert rewrap_cards(db, kek, vault_id, batch_size=2) == 0
    assert rewrap_cards(db, kek, vault_id) == 0


def test_rewrap_moves_cards_across_several_rotations(
    db: Database, kek: LocalFileKeyProvider
) -> None:
    org_id, vault_id = _vault(db)
    pans = _add_cards(db, kek, org_id, vault_id, 2)
    with db.transaction() as session:
        rotate_data_key(session, kek, vault_id)
    pans.update(_add_cards(db, kek, org_id, vault_id, 2))
    with db.transaction() as session:
        rotate_data_key(session, kek, vault_id)

    assert rewrap_cards(db, kek, vault_id, batch_size=1) == 4

    cards = _read_cards(db, kek, vault_id)
    assert {(col, blob) for col, blob, _ in cards.values()} == {(3, 3)}
    assert {card_id: pan for card_id, (_, _, pan) in cards.items()} == pans


def test_rewrap_of_a_vault_without_cards_is_zero(db: Database, kek: LocalFileKeyProvider) -> None:
    _, vault_id = _vault(db)

    assert rewrap_cards(db, kek, vault_id) == 0
    with pytest.raises(ValueError):
        rewrap_cards(db, kek, vault_id, batch_size=0)


def test_rewrap_skips_a_card_that_does_not_decrypt(db: Database, kek: LocalFileKeyProvider) -> None:
    org_id, vault_id = _vault(db)
    pans = _add_cards(db, kek, org_id, vault_id, 3)
    broken, donor = sorted(pans)[:2]
    with db.transaction() as session:
        broken_card, donor_card = session.get(Card, broken), session.get(Card, donor)
        assert broken_card is not None and donor_card is not None
        broken_card.pan_encrypted = donor_card.pan_encrypted  # moved to another record
        rotate_data_key(session, kek, vault_id)

    assert rewrap_cards(db, kek, vault_id) == 2

    with db.sessions() as session:
        row = session.get(Card, broken)
    assert row is not None and row.data_key_version == 1
    assert rewrap_cards(db, kek, vault_id) == 0
