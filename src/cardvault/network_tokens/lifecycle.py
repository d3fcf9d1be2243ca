"""The life of the caller's network tokens after provisioning: list and read them,
delete, suspend or resume them at the network, get a cryptogram; and delete a card,
which ends its tokens at the network first.

Each use case takes the :class:`~cardvault.callers.VaultCaller` and plain values,
runs its own transaction (and, where the API takes an ``Idempotency-Key``, its replay)
and writes (or, for reads, hands to the audit buffer) its own audit record; it answers
with the reference's documents. Provisioning is in
:mod:`cardvault.network_tokens.provisioning`.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from cardvault.audit import AuditRecord, write_audit
from cardvault.callers import VaultCaller
from cardvault.cards import services as cards
from cardvault.network_tokens import services as tokens
from cardvault.network_tokens.documents import token_out, yyyy_mm
from cardvault.store.idempotency import IdempotentRequest
from cardvault.store.paging import CursorCodec

TransitionName = Literal["delete", "suspend", "resume"]


def _audit(caller: VaultCaller, action: str, target_id: str | None, **details: Any) -> AuditRecord:
    return caller.record(action, "network_token", target_id, **details)


def list_tokens(
    caller: VaultCaller, *, state: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """A page of the vault's network tokens (in ``state``, if given), newest first;
    ``cursor`` is the previous page's ``next_cursor``."""
    services = caller.runtime
    codec = CursorCodec.derived(services.hasher.hash)
    listing = f"network-tokens:{caller.vault_id}"
    after = codec.decode(cursor, listing) if cursor else None
    page, following = tokens.list_tokens(
        services.db, caller.vault_id, state=state, limit=limit, cursor=after
    )
    data = [token_out(token, card) for token, card in page]
    services.audit.add(_audit(caller, "network_token.list", None, count=len(data)))
    return {"data": data, "next_cursor": codec.encode(following, listing) if following else None}


async def read_token(caller: VaultCaller, key: str) -> dict[str, Any]:
    """The token with this id or pan_alias, with its card's BIN, last four and expiry."""
    services = caller.runtime
    token, card = await tokens.aread_token(services.db, caller.vault_id, key)
    services.audit.add(_audit(caller, "network_token.read", token.id))
    return token_out(token, card)


def transition(
    caller: VaultCaller,
    name: TransitionName,
    key: str,
    reason: str,
    idem: IdempotentRequest | None,
) -> tuple[int, bytes]:
    """Delete, suspend or resume the token at the network and on its record: the
    status and the token's document (JSON); a replay answers as the first time."""
    services = caller.runtime
    cipher = services.vault_keys.cipher(caller.vault_id)
    with services.db.transaction() as session:
        replay = idem.replay(session.connection()) if idem else None
        if replay is not None:
            return replay.status, replay.body
        token, card = tokens.get_token(session, caller.vault_id, key)
        token = tokens.Transition(name).run(
            session, services.providers(card.brand), token, cipher, reason, card
        )
        payload = orjson.dumps(token_out(token, card))
        if idem:
            idem.remember(session.connection(), 200, payload)
        write_audit(session, _audit(caller, f"network_token.{name}", token.id, reason=reason))
    return 200, payload


def cryptogram(
    caller: VaultCaller,
    key: str,
    *,
    amount: str | None,
    currency_code: str | None,
    transaction_type: str,
    cryptogram_type: str | None,
) -> dict[str, Any]:
    """The token number and a fresh single-use cryptogram. Never replayed for an
    ``Idempotency-Key``: the answer holds the token number, which is never stored in
    clear; a retry gets a new one."""
    services = caller.runtime
    cipher = services.vault_keys.cipher(caller.vault_id)
    with services.db.transaction() as session:
        token, card = tokens.get_token(session, caller.vault_id, key)
        number, value = tokens.cryptogram(
            session,
            services.providers(card.brand),
            token,
            cipher,
            amount=amount,
            currency_code=currency_code,
            transaction_type=transaction_type,
            cryptogram_type=cryptogram_type,
        )
        write_audit(
            session,
            _audit(caller, "network_token.cryptogram", token.id, transaction_type=transaction_type),
        )
    return {
        "network_token": number,
        "exp_month": token.token_exp_month,
        "exp_year": token.token_exp_year,
        "expires_at": yyyy_mm(token.token_exp_year, token.token_exp_month),
        "cryptogram": value.value,
        "eci": value.eci,
        "cryptogram_type": value.cryptogram_type,
    }


def delete_card(caller: VaultCaller, key: str) -> None:
    """Delete the vault's card with this id or pan_alias; its network tokens are
    deleted at the network first. (Here rather than in ``cards/``: ``cards`` does not
    import ``network_tokens``.)"""
    services = caller.runtime
    cipher = services.vault_keys.cipher(caller.vault_id)
    with services.db.transaction() as session:
        card = cards.get_card(session, caller.vault_id, key)
        removed = tokens.delete_all_of_card(session, services.providers, card, cipher)
        cards.delete_card(session, caller.vault_id, card.id)
        write_audit(session, caller.record("card.delete", "card", card.id, network_tokens=removed))
