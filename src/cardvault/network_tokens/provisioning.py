"""Provisioning network tokens: one card (``POST /network-tokens``) or many (bulk).

The same rules as :func:`cardvault.network_tokens.services.provision` (a card's live
token is returned, not replaced; one new token per card), a chunk of cards at a time
and in two steps, so that the costly part runs before the caller takes the write lock:

- :func:`plan_tokens` asks each network once for its cards
  (:func:`cardvault.networks.batch.prepare`) and makes the new tokens' records and
  events, encrypted and serialised, without writing anything;
- :func:`store_tokens` writes them, one statement per table, inside the caller's
  write transaction, after the caller has checked that what the plan was made from
  (the cards' live tokens) has not changed.

``POST /network-tokens`` uses the same two steps for its one card.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, insert
from sqlalchemy.exc import IntegrityError

from cardvault.audit import AuditRecord, bind_audit, write_audit
from cardvault.callers import VaultCaller
from cardvault.cards.enrolment import Enrolment, prepare_enrolment, replay_of, store_enrolment
from cardvault.cards.services import Expiry, normalize_expiry, read_card, reveal_pan
from cardvault.crypto.envelope import VaultCipher
from cardvault.crypto.pan import Pan
from cardvault.events import event_for_state, event_row, store_events
from cardvault.network_tokens.documents import token_out
from cardvault.network_tokens.services import ProviderFor, new_token
from cardvault.networks import batch as network_batch
from cardvault.networks.provider import ProviderError, ProvisionRequest, TokenServiceProvider
from cardvault.store.direct import Bound, Direct, Source
from cardvault.store.idempotency import IdempotentRequest, Replay
from cardvault.store.records import (
    TOKENS,
    CardRecord,
    NetworkTokenRecord,
    live_token_of_card,
    select_tokens,
)

_INSERT_TOKENS = Direct(insert(TOKENS))
_LIVE_TOKENS = Direct(
    select_tokens().where(TOKENS.c.live_card_id.in_(bindparam("b_cards", expanding=True))),
    NetworkTokenRecord,
)


@dataclass(frozen=True)
class Provisioning:
    """One card to provision, with the expiry to send; ``pan`` when the caller holds
    the card's PAN already (it is not decrypted again)."""

    card: CardRecord
    exp_month: int
    exp_year: int
    pan: Pan | None = None
    cvc: str | None = None  # passed to the network, never stored


# A token (stored, or new) and whether it is new; or the network's refusal.
Provisioned = tuple[NetworkTokenRecord, bool] | ProviderError


@dataclass
class TokenPlan:
    """What :func:`store_tokens` will write for the items, and each item's answer
    (None until known: a repeated card, or a network asked only when storing)."""

    items: Sequence[Provisioning]
    cipher: VaultCipher
    results: list[Provisioned | None]
    first: dict[str, int] = field(default_factory=dict)  # card id → its first item
    batches: list[tuple[network_batch.Batch, list[int]]] = field(default_factory=list)
    tokens: list[dict[str, Any]] = field(default_factory=list)
    bound_tokens: Bound | None = None  # the tokens' INSERT, bound once the plan is made
    events: list[dict[str, Any]] = field(default_factory=list)


def live_tokens(source: Source, card_ids: Sequence[str]) -> dict[str, NetworkTokenRecord]:
    """The live token of each of these cards that has one, by card id."""
    if not card_ids:
        return {}
    found = _LIVE_TOKENS.all(source, {"b_cards": list(card_ids)})
    return {token.card_id: token for token in found}


def _settle(plan: TokenPlan, index: int, outcome: network_batch.Outcome) -> None:
    """Record the network's answer for an item: a refusal, or a new token and its event."""
    if isinstance(outcome, ProviderError):
        plan.results[index] = outcome
        return
    card = plan.items[index].card
    token = new_token(card, outcome, plan.cipher)
    plan.results[index] = (token, True)
    plan.tokens.append(token.row())
    plan.bound_tokens = None  # a network asked only when storing: bound there
    name = event_for_state(token.state)  # as provision() announces it (none while PENDING)
    if name is not None:
        plan.events.append(event_row(name, card, token))


def _request(item: Provisioning, cipher: VaultCipher) -> ProvisionRequest:
    pan = item.pan if item.pan is not None else reveal_pan(item.card, cipher)
    return ProvisionRequest(pan, item.exp_month, item.exp_year, item.cvc)


def _groups(
    plan: TokenPlan, provider_for: ProviderFor, live: Mapping[str, NetworkTokenRecord]
) -> dict[str, tuple[TokenServiceProvider, list[int]]]:
    """The items to provision, by network (a card's first item only); answers the
    others (a live token, an unsupported brand)."""
    groups: dict[str, tuple[TokenServiceProvider, list[int]]] = {}
    for index, item in enumerate(plan.items):
        card_id = item.card.id
        if card_id in live:
            plan.results[index] = (live[card_id], False)
        elif card_id not in plan.first:
            plan.first[card_id] = index
            try:
                provider = provider_for(item.card.brand)
            except ProviderError as error:
                plan.results[index] = error
                continue
            groups.setdefault(provider.network, (provider, []))[1].append(index)
    return groups


def plan_tokens(
    source: Source,
    provider_for: ProviderFor,
    items: Sequence[Provisioning],
    cipher: VaultCipher,
    live: Mapping[str, NetworkTokenRecord],
) -> TokenPlan:
    """Plan :func:`provision` for many cards of one vault whose live tokens are ``live``
    (by card id, from :func:`live_tokens`); reads the database only."""
    plan = TokenPlan(items, cipher, [None] * len(items))
    for provider, indexes in _groups(plan, provider_for, live).values():
        requests = [_request(items[i], cipher) for i in indexes]
        prepared = network_batch.prepare(source, provider, requests)
        plan.batches.append((prepared, indexes))
        for index, outcome in zip(indexes, prepared.outcomes, strict=True):
            if outcome is not None:
                _settle(plan, index, outcome)
    plan.bound_tokens = _INSERT_TOKENS.bind(source, plan.tokens)
    return plan


def store_tokens(conn: Connection, plan: TokenPlan) -> list[Provisioned]:
    """Write a plan (once) in the caller's write transaction; each item's
    ``(token, created)`` or refusal, in item order (a card given twice gets one token)."""
    for prepared, indexes in plan.batches:
        for index, outcome in zip(indexes, network_batch.store(conn, prepared), strict=True):
            if plan.results[index] is None:
                _settle(plan, index, outcome)
    _INSERT_TOKENS.execute(conn, plan.bound_tokens or plan.tokens)
    store_events(conn, plan.events)
    results: list[Provisioned] = []
    for index, item in enumerate(plan.items):
        result = plan.results[index]
        if result is None:  # a repeated card: the first one's answer
            earlier = plan.results[plan.first[item.card.id]]
            assert earlier is not None
            result = (earlier[0], False) if isinstance(earlier, tuple) else earlier
        results.append(result)
    return results


# ---------------------------------------------------------------------- one card


@dataclass(frozen=True)
class ProvisionRequestIn:
    """What ``POST /network-tokens`` asks: a card of the vault (``card_key``: its id or
    pan_alias) or, with ``enrol``, a PAN to enrol first; the expiry to send."""

    card_key: str | None
    enrol: tuple[Pan, Expiry] | None
    exp_month: int | None
    exp_year: int | None
    cvc: str | None


async def provision(
    caller: VaultCaller, request: ProvisionRequestIn, idem: IdempotentRequest | None
) -> tuple[int, bytes]:
    """The card's network token: 201 and a new one, or 200 and its live token.

    As enrolment: what needs no write lock (the card, its live token, the network's
    answer, the new token's record and event) is made first, and only the writes join
    the worker's group commit; with a PAN, the card's enrolment is in the same write.
    A network's refusal is raised, after the enrolment was written."""
    services = caller.runtime
    cipher = services.vault_keys.cipher(caller.vault_id)
    for attempt in (1, 2):  # a concurrent twin (same card or key) wins once; then we read it
        prepared = await services.run_db(_prepare, caller, request, idem, cipher)
        if isinstance(prepared, Replay):
            return prepared.status, prepared.body
        try:
            answer = await services.writes.write(partial(_store, caller, idem, prepared))
        except IntegrityError:
            if attempt == 2:
                raise
            continue
        if isinstance(answer, ProviderError):  # the card was enrolled all the same
            raise answer
        return answer
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class _Provision:
    """A provisioning made ready outside the write lock."""

    enrolment: Enrolment | None  # the card to enrol first (``{pan, …}``)
    card: CardRecord  # the card, or the card to enrol (as the write leaves it)
    live: NetworkTokenRecord | None  # its live token when read, if it had one
    plan: TokenPlan | None  # otherwise, the new token's plan
    refusal: ProviderError | None = None  # the network's, for a card enrolled anyway
    # The answer and audit record of the planned token, made ahead (for a new token
    # whose card the write does not change); used if the write stores that token.
    planned: NetworkTokenRecord | None = None
    payload: bytes | None = None
    audit: Bound | None = None


def _prepare(
    caller: VaultCaller,
    request: ProvisionRequestIn,
    idem: IdempotentRequest | None,
    cipher: VaultCipher,
) -> Replay | _Provision:
    """Reads only: a replay, or the card's live token, or the plan of a new one (the
    network has answered; a refusal of a card already enrolled is raised here, before
    anything is written)."""
    db = caller.runtime.db
    replay = replay_of(db, idem)
    if replay is not None:
        return replay
    pan: Pan | None = None
    enrolment: Enrolment | None = None
    if request.enrol is not None:
        enrolment = prepare_enrolment(caller, *request.enrol, None)
        card, pan, expiry = enrolment.card, enrolment.pan, enrolment.expiry
    else:
        assert request.card_key is not None
        card = read_card(db, caller.vault_id, request.card_key)
        expiry = normalize_expiry(
            request.exp_month or card.exp_month,
            request.exp_year or card.exp_year,
            dt.date.today(),
        )
    new_card = enrolment is not None and enrolment.created
    live = None if new_card else live_token_of_card(db, card.id)
    if live is not None:
        return _Provision(enrolment, card, live, None)
    item = Provisioning(card, expiry.month, expiry.year, pan=pan, cvc=request.cvc)
    plan = plan_tokens(db, caller.runtime.providers, [item], cipher, {})
    refusal = plan.results[0]
    if not isinstance(refusal, ProviderError):
        if refusal is None or (enrolment is not None and not enrolment.created):
            return _Provision(enrolment, card, None, plan)
        token = refusal[0]
        payload = orjson.dumps(token_out(token, card))
        audit = bind_audit(db, _provision_audit(caller, token, card))
        return _Provision(enrolment, card, None, plan, None, token, payload, audit)
    if enrolment is None:
        raise refusal
    return _Provision(enrolment, card, None, None, refusal)


def _store(
    caller: VaultCaller, idem: IdempotentRequest | None, ready: _Provision, conn: Connection
) -> tuple[int, bytes] | ProviderError:
    """The write of one provisioning (one savepoint of a shared transaction); the
    network's refusal of a card enrolled here is returned, not raised, so that the
    enrolment is kept."""
    if ready.enrolment is not None:
        store_enrolment(ready.enrolment, conn)
    if ready.refusal is not None:
        return ready.refusal
    token = ready.live
    created = False
    if ready.plan is not None:
        token = live_token_of_card(conn, ready.card.id)  # a twin's, meanwhile
        if token is None:
            result = store_tokens(conn, ready.plan)[0]
            if isinstance(result, ProviderError):  # a network asked only now refused
                return result
            token, created = result
    assert token is not None  # the live token, or the plan's (stored, or a twin's)
    status = 201 if created else 200
    audit: AuditRecord | Bound
    if token is ready.planned and ready.payload is not None and ready.audit is not None:
        payload, audit = ready.payload, ready.audit
    else:
        payload = orjson.dumps(token_out(token, ready.card))
        audit = _provision_audit(caller, token, ready.card)
    if idem:
        idem.remember(conn, status, payload)
    write_audit(conn, audit)
    return status, payload


def _provision_audit(
    caller: VaultCaller, token: NetworkTokenRecord, card: CardRecord
) -> AuditRecord:
    return caller.record(
        "network_token.provision", "network_token", token.id, state=token.state, card_id=card.id
    )
