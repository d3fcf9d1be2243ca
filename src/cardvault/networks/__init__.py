"""Card networks: brand detection and token service providers (simulators)."""

from cardvault.networks.iin import brand_of

__all__ = ["brand_of"]
