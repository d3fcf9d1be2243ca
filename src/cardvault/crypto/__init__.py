"""The only package that touches keys. Nothing else imports ``cryptography``."""

from cardvault.crypto.errors import CryptoError, DecryptionError, KeyUnavailableError
from cardvault.crypto.kek import KeyProvider, LocalFileKeyProvider
from cardvault.crypto.passwords import generate_password, hash_password, verify_password
from cardvault.crypto.secrets import (
    ClientSecret,
    SecretHasher,
    generate_client_id,
    generate_client_secret,
    random_id,
)
from cardvault.crypto.signing import KeyRing, SigningKeyMaterial, TokenInvalid, generate_signing_key

__all__ = [
    "ClientSecret",
    "CryptoError",
    "DecryptionError",
    "KeyProvider",
    "KeyRing",
    "KeyUnavailableError",
    "LocalFileKeyProvider",
    "SecretHasher",
    "SigningKeyMaterial",
    "TokenInvalid",
    "generate_client_id",
    "generate_client_secret",
    "generate_password",
    "generate_signing_key",
    "hash_password",
    "random_id",
    "verify_password",
]
