"""Installation keys: the client-secret pepper and the access-token signing keys."""

from cardvault.keys.custody import KeyMismatch, KeyMissing, has_installation_keys, verify_kek
from cardvault.keys.data_keys import (
    UnknownVault,
    create_data_key,
    fingerprint_key,
    load_vault_cipher,
    rewrap_cards,
    rotate_data_key,
)
from cardvault.keys.services import (
    ensure_installation_keys,
    load_keyring,
    load_pepper,
    rotate_signing_key,
)

__all__ = [
    "KeyMismatch",
    "KeyMissing",
    "UnknownVault",
    "create_data_key",
    "ensure_installation_keys",
    "fingerprint_key",
    "has_installation_keys",
    "load_keyring",
    "load_pepper",
    "load_vault_cipher",
    "rewrap_cards",
    "rotate_data_key",
    "rotate_signing_key",
    "verify_kek",
]
