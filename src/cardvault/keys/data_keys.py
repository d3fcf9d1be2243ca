"""Vault data keys (versioned, wrapped by the KEK) and per-organization fingerprint keys.

A vault's newest data key version seals new records; every older version still opens
what it sealed until :func:`rewrap_cards` has moved those records to the newest one.
Workers cache a :class:`~cardvault.crypto.VaultCipher` per vault and reload it when a
``data-key`` change for that vault arrives on the change feed.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cardvault.crypto import (
    DecryptionError,
    KeyProvider,
    VaultCipher,
    new_data_key,
    random_id,
    unwrap_data_key,
    wrap_data_key,
)
from cardvault.keys.services import secret_aad
from cardvault.store.changes import publish_change
from cardvault.store.db import Database, insert_if_absent
from cardvault.store.models import Base, Card, DataKey, Vault, WrappedSecret

log = logging.getLogger(__name__)

DATA_KEY_CHANGE = "data-key"
PAN_FIELD = "pan"
FINGERPRINT_KEY_BYTES = 32


class UnknownVault(LookupError):
    """No vault has this id. The message is safe to show."""

    def __init__(self, vault_id: str) -> None:
        super().__init__(f"vault {vault_id} does not exist")
        self.vault_id = vault_id


def _require_vault(session: Session, vault_id: str) -> None:
    if session.scalar(select(Vault.id).where(Vault.id == vault_id)) is None:
        raise UnknownVault(vault_id)


def _insert_if_absent(session: Session, model: type[Base], values: dict[str, Any]) -> None:
    """INSERT that does nothing if a unique constraint already holds such a row (the
    row read afterwards is the winner's: see :func:`cardvault.store.db.insert_if_absent`)."""
    table = Base.metadata.tables[model.__tablename__]
    insert_if_absent(session, table, values)


def _latest_version(session: Session, vault_id: str) -> int:
    latest = session.scalar(select(func.max(DataKey.version)).where(DataKey.vault_id == vault_id))
    return int(latest or 0)


def _new_key_row(kek: KeyProvider, vault_id: str, version: int) -> dict[str, Any]:
    return {
        "id": random_id("dk_"),
        "vault_id": vault_id,
        "version": version,
        "wrapped": wrap_data_key(kek, new_data_key(), vault_id, version),
    }


def _ensure_first_key(session: Session, kek: KeyProvider, vault_id: str) -> None:
    """Give a vault without data keys its version 1; a concurrent creator may win."""
    if _latest_version(session, vault_id) == 0:
        _require_vault(session, vault_id)
        _insert_if_absent(session, DataKey, _new_key_row(kek, vault_id, 1))


def create_data_key(session: Session, kek: KeyProvider, vault_id: str) -> int:
    """Add the vault's next data key version (1 if it has none) and return it.

    Raises :class:`UnknownVault`. Two transactions adding a version to the same vault
    at once collide on ``uq_data_keys_vault_version``: the later one's flush or commit
    raises ``IntegrityError`` and nothing of it is written.
    """
    _require_vault(session, vault_id)
    version = _latest_version(session, vault_id) + 1
    session.add(DataKey(**_new_key_row(kek, vault_id, version)))
    session.flush()
    return version


def _cipher(session: Session, kek: KeyProvider, vault_id: str) -> VaultCipher | None:
    rows = session.execute(
        select(DataKey.version, DataKey.wrapped).where(DataKey.vault_id == vault_id)
    ).all()
    if not rows:
        return None
    keys = {r.version: unwrap_data_key(kek, r.wrapped, vault_id, r.version) for r in rows}
    return VaultCipher(vault_id, keys, max(keys))


def load_vault_cipher(session: Session, kek: KeyProvider, vault_id: str) -> VaultCipher:
    """Every data key of the vault; the highest version seals new records.

    A vault without keys gets version 1 first, inside the caller's transaction (the
    caller commits); concurrent first uses converge on one key. Raises
    :class:`UnknownVault`, or :class:`~cardvault.crypto.DecryptionError` if a stored
    key does not unwrap under ``kek``.
    """
    cipher = _cipher(session, kek, vault_id)
    if cipher is None:
        _ensure_first_key(session, kek, vault_id)
        cipher = _cipher(session, kek, vault_id)
    if cipher is None:  # pragma: no cover - the insert above or a concurrent one exists
        raise LookupError(f"vault {vault_id} has no data key")
    return cipher


def rotate_data_key(session: Session, kek: KeyProvider, vault_id: str) -> int:
    """Add a new data key version that seals from now on; returns it.

    A vault without keys gets version 1 first, so the returned version is always newer
    than any key that could have sealed a record before the call. Every worker reloads
    the vault's cipher once the caller commits. Raises :class:`UnknownVault`.
    """
    _ensure_first_key(session, kek, vault_id)
    version = create_data_key(session, kek, vault_id)
    publish_change(session, DATA_KEY_CHANGE, vault_id)
    return version


def _wrapped_secret(session: Session, name: str) -> bytes | None:
    return session.scalar(select(WrappedSecret.wrapped).where(WrappedSecret.name == name))


def fingerprint_key(session: Session, kek: KeyProvider, org_id: str) -> bytes:
    """The organization's 32-byte PAN fingerprint key, created on first use.

    Stored wrapped in ``wrapped_secrets`` as ``fingerprint:<org_id>`` (the associated
    data binds that name). Concurrent first uses converge on one key: the insert does
    nothing if another transaction created it, and the stored key is read back.
    Raises :class:`~cardvault.crypto.DecryptionError` if it does not unwrap.
    """
    name = f"fingerprint:{org_id}"
    wrapped = _wrapped_secret(session, name)
    if wrapped is None:
        fresh = kek.wrap(secrets.token_bytes(FINGERPRINT_KEY_BYTES), secret_aad(name))
        _insert_if_absent(session, WrappedSecret, {"name": name, "wrapped": fresh})
        wrapped = _wrapped_secret(session, name)
    if wrapped is None:  # pragma: no cover - the insert above or a concurrent one exists
        raise LookupError(f"fingerprint key of {org_id} is missing")
    key = kek.unwrap(wrapped, secret_aad(name))
    if len(key) != FINGERPRINT_KEY_BYTES:
        raise DecryptionError("fingerprint key has the wrong length")
    return key


def _rewrap_one(session: Session, cipher: VaultCipher, card_id: str, blob: bytes) -> int:
    """Re-seal one card's PAN under the current key; 1 if written, 0 if skipped."""
    try:
        pan = cipher.decrypt(blob, record_id=card_id, field=PAN_FIELD)
    except DecryptionError:
        log.warning("card %s of vault %s does not decrypt; left as it is", card_id, cipher.vault_id)
        return 0
    sealed = cipher.encrypt(pan, record_id=card_id, field=PAN_FIELD)
    result = session.connection().execute(
        update(Card)
        .where(Card.id == card_id, Card.pan_encrypted == blob)
        .values(pan_encrypted=sealed, data_key_version=cipher.current_version)
    )
    return int(result.rowcount)


def rewrap_cards(db: Database, kek: KeyProvider, vault_id: str, *, batch_size: int = 500) -> int:
    """Re-seal every card of the vault still under an older data key; returns how many.

    Runs while the server serves: each batch of ``batch_size`` cards (in primary-key
    order) is its own short transaction that re-reads its rows, and a card is written
    only if its ciphertext is still the one that was read, so a concurrent change is
    never overwritten (a later run picks it up, as it does cards that a worker which
    had not yet reloaded its cipher sealed with the old key). The old keys stay, so
    every card stays readable throughout. A card that does not decrypt is logged by id
    and left alone. A second run returns 0. Raises :class:`UnknownVault`.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    with db.transaction() as session:
        cipher = load_vault_cipher(session, kek, vault_id)
    total, after = 0, ""
    while True:
        with db.transaction() as session:
            if _latest_version(session, vault_id) != cipher.current_version:
                cipher = load_vault_cipher(session, kek, vault_id)  # rotated meanwhile
            rows = session.execute(
                select(Card.id, Card.pan_encrypted)
                .where(
                    Card.vault_id == vault_id,
                    Card.data_key_version < cipher.current_version,
                    Card.id > after,
                )
                .order_by(Card.id)
                .limit(batch_size)
            ).all()
            for row in rows:
                total += _rewrap_one(session, cipher, row.id, row.pan_encrypted)
        if len(rows) < batch_size:
            return total
        after = rows[-1].id
