"""Per-worker cache of vault ciphers and organization fingerprinters.

Keys are loaded (and created on first use) in their own committed transaction, so a
key that encrypted data is always in the database. A ``data-key`` change (a rotation)
drops the vault's cipher on every worker; the next use loads the new version.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cardvault.crypto import KeyProvider
from cardvault.crypto.envelope import Fingerprinter, VaultCipher
from cardvault.keys.data_keys import fingerprint_key, load_vault_cipher
from cardvault.store.db import Database
from cardvault.sync.changes import ChangeEvent

T = TypeVar("T")


class VaultKeys:
    def __init__(self, db: Database, kek: KeyProvider) -> None:
        self._db = db
        self._kek = kek
        self._ciphers: dict[str, VaultCipher] = {}
        self._fingerprinters: dict[str, Fingerprinter] = {}

    def _load(self, load: Callable[[Session], T]) -> T:
        for attempt in (1, 2):
            try:
                with self._db.transaction() as session:
                    return load(session)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def cipher(self, vault_id: str) -> VaultCipher:
        cipher = self._ciphers.get(vault_id)
        if cipher is None:
            cipher = self._load(lambda s: load_vault_cipher(s, self._kek, vault_id))
            self._ciphers[vault_id] = cipher
        return cipher

    def fingerprinter(self, org_id: str) -> Fingerprinter:
        found = self._fingerprinters.get(org_id)
        if found is None:
            found = Fingerprinter(self._load(lambda s: fingerprint_key(s, self._kek, org_id)))
            self._fingerprinters[org_id] = found
        return found

    def apply(self, events: Sequence[ChangeEvent]) -> None:
        """Change-feed handler: forget ciphers of vaults whose data key changed."""
        for event in events:
            if event.kind == "data-key":
                self._ciphers.pop(event.subject, None)
