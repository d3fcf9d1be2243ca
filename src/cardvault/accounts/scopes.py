"""Scopes a service account can hold, and how they imply each other."""

from __future__ import annotations

from collections.abc import Iterable

CARD_SCOPES = (
    "cards:write",
    "cards:read",
    "network-tokens:write",
    "network-tokens:read",
    "webhooks:write",
    "webhooks:read",
)
MANAGEMENT_SCOPES = (
    "organization:admin",
    "service-accounts:write",
    "service-accounts:read",
    "members:write",
    "members:read",
    "vaults:write",
    "vaults:read",
)
ALL_SCOPES = CARD_SCOPES + MANAGEMENT_SCOPES


def is_known(scope: str) -> bool:
    return scope in ALL_SCOPES


def satisfies(granted: Iterable[str], required: str) -> bool:
    """True if ``granted`` covers ``required``.

    ``X:write`` implies ``X:read``; ``organization:admin`` implies every management scope.
    """
    held = set(granted)
    if required in held:
        return True
    area, _, level = required.partition(":")
    if level == "read" and f"{area}:write" in held:
        return True
    return required in MANAGEMENT_SCOPES and "organization:admin" in held
