"""A chunk's plan: what enrolling its rows will write, made without writing.

A plan is made from the chunk's rows and a :class:`Snapshot` of what they depend on
in the database (their cards, found by PAN fingerprint or by alias, and those cards'
live tokens), through the same services as ``POST /cards`` and ``POST
/network-tokens``: new cards are made (their PANs encrypted), existing ones reused,
expiries moved forward, tokens provisioned at the networks and their events written
out. That is most of a chunk's work, and none of it needs the write lock; the
chunk's write checks that the snapshot still holds and makes the plan again, inside
the lock, if it does not (see :mod:`cardvault.bulk.processing`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from cardvault.cards import services as cards
from cardvault.cards.errors import CardError, CardNotFound
from cardvault.crypto.envelope import Fingerprinter, VaultCipher
from cardvault.crypto.pan import Pan
from cardvault.network_tokens.provisioning import Provisioning, TokenPlan, live_tokens, plan_tokens
from cardvault.network_tokens.services import ProviderFor
from cardvault.store.records import CardRecord, NetworkTokenRecord

FAILED_ROW = "FAILED"
NO_CARD = "no card with this pan_alias in the vault"


@dataclass(frozen=True)
class JobKeys:
    """What a chunk of one job needs, loaded before any of its transactions."""

    job_id: str
    vault_id: str
    org_id: str
    cipher: VaultCipher
    fingerprinter: Fingerprinter


@dataclass
class Outcome:
    """A row's result line."""

    row: int
    pan_alias: str | None
    state: str = FAILED_ROW
    last4: str | None = None
    expires_at: str | None = None
    par: str | None = None
    code: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """What a plan depends on in the database; equal snapshots give equal plans."""

    pending: tuple[int, ...]  # the rows still unprocessed
    by_alias: Mapping[str, CardRecord]
    by_print: Mapping[bytes, CardRecord]  # by PAN fingerprint
    live: Mapping[str, NetworkTokenRecord]  # live tokens, by card id


def read_snapshot(
    conn: Connection, vault_id: str, rows: Sequence[Any], prints: Mapping[int, bytes]
) -> Snapshot:
    """The snapshot of these unprocessed rows (one query per kind of key)."""
    by_alias: dict[str, CardRecord] = {}
    by_print: dict[bytes, CardRecord] = {}
    aliases = sorted({r.pan_alias for r in rows if r.pan_alias})
    if aliases:
        found = cards.find_by_aliases(conn, vault_id, aliases)
        by_alias = {card.pan_alias: card for card in found}
    if prints:
        wanted = sorted(set(prints.values()))
        found = cards.find_by_pans(conn, vault_id, wanted)
        by_print = {card.fingerprint: card for card in found}
    ids = sorted({c.id for c in by_alias.values()} | {c.id for c in by_print.values()})
    live = live_tokens(conn, ids)
    return Snapshot(tuple(r.row for r in rows), by_alias, by_print, live)


@dataclass
class Plan:
    """What writing a chunk stores, and each row's outcome (or the item provisioned
    for it, whose outcome is known once the plan's tokens are stored)."""

    snapshot: Snapshot
    rows: Sequence[Any]
    results: list[Outcome | Provisioning]
    new_cards: list[CardRecord]  # to insert
    extensions: list[tuple[bytes, cards.Expiry]]  # existing cards' expiries moved forward
    tokens: TokenPlan


@dataclass
class _Cards:
    """The chunk's cards, each as the chunk's write leaves it: an existing card's
    expiry moved forward by its rows, each new PAN one new card."""

    keys: JobKeys
    snapshot: Snapshot
    latest: dict[str, CardRecord] = field(default_factory=dict)  # by id
    new: dict[bytes, CardRecord] = field(default_factory=dict)  # by fingerprint, in row order
    extensions: list[tuple[bytes, cards.Expiry]] = field(default_factory=list)

    def _existing(self, card: CardRecord) -> CardRecord:
        return self.latest.setdefault(card.id, card)

    def now(self, card: CardRecord) -> CardRecord:
        """The card as the chunk's write leaves it."""
        return self.latest.get(card.id, card)

    def by_alias(self, alias: str) -> CardRecord:
        card = self.snapshot.by_alias.get(alias)
        if card is None:
            raise CardNotFound(NO_CARD)
        return self._existing(card)

    def enrol(self, row: Any, pan: Pan, fingerprint: bytes, expiry: cards.Expiry) -> CardRecord:
        """The vault's card of this PAN (as ``POST /cards``: an existing one is reused and
        its expiry moved forward)."""
        found = self.snapshot.by_print.get(fingerprint)
        card = self._existing(found) if found is not None else self.new.get(fingerprint)
        if card is None:
            card = cards.new_card(
                vault_id=self.keys.vault_id,
                org_id=self.keys.org_id,
                pan=pan,
                expiry=expiry,
                holder_info=row.holder_info,
                cipher=self.keys.cipher,
                fingerprint=fingerprint,
            )
            self.new[fingerprint] = self.latest[card.id] = card
        elif cards.extends(card, expiry):
            card = self.latest[card.id] = cards.with_expiry(card, expiry)  # as the write will
            if found is not None:
                self.extensions.append((fingerprint, expiry))
            else:
                self.new[fingerprint] = card
        return card


def _row_result(
    found: _Cards, row: Any, pan: Pan | None, fingerprint: bytes | None, today: dt.date
) -> Outcome | Provisioning:
    """The row's card and the expiry to provision, or its failure."""
    outcome = Outcome(row.row, row.pan_alias)
    if row.error_code is not None:
        outcome.code, outcome.detail = row.error_code, row.error_detail
        return outcome
    try:
        expiry = cards.normalize_expiry(row.exp_month, row.exp_year, today)
        if pan is not None and fingerprint is not None:
            card = found.enrol(row, pan, fingerprint, expiry)
        else:
            card = found.by_alias(row.pan_alias)
    except CardError as error:
        outcome.code, outcome.detail = error.code, error.detail
        return outcome
    return Provisioning(card, expiry.month, expiry.year, pan)


def make_plan(
    session: Session,
    keys: JobKeys,
    provider_for: ProviderFor,
    rows: Sequence[Any],
    pans: Mapping[int, Pan],
    prints: Mapping[int, bytes],
    snapshot: Snapshot,
) -> Plan:
    """The plan of these rows (those in ``snapshot.pending``) given ``snapshot``; reads
    the database only to choose token numbers."""
    pending = set(snapshot.pending)
    rows = [r for r in rows if r.row in pending]
    found, today = _Cards(keys, snapshot), dt.date.today()
    results = [_row_result(found, r, pans.get(r.row), prints.get(r.row), today) for r in rows]
    # Each item with its card as the write leaves it (a later row may move its expiry).
    results = [
        replace(r, card=found.now(r.card)) if isinstance(r, Provisioning) else r for r in results
    ]
    items = [p for p in results if isinstance(p, Provisioning)]
    tokens = plan_tokens(session.connection(), provider_for, items, keys.cipher, snapshot.live)
    return Plan(snapshot, rows, results, list(found.new.values()), found.extensions, tokens)
