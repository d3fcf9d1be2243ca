"""The records of the vault's aggregates: one frozen type per table row, wherever the
row is read, made or written (:class:`CardRecord`, :class:`NetworkTokenRecord`).

The executor (:mod:`cardvault.store.direct`) makes them from Core rows; the domain
packages (``cards``, ``network_tokens``, ``bulk``, ``events``) pass them around and
make changed copies (``dataclasses.replace``) that their services write. They live
here, below every domain package, because the domains need each other's: provisioning
reads cards, and a card's ``card.updated`` event carries its live token.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, TypeVar, dataclass_transform

from sqlalchemy import Column, Select, bindparam, select

from cardvault.store.direct import Direct, Source
from cardvault.store.models import Base

CARDS = Base.metadata.tables["cards"]

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def record(cls: type[_T]) -> type[_T]:
    """A record type: frozen for the type checker, which refuses any assignment to a
    field; at run time a plain slotted dataclass, because a frozen one costs eight
    times as much to build (a checked ``object.__setattr__`` per field), and two are
    built for every network token read."""
    return dataclasses.dataclass(slots=True)(cls)


@record
class CardRecord:
    """A row of ``cards``, as the executor reads it (:data:`CARD_COLUMNS` in this
    order) and as enrolment makes it. Frozen: a change is a new record
    (``dataclasses.replace``) written by the service that makes it."""

    id: str
    vault_id: str
    org_id: str
    pan_alias: str
    fingerprint: bytes
    pan_encrypted: bytes
    data_key_version: int
    bin: str
    last4: str
    brand: str
    exp_month: int
    exp_year: int
    holder_info: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime

    def __repr__(self) -> str:  # never the encrypted PAN, nor the holder's details
        return f"CardRecord(id={self.id!r}, pan_alias={self.pan_alias!r}, last4={self.last4!r})"

    def row(self) -> dict[str, Any]:
        """The record's columns by name, to insert."""
        return {name: getattr(self, name) for name in CARD_FIELDS}


CARD_FIELDS: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(CardRecord))
CARD_COLUMNS: tuple[Column[Any], ...] = tuple(CARDS.c[name] for name in CARD_FIELDS)


def select_cards() -> Select[Any]:
    """``SELECT`` of the card columns, in the record's order (add ``where`` clauses)."""
    return select(*CARD_COLUMNS)


TOKENS = Base.metadata.tables["network_tokens"]


@record
class NetworkTokenRecord:
    """A row of ``network_tokens``, as the executor reads it (:data:`TOKEN_COLUMNS` in
    this order) and as provisioning makes it. Frozen: a change is a new record
    (``dataclasses.replace``) written by the service that makes it."""

    id: str
    vault_id: str
    org_id: str
    card_id: str
    live_card_id: str | None
    pan_alias: str
    network: str
    provider_id: str
    state: str
    token_encrypted: bytes | None
    token_last4: str | None
    token_exp_month: int | None
    token_exp_year: int | None
    payment_account_reference: str | None
    failure_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    def __repr__(self) -> str:  # never the encrypted token number
        return f"NetworkTokenRecord(id={self.id!r}, state={self.state!r})"

    def row(self) -> dict[str, Any]:
        """The record's columns by name, to insert."""
        return {name: getattr(self, name) for name in TOKEN_FIELDS}


TOKEN_FIELDS: tuple[str, ...] = tuple(
    field.name for field in dataclasses.fields(NetworkTokenRecord)
)
TOKEN_COLUMNS: tuple[Column[Any], ...] = tuple(TOKENS.c[name] for name in TOKEN_FIELDS)


def select_tokens() -> Select[Any]:
    """``SELECT`` of the token columns, in the record's order (add ``where`` clauses)."""
    return select(*TOKEN_COLUMNS)


# The card's live token (at most one: ``live_card_id`` is unique): cards read it too
# (``card.updated`` carries it), network tokens to provision one per card.
LIVE_TOKEN = Direct(
    select_tokens().where(TOKENS.c.live_card_id == bindparam("card_id")), NetworkTokenRecord
)


def live_token_of_card(source: Source, card_id: str) -> NetworkTokenRecord | None:
    """The card's live (not DELETED or FAILED) token, or None."""
    return LIVE_TOKEN.first(source, {"card_id": card_id})
