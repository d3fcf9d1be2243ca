"""Whether a key-encryption key is this installation's: it must unwrap what the
database holds under it.

A node given another key (another installation's, or a new one made because its file
was missing) would otherwise fail at its first decryption with a bare
``DecryptionError``; these checks say at start-up, in one line, which file is wrong.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.crypto import DecryptionError, KeyProvider, KeyRing, unwrap_data_key
from cardvault.crypto.signing import StoredKey
from cardvault.keys.services import PEPPER, load_pepper, secret_aad
from cardvault.store.models import DataKey, SigningKey, WrappedSecret

__all__ = ["KeyMismatch", "KeyMissing", "has_installation_keys", "verify_kek"]


class KeyMismatch(Exception):
    """The key-encryption key does not unwrap the installation's keys. The message is
    safe to show: it names the key's place, never key material."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(
            f"the key-encryption key at {where} does not match this database (it cannot "
            f"decrypt the installation's {what}); every node needs the same key"
        )
        self.where, self.what = where, what


class KeyMissing(Exception):
    """The database holds keys made under a key-encryption key, and there is none."""

    def __init__(self, where: str) -> None:
        super().__init__(
            f"there is no key-encryption key at {where}, but this database's keys were "
            "made under one: put the key the other nodes use (or the one kept apart from "
            "the backup) there; every node needs the same key"
        )
        self.where = where


def has_installation_keys(session: Session) -> bool:
    """Whether the database holds anything wrapped by a key-encryption key."""
    return (
        session.get(WrappedSecret, PEPPER) is not None
        or session.scalar(select(SigningKey.kid).limit(1)) is not None
    )


def verify_kek(session: Session, kek: KeyProvider, *, where: str, every_key: bool = False) -> None:
    """Raises :class:`KeyMismatch` unless ``kek`` unwraps every signing key and the
    client-secret pepper (a start-up's check: a few unwraps). With ``every_key``, also
    every other wrapped secret and every vault's data keys (a restore's check: the
    whole installation is readable). A database without keys passes."""
    for row in session.scalars(select(SigningKey)):
        stored = StoredKey(
            row.kid, row.alg, row.public_jwk, row.private_key_wrapped, row.activates_at, None
        )
        try:
            KeyRing([stored], kek, retention=dt.timedelta(0), allowed_algs=[row.alg])
        except DecryptionError:
            raise KeyMismatch(where, "signing key") from None
    try:
        if session.get(WrappedSecret, PEPPER) is not None:
            load_pepper(session, kek)
    except DecryptionError:
        raise KeyMismatch(where, "client-secret pepper") from None
    if every_key:
        _verify_the_rest(session, kek, where)


def _verify_the_rest(session: Session, kek: KeyProvider, where: str) -> None:
    for name, wrapped in session.execute(select(WrappedSecret.name, WrappedSecret.wrapped)):
        try:
            kek.unwrap(wrapped, secret_aad(name))
        except DecryptionError:
            raise KeyMismatch(where, f"wrapped secret {name}") from None
    rows = session.execute(select(DataKey.vault_id, DataKey.version, DataKey.wrapped))
    for vault_id, version, wrapped in rows:
        try:
            unwrap_data_key(kek, wrapped, vault_id, version)
        except DecryptionError:
            raise KeyMismatch(where, f"data key of vault {vault_id}") from None
