"""Lifecycle of network tokens; plain values in, models out.

The provider (a card network, or its simulator) is called inside the caller's
transaction, so the platform's record and the network's state commit together.
Provisioning is in :mod:`cardvault.network_tokens.provisioning` (one card or many).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, or_, select
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
from cardvault.store.direct import Direct
from cardvault.store.models import Card, NetworkToken
from cardvault.store.paging import Cursor, newest_first
from cardvault.store.types import utcnow

TOKEN_FIELD = "network_token"  # noqa: S105 (a field name)
FINAL = (DELETED, FAILED)

ProviderFor = Callable[[str], TokenServiceProvider]


def _announce(session: Session, token: NetworkToken, card: Card, before: str | None) -> None:
    """Write the event for the token's move from ``before`` to its current state."""
    if token.state == before:
        return
    name = event_for_state(token.state)
    if name is not None:
        emit(session, name, card, token)


def _status_fields(
    token_id: str, card_id: str, status: TokenStatus, cipher: VaultCipher
) -> dict[str, Any]:
    """The platform record's columns that mirror the network's view of the token."""
    return {
        "state": status.state,
        "token_encrypted": cipher.encrypt(
            status.token_number.encode(), record_id=token_id, field=TOKEN_FIELD
        ),
        "token_last4": status.token_number[-4:],
        "token_exp_month": status.exp_month,
        "token_exp_year": status.exp_year,
        "payment_account_reference": status.payment_account_reference,
        "failure_reason": status.failure_reason,
        "live_card_id": None if status.state in FINAL else card_id,
        "updated_at": utcnow(),
    }


def _apply(token: NetworkToken, status: TokenStatus, cipher: VaultCipher) -> None:
    """Copy the network's view onto the platform's record."""
    for name, value in _status_fields(token.id, token.card_id, status, cipher).items():
        setattr(token, name, value)


def token_values(card: Any, status: TokenStatus, cipher: VaultCipher) -> dict[str, Any]:
    """The columns of the platform's record of a token the network just provisioned
    for ``card`` (a :class:`Card` or a row of one), for storing without ORM objects."""
    token_id = ordered_id("ntk_")
    values = {
        "id": token_id,
        "vault_id": card.vault_id,
        "org_id": card.org_id,
        "card_id": card.id,
        "pan_alias": card.pan_alias,
        "network": status.network,
        "provider_id": status.provider_id,
        **_status_fields(token_id, card.id, status, cipher),
    }
    values["created_at"] = values["updated_at"]
    return values


def get_token(session: Session, vault_id: str, key: str) -> NetworkToken:
    """The vault's token by pan_alias (the live one, else the latest) or by id."""
    token = session.scalar(
        select(NetworkToken)
        .where(
            NetworkToken.vault_id == vault_id,
            or_(NetworkToken.pan_alias == key, NetworkToken.id == key),
        )
        .order_by(NetworkToken.live_card_id.is_(None), NetworkToken.created_at.desc())
        .limit(1)
    )
    if token is None:
        raise TokenNotFound(f"network token {key} not found")
    return token


_TOKEN_AND_CARD = (
    select(
        *NetworkToken.__table__.columns,
        Card.last4.label("card_last4"),
        Card.bin.label("card_bin"),
        Card.exp_month.label("card_exp_month"),
        Card.exp_year.label("card_exp_year"),
        Card.holder_info.label("card_holder_info"),
    )
    .join(Card, Card.id == NetworkToken.card_id)
    .order_by(NetworkToken.live_card_id.is_(None), NetworkToken.created_at.desc())
    .limit(1)
)
# Two statements rather than one OR, so each uses its own index (pan_alias, primary key).
TOKEN_BY_ALIAS = Direct(
    _TOKEN_AND_CARD.where(
        NetworkToken.pan_alias == bindparam("key"), NetworkToken.vault_id == bindparam("vault_id")
    )
)
TOKEN_BY_ID = Direct(
    _TOKEN_AND_CARD.where(
        NetworkToken.id == bindparam("key"), NetworkToken.vault_id == bindparam("vault_id")
    )
)


def read_token(db: Database, vault_id: str, key: str) -> Any:
    """A row of the vault's token (as :func:`get_token` finds it) with its card's
    ``card_*`` columns, for reading only."""
    params = {"vault_id": vault_id, "key": key}
    row = TOKEN_BY_ALIAS.first(db, params)
    if row is None:
        row = TOKEN_BY_ID.first(db, params)
    if row is None:
        raise TokenNotFound(f"network token {key} not found")
    return row


def list_tokens(
    session: Session, vault_id: str, *, state: str | None, limit: int, cursor: Cursor | None
) -> tuple[Sequence[NetworkToken], Cursor | None]:
    query = select(NetworkToken).where(NetworkToken.vault_id == vault_id)
    if state:
        query = query.where(NetworkToken.state == state)
    return newest_first(session, NetworkToken, query, limit=limit, cursor=cursor)


@dataclass(frozen=True)
class Transition:
    name: str  # suspend | resume | delete

    def run(
        self,
        session: Session,
        provider: TokenServiceProvider,
        token: NetworkToken,
        cipher: VaultCipher,
        reason: str,
        card: Card | None = None,
    ) -> NetworkToken:
        """Apply the transition at the network and on the record, with its event
        (``card`` is looked up when not given)."""
        before = token.state
        if self.name == "suspend":
            status = provider.suspend(session, token.provider_id, reason)
        elif self.name == "resume":
            status = provider.resume(session, token.provider_id, reason)
        else:
            status = provider.delete(session, token.provider_id)
        _apply(token, status, cipher)
        _announce(session, token, card or _card_of(session, token), before)
        return token


def _card_of(session: Session, token: NetworkToken) -> Card:
    card = session.get(Card, token.card_id)
    assert card is not None  # a token's card exists until the token is deleted
    return card


def refresh(
    session: Session, provider: TokenServiceProvider, token: NetworkToken, cipher: VaultCipher
) -> bool:
    """Ask the network for the token's state; True if it changed."""
    status = provider.status(session, token.provider_id)
    if status.state == token.state:
        return False
    before = token.state
    _apply(token, status, cipher)
    _announce(session, token, _card_of(session, token), before)
    return True


def cryptogram(
    session: Session,
    provider: TokenServiceProvider,
    token: NetworkToken,
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


def pending_tokens(session: Session, limit: int = 100) -> Sequence[NetworkToken]:
    return session.scalars(
        select(NetworkToken)
        .where(NetworkToken.state == "PENDING")
        .order_by(NetworkToken.updated_at)
        .limit(limit)
    ).all()


def tokens_of_card(session: Session, card_id: str) -> Sequence[NetworkToken]:
    return session.scalars(select(NetworkToken).where(NetworkToken.card_id == card_id)).all()


def delete_all_of_card(
    session: Session, provider_for: ProviderFor, card: Card, cipher: VaultCipher
) -> int:
    """Delete the card's tokens at the network, then the platform's records; returns
    how many there were. Used before the card itself is deleted."""
    found = tokens_of_card(session, card.id)
    for token in found:
        if token.state not in FINAL:
            provider = provider_for(card.brand)
            Transition("delete").run(session, provider, token, cipher, "card deleted", card)
        session.delete(token)
    session.flush()
    return len(found)


def settle_pending(
    db: Database, provider_for: ProviderFor, cipher_of: Callable[[str], VaultCipher]
) -> int:
    """Background step: ask the network about PENDING tokens; returns how many changed.

    Safe on several workers at once: each token is re-read and updated in its own
    write transaction, and a token that is no longer PENDING is left alone.
    """
    with db.sessions() as session:
        pending = [(t.id, t.vault_id) for t in pending_tokens(session)]
    changed = 0
    for token_id, vault_id in pending:
        cipher = cipher_of(vault_id)  # outside the write transaction: it may load a key
        with db.transaction() as session:
            token = session.get(NetworkToken, token_id)
            card = session.get(Card, token.card_id) if token else None
            if token is None or card is None or token.state != "PENDING":
                continue
            changed += refresh(session, provider_for(card.brand), token, cipher)
    return changed


def apply_issuer_update(
    session: Session,
    token: NetworkToken,
    card: Card,
    status: TokenStatus,
    cipher: VaultCipher,
    *,
    new_pan: Pan | None = None,
    fingerprint: bytes | None = None,
) -> None:
    """Apply an issuer-side event (new PAN, new expiry, suspend, resume, delete) that
    the network reported: the token's record and, for card changes, the card, with
    their events (a state change; ``network_token.updated`` and ``card.updated`` when
    the card's number or expiry changed)."""
    before_state = token.state
    before_card = (card.fingerprint, card.exp_month, card.exp_year)
    before_token = (token.token_exp_month, token.token_exp_year)
    _apply(token, status, cipher)
    if new_pan is not None and fingerprint is not None:
        card.pan_encrypted = cipher.encrypt(
            new_pan.reveal().encode(), record_id=card.id, field="pan"
        )
        card.data_key_version = cipher.current_version
        card.fingerprint = fingerprint
        card.bin, card.last4 = new_pan.bin, new_pan.last4
    card.exp_month, card.exp_year = status.card_exp_month, status.card_exp_year
    card.updated_at = utcnow()
    _announce(session, token, card, before_state)
    card_changed = (card.fingerprint, card.exp_month, card.exp_year) != before_card
    if card_changed or (token.token_exp_month, token.token_exp_year) != before_token:
        emit(session, "network_token.updated", card, token)
    if card_changed:
        emit(session, "card.updated", card, token)


def token_by_alias(session: Session, pan_alias: str) -> tuple[NetworkToken, Card]:
    """Operator lookup across vaults: the alias's live (else latest) token and its card."""
    token = session.scalar(
        select(NetworkToken)
        .where(NetworkToken.pan_alias == pan_alias)
        .order_by(NetworkToken.live_card_id.is_(None), NetworkToken.created_at.desc())
        .limit(1)
    )
    card = session.get(Card, token.card_id) if token else None
    if token is None or card is None:
        raise TokenNotFound(f"network token {pan_alias} not found")
    return token, card
