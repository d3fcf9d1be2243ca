"""Event names and the event document every webhook and ``GET /events`` carries."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Protocol

EventName = Literal[
    "network_token.activated",
    "network_token.suspended",
    "network_token.updated",
    "network_token.deleted",
    "network_token.provisioning_failed",
    "card.updated",
]
EVENT_TYPES: tuple[str, ...] = (
    "network_token.activated",
    "network_token.suspended",
    "network_token.updated",
    "network_token.deleted",
    "network_token.provisioning_failed",
    "card.updated",
)


class CardFacts(Protocol):
    """What an event tells of a card (a card record has these and more)."""

    @property
    def id(self) -> str: ...
    @property
    def org_id(self) -> str: ...
    @property
    def vault_id(self) -> str: ...
    @property
    def pan_alias(self) -> str: ...
    @property
    def bin(self) -> str: ...
    @property
    def last4(self) -> str: ...
    @property
    def exp_month(self) -> int: ...
    @property
    def exp_year(self) -> int: ...
    @property
    def created_at(self) -> dt.datetime: ...
    @property
    def updated_at(self) -> dt.datetime: ...


class TokenFacts(Protocol):
    """What an event tells of a network token (a token record has these and more)."""

    @property
    def state(self) -> str: ...
    @property
    def token_last4(self) -> str | None: ...
    @property
    def payment_account_reference(self) -> str | None: ...
    @property
    def token_exp_month(self) -> int | None: ...
    @property
    def token_exp_year(self) -> int | None: ...
    @property
    def created_at(self) -> dt.datetime: ...
    @property
    def updated_at(self) -> dt.datetime: ...


def iso(moment: dt.datetime) -> str:
    """``2026-11-29T04:31:00.123456Z``: UTC with a ``Z``."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def details(token: TokenFacts | None, card: CardFacts) -> dict[str, Any]:
    """The event's ``details``: the token's and the card's public fields only (BIN and
    last four, never a PAN or more of the token number than its last four)."""
    dated: TokenFacts | CardFacts = token if token is not None else card
    return {
        "pan_alias": card.pan_alias,
        "network_token_last4": token.token_last4 if token is not None else None,
        "payment_account_reference": (
            token.payment_account_reference if token is not None else None
        ),
        "state": token.state if token is not None else None,
        "card_bin": card.bin,
        "card_last4": card.last4,
        "card_exp_month": card.exp_month,
        "card_exp_year": card.exp_year,
        "exp_month": token.token_exp_month if token is not None else None,
        "exp_year": token.token_exp_year if token is not None else None,
        "created_at": iso(dated.created_at),
        "updated_at": iso(dated.updated_at),
    }


def document(
    event_id: str, name: str, occurred_at: dt.datetime, token: TokenFacts | None, card: CardFacts
) -> dict[str, Any]:
    return {
        "id": event_id,
        "event": name,
        "occurred_at": iso(occurred_at),
        "org_id": card.org_id,
        "vault_id": card.vault_id,
        "details": details(token, card),
    }
