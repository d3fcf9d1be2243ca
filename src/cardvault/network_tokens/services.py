"""Lifecycle of network tokens; plain values in, records out.

The provider (a card network, or its simulator) is called inside the caller's
transaction, so the platform's record and the network's state commit together.
Provisioning is in :mod:`cardvault.network_tokens.provisioning` (one card or many).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import bindparam, delete, update
from sqlalchemy.orm import Session

from cardvault.crypto import ordered_id
from cardvault.crypto.envelope import VaultCipher
from cardvault.crypto.pan import Pan
from cardvault.events import emit, event_for_state
from cardvault.network_tokens.errors import TokenNotFound
from cardvault.networks.provider import (
    DELETED,
    FAILED,
    Cryptogram,
    TokenServiceProvider,
    TokenStatus,
)
from cardvault.store.db import Database
from cardvault.store.direct import Direct, Source
from cardvault.store.paging import Cursor, NewestFirst
from cardvault.store.records import (
    CARD_COLUMNS,
    CARDS,
    TOKEN_COLUMNS,
    TOKENS,
    CardRecord,
    NetworkTokenRecord,
    select_tokens,
)
from cardvault.store.types import utcnow

TOKEN_FIELD = "network_token"  # noqa: S105 (a field name)
FINAL = (DELETED, FAILED)

ProviderFor = Callable[[str], TokenServiceProvider]
TokenAndCard = tuple[NetworkTokenRecord, CardRecord]


_SPLIT = len(TOKEN_COLUMNS)


def _token_and_card(*values: Any) -> TokenAndCard:
    """A row of :data:`TOKEN_COLUMNS` then :data:`CARD_COLUMNS`, as two records."""
    return NetworkTokenRecord(*values[:_SPLIT]), CardRecord(*values[_SPLIT:])


# Prebuilt statements, run by the executor (store/direct.py). A token is read with its
# card; by pan_alias, the card's live token comes first, else its latest.
_WITH_CARD = (
    select_tokens()
    .add_columns(*CARD_COLUMNS)
    .join(CARDS, CARDS.c.id == TOKENS.c.card_id)
    .where(TOKENS.c.vault_id == bindparam("vault_id"))
)
_LIVE_FIRST = (TOKENS.c.live_card_id.is_(None), TOKENS.c.created_at.desc())
_BY_ALIAS = _WITH_CARD.where(TOKENS.c.pan_alias == bindparam("key")).order_by(*_LIVE_FIRST)
_BY_ID = _WITH_CARD.where(TOKENS.c.id == bindparam("key"))
# Two statements rather than one OR, so each uses its own index (pan_alias, primary key).
TOKEN_BY_ALIAS = Direct(_BY_ALIAS.limit(1), _token_and_card)
TOKEN_BY_ID = Direct(_BY_ID, _token_and_card)
# In a write transaction: the token's row stays as read until it ends (PostgreSQL;
# SQLite has one writer at a time).
_TO_CHANGE_BY_ALIAS = Direct(_BY_ALIAS.limit(1).with_for_update(of=TOKENS), _token_and_card)
_TO_CHANGE_BY_ID = Direct(_BY_ID.with_for_update(of=TOKENS), _token_and_card)
_ANY_VAULT_BY_ALIAS = Direct(
    select_tokens()
    .add_columns(*CARD_COLUMNS)
    .join(CARDS, CARDS.c.id == TOKENS.c.card_id)
    .where(TOKENS.c.pan_alias == bindparam("key"))
    .order_by(*_LIVE_FIRST)
    .limit(1)
    .with_for_update(of=TOKENS),
    _token_and_card,
)
_PENDING = Direct(
    select_tokens()
    .where(TOKENS.c.state == "PENDING")
    .order_by(TOKENS.c.updated_at)
    .limit(bindparam("b_limit")),
    NetworkTokenRecord,
)
_OF_CARD = Direct(
    select_tokens().where(TOKENS.c.card_id == bindparam("card_id")), NetworkTokenRecord
)
_STATE = bindparam("b_state", type_=TOKENS.c.state.type)  # None: every state
_NEWEST_FIRST = NewestFirst(
    _WITH_CARD.where(_STATE.is_(None) | (TOKENS.c.state == _STATE)),
    TOKENS.c.created_at,
    TOKENS.c.id,
    _token_and_card,
    lambda found: Cursor(found[0].created_at, found[0].id),
)
STATUS_FIELDS = (
    "state",
    "token_encrypted",
    "token_last4",
    "token_exp_month",
    "token_exp_year",
    "payment_account_reference",
    "failure_reason",
    "live_card_id",
    "updated_at",
)
_WRITE_STATUS = Direct(
    update(TOKENS)
    .where(TOKENS.c.id == bindparam("b_id"))
    .values({name: bindparam(f"b_{name}", type_=TOKENS.c[name].type) for name in STATUS_FIELDS})
)
_DELETE_OF_CARD = Direct(delete(TOKENS).where(TOKENS.c.card_id == bindparam("b_card")))
# What a network's card update (a new PAN, a new expiry) changes in the card's row.
_CARD_UPDATED = (
    "pan_encrypted",
    "data_key_version",
    "fingerprint",
    "bin",
    "last4",
    "exp_month",
    "exp_year",
    "updated_at",
)
_WRITE_CARD = Direct(
    update(CARDS)
    .where(CARDS.c.id == bindparam("b_id"))
    .values({name: bindparam(f"b_{name}", type_=CARDS.c[name].type) for name in _CARD_UPDATED})
)


def _announce(
    session: Session, token: NetworkTokenRecord, card: CardRecord, before: str | None
) -> None:
    """Write the event for the token's move from ``before`` to its current state."""
    if token.state == before:
        return
    name = event_for_state(token.state)
    if name is not None:
        emit(session, name, card, token)


def _with_status(
    token: NetworkTokenRecord, status: TokenStatus, cipher: VaultCipher
) -> NetworkTokenRecord:
    """The token with the network's view of it: the columns that mirror it."""
    return replace(
        token,
        state=status.state,
        token_encrypted=cipher.encrypt(
            status.token_number.encode(), record_id=token.id, field=TOKEN_FIELD
        ),
        token_last4=status.token_number[-4:],
        token_exp_month=status.exp_month,
        token_exp_year=status.exp_year,
        payment_account_reference=status.payment_account_reference,
        failure_reason=status.failure_reason,
        live_card_id=None if status.state in FINAL else token.card_id,
        updated_at=utcnow(),
    )


def _write_status(session: Session, token: NetworkTokenRecord) -> None:
    params = {f"b_{name}": getattr(token, name) for name in STATUS_FIELDS}
    _WRITE_STATUS.execute(session, [{**params, "b_id": token.id}])


def new_token(card: CardRecord, status: TokenStatus, cipher: VaultCipher) -> NetworkTokenRecord:
    """The platform's record of a token the network just provisioned for ``card``
    (not stored yet)."""
    now = utcnow()
    blank = NetworkTokenRecord(
        id=ordered_id("ntk_"),
        vault_id=card.vault_id,
        org_id=card.org_id,
        card_id=card.id,
        live_card_id=None,
        pan_alias=card.pan_alias,
        network=status.network,
        provider_id=status.provider_id,
        state=status.state,
        token_encrypted=None,
        token_last4=None,
        token_exp_month=None,
        token_exp_year=None,
        payment_account_reference=None,
        failure_reason=None,
        created_at=now,
        updated_at=now,
    )
    token = _with_status(blank, status, cipher)
    return replace(token, created_at=token.updated_at)


def read_token(source: Source, vault_id: str, key: str) -> TokenAndCard:
    """The vault's token by pan_alias (the live one, else the latest) or by id, with
    its card. Raises :class:`TokenNotFound`."""
    params = {"vault_id": vault_id, "key": key}
    return _found(TOKEN_BY_ALIAS.first(source, params) or TOKEN_BY_ID.first(source, params), key)


async def aread_token(db: Database, vault_id: str, key: str) -> TokenAndCard:
    """:func:`read_token` from the event loop (see :meth:`Database.aread`)."""
    params = {"vault_id": vault_id, "key": key}
    found = await TOKEN_BY_ALIAS.afirst(db, params) or await TOKEN_BY_ID.afirst(db, params)
    return _found(found, key)


def _found(found: TokenAndCard | None, key: str) -> TokenAndCard:
    if found is None:
        raise TokenNotFound(f"network token {key} not found")
    return found


def get_token(session: Session, vault_id: str, key: str) -> TokenAndCard:
    """:func:`read_token`, to change in the session's transaction (the token's row
    locked until it ends)."""
    params = {"vault_id": vault_id, "key": key}
    found = _TO_CHANGE_BY_ALIAS.first(session, params) or _TO_CHANGE_BY_ID.first(session, params)
    if found is None:
        raise TokenNotFound(f"network token {key} not found")
    return found


def list_tokens(
    source: Source, vault_id: str, *, state: str | None, limit: int, cursor: Cursor | None
) -> tuple[list[TokenAndCard], Cursor | None]:
    """A page of the vault's tokens (in ``state``, if given) with their cards, newest
    first, and the next page's cursor."""
    params = {"vault_id": vault_id, "b_state": state}
    return _NEWEST_FIRST.page(source, params, limit=limit, cursor=cursor)


@dataclass(frozen=True)
class Transition:
    name: str  # suspend | resume | delete

    def run(
        self,
        session: Session,
        provider: TokenServiceProvider,
        token: NetworkTokenRecord,
        cipher: VaultCipher,
        reason: str,
        card: CardRecord,
    ) -> NetworkTokenRecord:
        """Apply the transition at the network and on the record, with its event; the
        token as it now is."""
        if self.name == "suspend":
            status = provider.suspend(session, token.provider_id, reason)
        elif self.name == "resume":
            status = provider.resume(session, token.provider_id, reason)
        else:
            status = provider.delete(session, token.provider_id)
        changed = _with_status(token, status, cipher)
        _write_status(session, changed)
        _announce(session, changed, card, token.state)
        return changed


def refresh(
    session: Session,
    provider: TokenServiceProvider,
    token: NetworkTokenRecord,
    card: CardRecord,
    cipher: VaultCipher,
) -> bool:
    """Ask the network for the token's state; True if it changed (written, announced)."""
    status = provider.status(session, token.provider_id)
    if status.state == token.state:
        return False
    changed = _with_status(token, status, cipher)
    _write_status(session, changed)
    _announce(session, changed, card, token.state)
    return True


def cryptogram(
    session: Session,
    provider: TokenServiceProvider,
    token: NetworkTokenRecord,
    cipher: VaultCipher,
    *,
    amount: str | None,
    currency_code: str | None,
    transaction_type: str,
    cryptogram_type: str | None,
) -> tuple[str, Cryptogram]:
    """The token number and a fresh single-use cryptogram (only for ACTIVE tokens)."""
    value = provider.cryptogram(
        session,
        token.provider_id,
        amount=amount,
        currency_code=currency_code,
        transaction_type=transaction_type,
        cryptogram_type=cryptogram_type,
    )
    assert token.token_encrypted is not None
    number = cipher.decrypt(token.token_encrypted, record_id=token.id, field=TOKEN_FIELD)
    return number.decode(), value


def pending_tokens(source: Source, limit: int = 100) -> list[NetworkTokenRecord]:
    """PENDING tokens, the longest waiting first."""
    return _PENDING.all(source, {"b_limit": limit})


def tokens_of_card(source: Source, card_id: str) -> list[NetworkTokenRecord]:
    return _OF_CARD.all(source, {"card_id": card_id})


def delete_all_of_card(
    session: Session, provider_for: ProviderFor, card: CardRecord, cipher: VaultCipher
) -> int:
    """Delete the card's tokens at the network, then the platform's records; returns
    how many there were. Used before the card itself is deleted."""
    found = tokens_of_card(session, card.id)
    for token in found:
        if token.state not in FINAL:
            provider = provider_for(card.brand)
            Transition("delete").run(session, provider, token, cipher, "card deleted", card)
    if found:
        _DELETE_OF_CARD.execute(session, [{"b_card": card.id}])
    return len(found)


def settle_pending(
    db: Database, provider_for: ProviderFor, cipher_of: Callable[[str], VaultCipher]
) -> int:
    """Background step: ask the network about PENDING tokens; returns how many changed.

    Safe on several workers at once: each token is read again (and locked) in its own
    write transaction, and a token that is no longer PENDING is left alone.
    """
    pending = [(t.id, t.vault_id) for t in pending_tokens(db)]
    changed = 0
    for token_id, vault_id in pending:
        cipher = cipher_of(vault_id)  # outside the write transaction: it may load a key
        with db.transaction() as session:
            found = _TO_CHANGE_BY_ID.first(session, {"vault_id": vault_id, "key": token_id})
            if found is None or found[0].state != "PENDING":
                continue
            token, card = found
            changed += refresh(session, provider_for(card.brand), token, card, cipher)
    return changed


def apply_issuer_update(
    session: Session,
    token: NetworkTokenRecord,
    card: CardRecord,
    status: TokenStatus,
    cipher: VaultCipher,
    *,
    new_pan: Pan | None = None,
    fingerprint: bytes | None = None,
) -> TokenAndCard:
    """Apply an issuer-side event (new PAN, new expiry, suspend, resume, delete) that
    the network reported: the token's record and, for card changes, the card, with
    their events (a state change; ``network_token.updated`` and ``card.updated`` when
    the card's number or expiry changed). The token and the card as they now are."""
    changed = _with_status(token, status, cipher)
    moved = replace(
        card,
        exp_month=status.card_exp_month,
        exp_year=status.card_exp_year,
        updated_at=utcnow(),
    )
    if new_pan is not None and fingerprint is not None:
        moved = replace(
            moved,
            pan_encrypted=cipher.encrypt(new_pan.reveal().encode(), record_id=card.id, field="pan"),
            data_key_version=cipher.current_version,
            fingerprint=fingerprint,
            bin=new_pan.bin,
            last4=new_pan.last4,
        )
    _write_status(session, changed)
    card_row = {f"b_{name}": getattr(moved, name) for name in _CARD_UPDATED}
    _WRITE_CARD.execute(session, [{**card_row, "b_id": moved.id}])
    _announce(session, changed, moved, token.state)
    card_changed = (moved.fingerprint, moved.exp_month, moved.exp_year) != (
        card.fingerprint,
        card.exp_month,
        card.exp_year,
    )
    token_moved = (changed.token_exp_month, changed.token_exp_year) != (
        token.token_exp_month,
        token.token_exp_year,
    )
    if card_changed or token_moved:
        emit(session, "network_token.updated", moved, changed)
    if card_changed:
        emit(session, "card.updated", moved, changed)
    return changed, moved


def token_by_alias(session: Session, pan_alias: str) -> TokenAndCard:
    """Operator lookup across vaults: the alias's live (else latest) token and its
    card, locked for a change in the session's transaction."""
    found = _ANY_VAULT_BY_ALIAS.first(session, {"key": pan_alias})
    if found is None:
        raise TokenNotFound(f"network token {pan_alias} not found")
    return found
