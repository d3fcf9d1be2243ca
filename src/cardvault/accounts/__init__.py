"""Organizations, vaults, members, service accounts and people. No HTTP here."""

from cardvault.accounts.errors import AccountsError, NotFound, ValidationFailed
from cardvault.accounts.scopes import ALL_SCOPES, CARD_SCOPES, MANAGEMENT_SCOPES, satisfies

__all__ = [
    "ALL_SCOPES",
    "CARD_SCOPES",
    "MANAGEMENT_SCOPES",
    "AccountsError",
    "NotFound",
    "ValidationFailed",
    "satisfies",
]
