"""The card's public document: what the API answers for a card (never its PAN)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel

from cardvault.store.records import CardRecord


class CardOut(BaseModel):
    id: str
    pan_alias: str
    bin: str
    last4: str
    brand: str
    exp_month: int
    exp_year: int
    expires_at: str
    holder_info: dict[str, Any] | None
    fingerprint: str
    created_at: dt.datetime
    updated_at: dt.datetime


class CardPage(BaseModel):
    data: list[CardOut]
    next_cursor: str | None


def card_out(card: CardRecord) -> CardOut:
    """The document of a card."""
    return CardOut(
        id=card.id,
        pan_alias=card.pan_alias,
        bin=card.bin,
        last4=card.last4,
        brand=card.brand,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        expires_at=f"{card.exp_year:04d}-{card.exp_month:02d}",
        holder_info=card.holder_info,
        fingerprint=card.fingerprint[:16].hex(),
        created_at=card.created_at,
        updated_at=card.updated_at,
    )


def card_json(card: CardRecord) -> bytes:
    return card_out(card).model_dump_json().encode()
