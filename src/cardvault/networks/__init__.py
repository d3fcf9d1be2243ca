"""Card networks: brand detection and token service providers (simulators).

Services reach a network only through :class:`TokenServiceProvider`, looked up in the
:class:`Providers` that :func:`providers` builds once per process from the settings.
"""

from cardvault.networks.iin import brand_of
from cardvault.networks.provider import (
    ACTIVE,
    DELETED,
    FAILED,
    PENDING,
    SUSPENDED,
    BrandNotSupported,
    CardNotAllowed,
    Cryptogram,
    Declined,
    InvalidTransition,
    NetworkUnavailable,
    NotActive,
    ProviderError,
    Providers,
    ProvisionRequest,
    Rejected,
    TokenServiceProvider,
    TokenStatus,
)
from cardvault.networks.registry import providers
from cardvault.networks.simulator import NetworkSimulator, simulators
from cardvault.networks.simulator_cards import TEST_CARDS, Outcome

__all__ = [
    "ACTIVE",
    "DELETED",
    "FAILED",
    "PENDING",
    "SUSPENDED",
    "TEST_CARDS",
    "BrandNotSupported",
    "CardNotAllowed",
    "Cryptogram",
    "Declined",
    "InvalidTransition",
    "NetworkSimulator",
    "NetworkUnavailable",
    "NotActive",
    "Outcome",
    "ProviderError",
    "Providers",
    "ProvisionRequest",
    "Rejected",
    "TokenServiceProvider",
    "TokenStatus",
    "brand_of",
    "providers",
    "simulators",
]
