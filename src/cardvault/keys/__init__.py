"""Installation keys: the client-secret pepper and the access-token signing keys."""

from cardvault.keys.services import (
    ensure_installation_keys,
    load_keyring,
    load_pepper,
    rotate_signing_key,
)

__all__ = ["ensure_installation_keys", "load_keyring", "load_pepper", "rotate_signing_key"]
