"""Card enrolment and management. Plain values in, models out; no HTTP here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from cardvault.cards.errors import CardNotFound, InvalidCard
from cardvault.crypto import ordered_id, random_id
from cardvault.crypto.envelope import VaultCipher
from cardvault.crypto.pan import Pan
from cardvault.events import emit
from cardvault.networks import brand_of
from cardvault.store.db import Database
from cardvault.store.direct import Bound, Direct, Source
from cardvault.store.models import Base, Card, NetworkToken
from cardvault.store.paging import Cursor, newest_first
from cardvault.store.types import utcnow

PAN_FIELD = "pan"


@dataclass(frozen=True)
class Expiry:
    month: int
    year: int

    @property
    def expires_at(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def normalize_expiry(month: int, year: int, today: dt.date) -> Expiry:
    """Month 1-12 and a two- or four-digit year; an expired card is refused."""
    if not 1 <= month <= 12:
        raise InvalidCard("exp_month: must be between 1 and 12", field="exp_month")
    if 0 <= year <= 99:
        year += 2000
    if not 2000 <= year <= 2099:
        raise InvalidCard("exp_year: must be a two- or four-digit year", field="exp_year")
    if (year, month) < (today.year, today.month):
        raise InvalidCard("exp_year: the card has expired", field="exp_year")
    return Expiry(month, year)


@dataclass(slots=True)
class CardRecord:
    """A card row outside any ORM session: what enrolment looks up and creates.

    Building an ORM ``Card`` costs tens of microseconds of change tracking that a row
    read or written with Core never uses. The fields are the ``cards`` columns.
    """

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


AnyCard = Card | CardRecord


# Hot statements: prebuilt Core, run on the driver (see store/direct.py).
_CARD_COLUMNS_SELECT = select(*Card.__table__.columns)
CARD_BY_FINGERPRINT = Direct(
    _CARD_COLUMNS_SELECT.where(
        Card.vault_id == bindparam("vault_id"), Card.fingerprint == bindparam("fingerprint")
    )
)
CARD_BY_KEY = Direct(
    _CARD_COLUMNS_SELECT.where(
        Card.vault_id == bindparam("vault_id"),
        or_(Card.id == bindparam("key"), Card.pan_alias == bindparam("key")),
    )
)
INSERT_CARD = Direct(insert(Base.metadata.tables["cards"]))
# Rows, not ORM objects: the same on a Session and on a Connection.
_LIVE_TOKEN_OF_CARD = select(NetworkToken.__table__).where(
    NetworkToken.live_card_id == bindparam("card_id")
)


def find_by_pan(db: Database, vault_id: str, fingerprint: bytes) -> CardRecord | None:
    """The vault's card with this PAN fingerprint, or None."""
    row = CARD_BY_FINGERPRINT.first(db, {"vault_id": vault_id, "fingerprint": fingerprint})
    return None if row is None else CardRecord(*row)


_CARDS_BY_ALIASES = Direct(
    _CARD_COLUMNS_SELECT.where(
        Card.vault_id == bindparam("vault_id"),
        Card.pan_alias.in_(bindparam("aliases", expanding=True)),
    )
)
_CARDS_BY_FINGERPRINTS = Direct(
    _CARD_COLUMNS_SELECT.where(
        Card.vault_id == bindparam("vault_id"),
        Card.fingerprint.in_(bindparam("fingerprints", expanding=True)),
    )
)


def find_by_pans(source: Source, vault_id: str, fingerprints: Sequence[bytes]) -> list[Any]:
    """The vault's cards with these PAN fingerprints (rows), in one query."""
    return _CARDS_BY_FINGERPRINTS.all(source, {"vault_id": vault_id, "fingerprints": fingerprints})


def find_by_aliases(source: Source, vault_id: str, aliases: Sequence[str]) -> list[Any]:
    """The vault's cards with these pan_aliases (rows), in one query."""
    return _CARDS_BY_ALIASES.all(source, {"vault_id": vault_id, "aliases": aliases})


def read_card(db: Database, vault_id: str, key: str) -> Any:
    """A row of the vault's card by id or pan_alias (for reading only)."""
    row = CARD_BY_KEY.first(db, {"vault_id": vault_id, "key": key})
    if row is None:
        raise CardNotFound(f"card {key} not found")
    return row


def new_card(
    *,
    vault_id: str,
    org_id: str,
    pan: Pan,
    expiry: Expiry,
    holder_info: dict[str, Any] | None,
    cipher: VaultCipher,
    fingerprint: bytes,
) -> CardRecord:
    """A card not yet stored: the PAN encrypted and bound to the new card's id."""
    card_id = ordered_id("card_")
    now = utcnow()
    return CardRecord(
        id=card_id,
        vault_id=vault_id,
        org_id=org_id,
        pan_alias=random_id("pan_", 24),
        fingerprint=fingerprint,
        pan_encrypted=cipher.encrypt(pan.reveal().encode(), record_id=card_id, field=PAN_FIELD),
        data_key_version=cipher.current_version,
        bin=pan.bin,
        last4=pan.last4,
        brand=brand_of(pan.reveal()),
        exp_month=expiry.month,
        exp_year=expiry.year,
        holder_info=holder_info,
        created_at=now,
        updated_at=now,
    )


_CARD_COLUMNS = tuple(c.key for c in Card.__table__.columns)


def insert_card(conn: Connection, card: CardRecord | Bound) -> None:
    """Store a card made by :func:`new_card` (one INSERT; a PAN already in the vault
    raises ``IntegrityError`` through the unique fingerprint), or bound by
    :func:`bind_card`."""
    INSERT_CARD.execute(conn, card if isinstance(card, Bound) else [_card_row(card)])


def bind_card(source: Source, card: CardRecord) -> Bound:
    """The INSERT of a new card, bound ahead of its write transaction."""
    return INSERT_CARD.bind(source, [_card_row(card)])


def _card_row(card: CardRecord) -> dict[str, Any]:
    return {name: getattr(card, name) for name in _CARD_COLUMNS}


def insert_cards(conn: Connection, cards: Sequence[CardRecord]) -> None:
    """Store several cards made by :func:`new_card` with one multi-row INSERT."""
    if cards:
        rows = [_card_row(card) for card in cards]
        INSERT_CARD.execute(conn, rows)


def extends(card: AnyCard, expiry: Expiry) -> bool:
    """Whether enrolling the card again with ``expiry`` moves its expiry forward (the
    rule of every enrolment: a known PAN keeps its card, whose expiry only grows)."""
    return (expiry.year, expiry.month) > (card.exp_year, card.exp_month)


def extend_expiry(conn: Connection, card: AnyCard, expiry: Expiry) -> bool:
    """Move the card's expiry forward if ``expiry`` is later; True if it changed."""
    if not extends(card, expiry):
        return False
    now = utcnow()
    conn.execute(
        update(Card)
        .where(Card.id == card.id)
        .values(exp_month=expiry.month, exp_year=expiry.year, updated_at=now)
    )
    card.exp_month, card.exp_year, card.updated_at = expiry.month, expiry.year, now
    announce_update(conn, card)
    return True


def announce_update(db: Session | Connection, card: AnyCard) -> None:
    """Write ``card.updated`` (with the card's live token, if any) in the caller's
    transaction."""
    token = db.execute(_LIVE_TOKEN_OF_CARD, {"card_id": card.id}).first()
    emit(db, "card.updated", card, token)


def get_card(session: Session, vault_id: str, key: str) -> Card:
    """The vault's card by id or pan_alias; other vaults' cards do not exist here."""
    card = session.scalar(
        select(Card).where(Card.vault_id == vault_id, or_(Card.id == key, Card.pan_alias == key))
    )
    if card is None:
        raise CardNotFound(f"card {key} not found")
    return card


def list_cards(
    session: Session, vault_id: str, *, limit: int, cursor: Cursor | None
) -> tuple[Sequence[Card], Cursor | None]:
    query = select(Card).where(Card.vault_id == vault_id)
    return newest_first(session, Card, query, limit=limit, cursor=cursor)


def update_card(
    session: Session,
    vault_id: str,
    key: str,
    *,
    expiry: Expiry | None,
    holder_info: dict[str, Any] | None,
) -> Card:
    """Change the card; a new expiry is announced as ``card.updated``."""
    card = get_card(session, vault_id, key)
    if holder_info is not None:
        card.holder_info = holder_info
    card.updated_at = utcnow()
    if expiry is not None and (expiry.month, expiry.year) != (card.exp_month, card.exp_year):
        card.exp_month, card.exp_year = expiry.month, expiry.year
        announce_update(session, card)
    return card


def delete_card(session: Session, vault_id: str, key: str) -> Card:
    """Delete the card and its encrypted PAN; returns the deleted row's last values."""
    card = get_card(session, vault_id, key)
    session.delete(card)
    return card


def reveal_pan(card: Card, cipher: VaultCipher) -> Pan:
    """The card's PAN, decrypted; only for sending to a token service provider."""
    return Pan(cipher.decrypt(card.pan_encrypted, record_id=card.id, field=PAN_FIELD).decode())
