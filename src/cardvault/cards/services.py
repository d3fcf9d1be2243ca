"""Cards: lookups, storage and changes of card records. Plain values in, records out;
no HTTP here (enrolment, which composes these, is :mod:`cardvault.cards.enrolment`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, or_, update
from sqlalchemy.orm import Session

from cardvault.cards.errors import CardNotFound, InvalidCard
from cardvault.crypto import ordered_id, random_id
from cardvault.crypto.envelope import VaultCipher
from cardvault.crypto.pan import Pan
from cardvault.events import emit
from cardvault.networks import brand_of
from cardvault.store.db import Database
from cardvault.store.direct import Bound, Direct, Source
from cardvault.store.paging import Cursor, NewestFirst
from cardvault.store.records import CARDS, CardRecord, live_token_of_card, select_cards
from cardvault.store.types import utcnow

__all__ = [
    "CardRecord",
    "Expiry",
    "announce_update",
    "aread_card",
    "bind_card",
    "delete_card",
    "extend_expiry",
    "extends",
    "find_by_aliases",
    "find_by_pan",
    "find_by_pans",
    "get_card",
    "insert_card",
    "insert_cards",
    "list_cards",
    "new_card",
    "normalize_expiry",
    "read_card",
    "reveal_pan",
    "update_card",
    "with_expiry",
    "write_expiry",
]

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


# Prebuilt statements, run by the executor (store/direct.py): every read of a card
# makes a CardRecord.
_BY_KEY = or_(CARDS.c.id == bindparam("key"), CARDS.c.pan_alias == bindparam("key"))
_IN_VAULT = CARDS.c.vault_id == bindparam("vault_id")
CARD_BY_FINGERPRINT = Direct(
    select_cards().where(_IN_VAULT, CARDS.c.fingerprint == bindparam("fingerprint")), CardRecord
)
CARD_BY_KEY = Direct(select_cards().where(_IN_VAULT, _BY_KEY), CardRecord)
# In a write transaction: the row stays as read until the transaction ends (PostgreSQL;
# SQLite has one writer at a time).
_CARD_TO_CHANGE = Direct(select_cards().where(_IN_VAULT, _BY_KEY).with_for_update(), CardRecord)
_CARDS_BY_ALIASES = Direct(
    select_cards().where(_IN_VAULT, CARDS.c.pan_alias.in_(bindparam("aliases", expanding=True))),
    CardRecord,
)
_CARDS_BY_FINGERPRINTS = Direct(
    select_cards().where(
        _IN_VAULT, CARDS.c.fingerprint.in_(bindparam("fingerprints", expanding=True))
    ),
    CardRecord,
)
_NEWEST_FIRST = NewestFirst(
    select_cards().where(_IN_VAULT),
    CARDS.c.created_at,
    CARDS.c.id,
    CardRecord,
    lambda card: Cursor(card.created_at, card.id),
)
INSERT_CARD = Direct(insert(CARDS))
_WRITE_CHANGES = Direct(
    update(CARDS)
    .where(CARDS.c.id == bindparam("b_id"))
    .values(
        exp_month=bindparam("b_exp_month"),
        exp_year=bindparam("b_exp_year"),
        holder_info=bindparam("b_holder_info", type_=CARDS.c.holder_info.type),
        updated_at=bindparam("b_updated_at", type_=CARDS.c.updated_at.type),
    )
)
_DELETE = Direct(delete(CARDS).where(CARDS.c.id == bindparam("b_id")))


def find_by_pan(db: Database, vault_id: str, fingerprint: bytes) -> CardRecord | None:
    """The vault's card with this PAN fingerprint, or None."""
    return CARD_BY_FINGERPRINT.first(db, {"vault_id": vault_id, "fingerprint": fingerprint})


def find_by_pans(source: Source, vault_id: str, fingerprints: Sequence[bytes]) -> list[CardRecord]:
    """The vault's cards with these PAN fingerprints, in one query."""
    return _CARDS_BY_FINGERPRINTS.all(source, {"vault_id": vault_id, "fingerprints": fingerprints})


def find_by_aliases(source: Source, vault_id: str, aliases: Sequence[str]) -> list[CardRecord]:
    """The vault's cards with these pan_aliases, in one query."""
    return _CARDS_BY_ALIASES.all(source, {"vault_id": vault_id, "aliases": aliases})


def read_card(source: Source, vault_id: str, key: str) -> CardRecord:
    """The vault's card by id or pan_alias; other vaults' cards do not exist here.
    Raises :class:`CardNotFound`."""
    return _found(CARD_BY_KEY.first(source, {"vault_id": vault_id, "key": key}), key)


async def aread_card(db: Database, vault_id: str, key: str) -> CardRecord:
    """:func:`read_card` from the event loop (see :meth:`Database.aread`)."""
    return _found(await CARD_BY_KEY.afirst(db, {"vault_id": vault_id, "key": key}), key)


def _found(card: CardRecord | None, key: str) -> CardRecord:
    if card is None:
        raise CardNotFound(f"card {key} not found")
    return card


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


def insert_card(conn: Connection, card: CardRecord | Bound) -> None:
    """Store a card made by :func:`new_card` (one INSERT; a PAN already in the vault
    raises ``IntegrityError`` through the unique fingerprint), or bound by
    :func:`bind_card`."""
    INSERT_CARD.execute(conn, card if isinstance(card, Bound) else [card.row()])


def bind_card(source: Source, card: CardRecord) -> Bound:
    """The INSERT of a new card, bound ahead of its write transaction."""
    return INSERT_CARD.bind(source, [card.row()])


def insert_cards(conn: Connection, cards: Sequence[CardRecord]) -> None:
    """Store several cards made by :func:`new_card` with one multi-row INSERT."""
    if cards:
        INSERT_CARD.execute(conn, [card.row() for card in cards])


def extends(card: CardRecord, expiry: Expiry) -> bool:
    """Whether enrolling the card again with ``expiry`` moves its expiry forward (the
    rule of every enrolment: a known PAN keeps its card, whose expiry only grows)."""
    return (expiry.year, expiry.month) > (card.exp_year, card.exp_month)


def with_expiry(card: CardRecord, expiry: Expiry) -> CardRecord:
    """The card as enrolling it again with ``expiry`` leaves it: its expiry moved
    forward if ``expiry`` is later (a new record), else the card itself."""
    if not extends(card, expiry):
        return card
    return replace(card, exp_month=expiry.month, exp_year=expiry.year, updated_at=utcnow())


def write_expiry(conn: Connection | Session, card: CardRecord) -> None:
    """Store the expiry of a card made by :func:`with_expiry`, with its ``card.updated``."""
    _write(conn, card)
    announce_update(conn, card)


def extend_expiry(conn: Connection, card: CardRecord, expiry: Expiry) -> CardRecord:
    """Move the card's expiry forward if ``expiry`` is later (written, and announced);
    the card as it now is."""
    moved = with_expiry(card, expiry)
    if moved is not card:
        write_expiry(conn, moved)
    return moved


def announce_update(db: Session | Connection, card: CardRecord) -> None:
    """Write ``card.updated`` (with the card's live token, if any) in the caller's
    transaction."""
    emit(db, "card.updated", card, live_token_of_card(db, card.id))


def _write(conn: Connection | Session, card: CardRecord) -> None:
    changes = {
        "b_id": card.id,
        "b_exp_month": card.exp_month,
        "b_exp_year": card.exp_year,
        "b_holder_info": card.holder_info,
        "b_updated_at": card.updated_at,
    }
    _WRITE_CHANGES.execute(conn, [changes])


def get_card(session: Session, vault_id: str, key: str) -> CardRecord:
    """The vault's card by id or pan_alias, to change in the session's transaction
    (locked until it ends). Raises :class:`CardNotFound`."""
    card = _CARD_TO_CHANGE.first(session, {"vault_id": vault_id, "key": key})
    if card is None:
        raise CardNotFound(f"card {key} not found")
    return card


def list_cards(
    source: Source, vault_id: str, *, limit: int, cursor: Cursor | None
) -> tuple[list[CardRecord], Cursor | None]:
    """A page of the vault's cards, newest first, and the next page's cursor."""
    return _NEWEST_FIRST.page(source, {"vault_id": vault_id}, limit=limit, cursor=cursor)


def update_card(
    session: Session,
    vault_id: str,
    key: str,
    *,
    expiry: Expiry | None,
    holder_info: dict[str, Any] | None,
) -> CardRecord:
    """Change the card; a new expiry is announced as ``card.updated``. The card as it
    now is."""
    card = get_card(session, vault_id, key)
    moved = expiry is not None and (expiry.month, expiry.year) != (card.exp_month, card.exp_year)
    card = replace(
        card,
        holder_info=card.holder_info if holder_info is None else holder_info,
        exp_month=expiry.month if expiry is not None and moved else card.exp_month,
        exp_year=expiry.year if expiry is not None and moved else card.exp_year,
        updated_at=utcnow(),
    )
    _write(session, card)
    if moved:
        announce_update(session, card)
    return card


def delete_card(session: Session, vault_id: str, key: str) -> CardRecord:
    """Delete the card and its encrypted PAN (its tokens' records must be gone);
    returns the deleted card."""
    card = get_card(session, vault_id, key)
    _DELETE.execute(session, [{"b_id": card.id}])
    return card


def reveal_pan(card: CardRecord, cipher: VaultCipher) -> Pan:
    """The card's PAN, decrypted; only for sending to a token service provider."""
    return Pan(cipher.decrypt(card.pan_encrypted, record_id=card.id, field=PAN_FIELD).decode())
