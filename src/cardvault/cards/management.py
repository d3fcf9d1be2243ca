"""Managing the cards of the caller's vault: list, read and update.

Each use case takes the :class:`~cardvault.callers.VaultCaller` and plain values,
runs its own transaction and writes (or, for reads, hands to the audit buffer) its own
audit record; it answers with the card's public document. Enrolment is in
:mod:`cardvault.cards.enrolment`; deleting a card ends its network tokens first, so it
is with theirs (:func:`cardvault.network_tokens.lifecycle.delete_card`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cardvault.audit import AuditRecord, write_audit
from cardvault.callers import VaultCaller
from cardvault.cards import services as cards
from cardvault.cards.documents import CardOut, CardPage, card_json, card_out
from cardvault.problems import Unprocessable
from cardvault.store.paging import CursorCodec


def _audit(caller: VaultCaller, action: str, target_id: str | None, **details: Any) -> AuditRecord:
    return caller.record(action, "card", target_id, **details)


def list_cards(caller: VaultCaller, *, limit: int, cursor: str | None) -> CardPage:
    """A page of the vault's cards, newest first; ``cursor`` is the previous page's
    ``next_cursor`` (signed for this vault's listing)."""
    services = caller.runtime
    codec, listing = CursorCodec.derived(services.hasher.hash), f"cards:{caller.vault_id}"
    after = codec.decode(cursor, listing) if cursor else None
    with services.db.sessions() as session:
        page, following = cards.list_cards(session, caller.vault_id, limit=limit, cursor=after)
        result = CardPage(
            data=[card_out(c) for c in page],
            next_cursor=codec.encode(following, listing) if following else None,
        )
    services.audit.add(_audit(caller, "card.list", None, count=len(result.data)))
    return result


async def read_card(caller: VaultCaller, key: str) -> bytes:
    """The document (JSON) of the vault's card with this id or pan_alias."""
    services = caller.runtime
    card = await cards.aread_card(services.db, caller.vault_id, key)
    services.audit.add(_audit(caller, "card.read", card.id))
    return card_json(card)


def update_card(
    caller: VaultCaller,
    key: str,
    *,
    exp_month: int | None,
    exp_year: int | None,
    holder: dict[str, Any] | None,
) -> CardOut:
    """Change the expiry (both fields together, or neither) or the holder details."""
    if (exp_month is None) != (exp_year is None):
        raise Unprocessable("exp_month and exp_year: give both or neither")
    expiry = None
    if exp_month is not None and exp_year is not None:
        expiry = cards.normalize_expiry(exp_month, exp_year, dt.date.today())
    with caller.runtime.db.transaction() as session:
        card = cards.update_card(session, caller.vault_id, key, expiry=expiry, holder_info=holder)
        out = card_out(card)
        write_audit(session, _audit(caller, "card.update", card.id))
    return out
