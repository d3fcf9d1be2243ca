"""Which token service provider answers for each card brand, chosen by settings.

The one place that names an implementation of
:class:`~cardvault.networks.provider.TokenServiceProvider`: the runtime calls
:func:`providers` once per process, and the services reach a network only through
the :class:`~cardvault.networks.provider.Providers` it returns.
"""

from __future__ import annotations

from typing import Literal

from cardvault.networks.provider import Providers
from cardvault.networks.simulator import simulators

# ``simulator``: the built-in simulators (visa, mastercard, amex, discover). A real
# network's adapter would be one more choice here.
Backend = Literal["simulator"]


def providers(backend: Backend = "simulator") -> Providers:
    """The providers of the configured backend (``Settings.networks``)."""
    if backend == "simulator":
        return Providers(simulators())
    raise ValueError(f"unknown networks backend {backend!r}")


__all__ = ["Backend", "providers"]
