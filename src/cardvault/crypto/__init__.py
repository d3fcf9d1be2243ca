"""The only package that touches keys. Nothing else imports ``cryptography``."""

from cardvault.crypto.envelope import (
    Fingerprinter,
    VaultCipher,
    new_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from cardvault.crypto.errors import CryptoError, DecryptionError, KeyUnavailableError
from cardvault.crypto.kek import KeyProvider, LocalFileKeyProvider, copy_key_file, same_key_file
from cardvault.crypto.pan import (
    InvalidPan,
    Pan,
    find_pan,
    looks_like_pan,
    luhn_check_digit,
    luhn_valid,
    mask_pans,
)
from cardvault.crypto.passwords import generate_password, hash_password, verify_password
from cardvault.crypto.secrets import (
    ClientSecret,
    SecretHasher,
    generate_client_id,
    generate_client_secret,
    generate_token,
    generate_user_code,
    ordered_id,
    random_id,
)
from cardvault.crypto.signing import KeyRing, SigningKeyMaterial, TokenInvalid, generate_signing_key

__all__ = [
    "ClientSecret",
    "CryptoError",
    "DecryptionError",
    "Fingerprinter",
    "InvalidPan",
    "KeyProvider",
    "KeyRing",
    "KeyUnavailableError",
    "LocalFileKeyProvider",
    "Pan",
    "SecretHasher",
    "SigningKeyMaterial",
    "TokenInvalid",
    "VaultCipher",
    "copy_key_file",
    "find_pan",
    "generate_client_id",
    "generate_client_secret",
    "generate_password",
    "generate_signing_key",
    "generate_token",
    "generate_user_code",
    "hash_password",
    "looks_like_pan",
    "luhn_check_digit",
    "luhn_valid",
    "mask_pans",
    "new_data_key",
    "ordered_id",
    "random_id",
    "same_key_file",
    "unwrap_data_key",
    "verify_password",
    "wrap_data_key",
]
