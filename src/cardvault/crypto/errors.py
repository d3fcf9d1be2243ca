"""Errors of the crypto layer. Messages never contain key material or plaintext."""


class CryptoError(Exception):
    """Base class of crypto errors."""


class DecryptionError(CryptoError):
    """A ciphertext failed authentication: tampered, moved, or under another key."""


class KeyUnavailableError(CryptoError):
    """The key-encryption key cannot be loaded."""
