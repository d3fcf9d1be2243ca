"""The card record: one type for a card wherever it is read, made or written."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import Column, Select, select

from cardvault.store.models import Base

CARDS = Base.metadata.tables["cards"]


@dataclasses.dataclass(frozen=True, slots=True)
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
        return {name: getattr(self, name) for name in FIELDS}


FIELDS: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(CardRecord))
CARD_COLUMNS: tuple[Column[Any], ...] = tuple(CARDS.c[name] for name in FIELDS)


def select_cards() -> Select[Any]:
    """``SELECT`` of the card columns, in the record's order (add ``where`` clauses)."""
    return select(*CARD_COLUMNS)
