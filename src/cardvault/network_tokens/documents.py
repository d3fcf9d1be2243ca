"""The network token's public document (the reference's field names, kept exactly)."""

from __future__ import annotations

from typing import Any

from cardvault.store.records import CardRecord, NetworkTokenRecord


def yyyy_mm(year: int | None, month: int | None) -> str | None:
    return None if year is None or month is None else f"{year:04d}-{month:02d}"


def token_out(token: NetworkTokenRecord, card: CardRecord | None) -> dict[str, Any]:
    """The reference's token object from a token and its card."""
    return {
        "id": token.id,
        "pan_alias": token.pan_alias,
        "network": token.network,
        "network_token_last4": token.token_last4,
        "expires_at": yyyy_mm(token.token_exp_year, token.token_exp_month),
        "state": token.state,
        "payment_account_reference": token.payment_account_reference,
        "failure_reason": token.failure_reason,
        "created_at": token.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": token.updated_at.isoformat().replace("+00:00", "Z"),
        "card": None
        if card is None
        else {
            "last4": card.last4,
            "bin": card.bin,
            "expires_at": yyyy_mm(card.exp_year, card.exp_month),
            "holder_info": card.holder_info,
        },
    }
