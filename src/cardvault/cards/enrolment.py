"""Enrolment: a card into the caller's vault, or the vault's card of that PAN with its
expiry moved forward. ``POST /cards``, ``POST /network-tokens`` with a PAN and bulk
enrolment all go through :func:`prepare_enrolment` and :func:`store_enrolment`.

What needs no write lock (the lookup by fingerprint, the PAN's encryption, the rows
and audit record bound for the driver) is made first; only the write joins the
worker's group commit (``store/group_commit.py``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from cardvault.audit import AuditRecord, bind_audit, write_audit
from cardvault.callers import VaultCaller
from cardvault.cards import services as cards
from cardvault.cards.documents import card_json
from cardvault.crypto.pan import InvalidPan, Pan
from cardvault.problems import Unprocessable
from cardvault.store.db import Database
from cardvault.store.direct import Bound
from cardvault.store.idempotency import IdempotentRequest, Replay
from cardvault.store.records import CardRecord


@dataclass(frozen=True)
class Enrolment:
    """An enrolment made ready without writing: the vault's card of the PAN as the
    write leaves it (its expiry moved forward if the one given is later), or a new
    card (its PAN encrypted, its row bound), and the audit record, bound too."""

    card: CardRecord
    pan: Pan
    expiry: cards.Expiry
    created: bool
    row: Bound | None  # the new card's INSERT
    audit: Bound
    extended: bool = False  # a known card whose expiry the write moves forward


def valid_card(pan: str, exp_month: int, exp_year: int) -> tuple[Pan, cards.Expiry]:
    """The PAN and the normalised expiry of a card to enrol, or a 422."""
    try:
        valid = Pan(pan)
    except InvalidPan as invalid:
        raise Unprocessable(f"pan: {invalid.reason}") from None
    return valid, cards.normalize_expiry(exp_month, exp_year, dt.date.today())


async def enroll(
    caller: VaultCaller,
    pan: Pan,
    expiry: cards.Expiry,
    holder: dict[str, Any] | None,
    idem: IdempotentRequest | None,
) -> tuple[int, bytes]:
    """Enrol a card: 201 and its document, or 200 and the vault's card of this PAN
    (its expiry moved forward); a replay of an idempotent request answers as first."""
    services = caller.runtime
    for attempt in (1, 2):  # a concurrent twin (same PAN or key) wins once; then we read it
        # Read first: replays and known PANs need no write lock.
        replay = await services.run_db(replay_of, services.db, idem)
        if replay is not None:
            return replay.status, replay.body
        enrolment = await services.run_db(prepare_enrolment, caller, pan, expiry, holder)
        try:
            return await services.writes.write(partial(_store, idem, enrolment))
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def replay_of(db: Database, idem: IdempotentRequest | None) -> Replay | None:
    """The stored answer to this idempotent request, if it was made before."""
    if idem is None:
        return None
    with db.engine.connect() as conn:
        return idem.replay(conn)


def _audit(caller: VaultCaller, action: str, target_id: str | None, **details: Any) -> AuditRecord:
    return caller.record(action, "card", target_id, **details)


def prepare_enrolment(
    caller: VaultCaller, pan: Pan, expiry: cards.Expiry, holder: dict[str, Any] | None
) -> Enrolment:
    vault_keys = caller.runtime.vault_keys
    db = caller.runtime.db
    fingerprint = vault_keys.fingerprinter(caller.org_id).digest(pan)
    existing = cards.find_by_pan(db, caller.vault_id, fingerprint)
    if existing is not None:
        audit = bind_audit(db, _audit(caller, "card.match", existing.id))
        card = cards.with_expiry(existing, expiry)
        extended = card is not existing
        return Enrolment(card, pan, expiry, False, None, audit, extended=extended)
    card = cards.new_card(
        vault_id=caller.vault_id,
        org_id=caller.org_id,
        pan=pan,
        expiry=expiry,
        holder_info=holder,
        cipher=vault_keys.cipher(caller.vault_id),
        fingerprint=fingerprint,
    )
    audit = bind_audit(db, _audit(caller, "card.create", card.id))
    return Enrolment(card, pan, expiry, True, cards.bind_card(db, card), audit)


def store_enrolment(enrolment: Enrolment, conn: Connection) -> int:
    """Write an enrolment in the caller's transaction; its status (201 or 200)."""
    if enrolment.row is not None:
        cards.insert_card(conn, enrolment.row)
    elif enrolment.extended:
        cards.write_expiry(conn, enrolment.card)
    write_audit(conn, enrolment.audit)
    return 201 if enrolment.created else 200


def _store(
    idem: IdempotentRequest | None, enrolment: Enrolment, conn: Connection
) -> tuple[int, bytes]:
    """The write of one enrolment (one savepoint of a shared transaction)."""
    status = store_enrolment(enrolment, conn)
    payload = card_json(enrolment.card)
    if idem:
        idem.remember(conn, status, payload)
    return status, payload
