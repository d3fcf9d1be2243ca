"""cardvault: a self-hosted card vault and network-tokenization service."""

__version__ = "0.1.0"

__all__ = ["__version__"]
