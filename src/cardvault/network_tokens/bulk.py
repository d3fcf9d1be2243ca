"""Provisioning network tokens for many cards at once (bulk enrolment).

The same rules as :func:`cardvault.network_tokens.services.provision`, a chunk at a
time: one query finds the cards' live tokens, each network is asked once for its
cards (:func:`cardvault.networks.batch.provision_many`), and the new tokens are
stored with one multi-row INSERT instead of one flush per card.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from cardvault.cards.services import reveal_pan
from cardvault.crypto.envelope import VaultCipher
from cardvault.events import emit_many, event_for_state
from cardvault.network_tokens.services import ProviderFor, new_token
from cardvault.networks.batch import provision_many as provision_many_at
from cardvault.networks.provider import (
    ProviderError,
    ProvisionRequest,
    TokenServiceProvider,
)
from cardvault.store.models import Base, Card, NetworkToken


@dataclass(frozen=True)
class Provisioning:
    """One card to provision in :func:`provision_many`, with the expiry to send."""

    card: Card
    exp_month: int
    exp_year: int


Provisioned = tuple[NetworkToken, bool] | ProviderError


def _provision_group(
    session: Session,
    provider: TokenServiceProvider,
    items: list[tuple[int, Provisioning]],
    cipher: VaultCipher,
    results: list[Provisioned | None],
) -> list[NetworkToken]:
    requests = [
        ProvisionRequest(reveal_pan(p.card, cipher), p.exp_month, p.exp_year, None)
        for _i, p in items
    ]
    created = []
    for (index, item), outcome in zip(
        items, provision_many_at(session, provider, requests), strict=True
    ):
        if isinstance(outcome, ProviderError):
            results[index] = outcome
        else:
            token = new_token(item.card, outcome, cipher)
            results[index] = (token, True)
            created.append(token)
    return created


def _announce_created(
    session: Session, created: list[NetworkToken], cards: dict[str, Card]
) -> None:
    """The events :func:`provision` writes for a new token (activated or
    provisioning_failed; none while PENDING), in the same transaction."""
    events = []
    for token in created:
        name = event_for_state(token.state)
        if name is not None:
            events.append((name, cards[token.card_id], token))
    emit_many(session, events)


def provision_many(
    session: Session, provider_for: ProviderFor, items: Sequence[Provisioning], cipher: VaultCipher
) -> list[Provisioned]:
    """:func:`provision` for many cards of one vault at once (same rules: a card's live
    token is returned, not replaced), with one query and one INSERT per step instead
    of one per card. Each item's ``(token, created)`` or refusal, in item order; a
    card given twice gets one token."""
    ids = {item.card.id for item in items}
    live = {
        t.live_card_id: t
        for t in session.scalars(select(NetworkToken).where(NetworkToken.live_card_id.in_(ids)))
    }
    results: list[Provisioned | None] = [None] * len(items)
    groups: dict[str, tuple[TokenServiceProvider, list[tuple[int, Provisioning]]]] = {}
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        if item.card.id in live:
            results[index] = (live[item.card.id], False)
        elif item.card.id not in first:
            first[item.card.id] = index
            try:
                provider = provider_for(item.card.brand)
            except ProviderError as error:
                results[index] = error
                continue
            groups.setdefault(provider.network, (provider, []))[1].append((index, item))
    created: list[NetworkToken] = []
    for provider, group in groups.values():
        created += _provision_group(session, provider, group, cipher, results)
    if created:
        table = Base.metadata.tables["network_tokens"]
        session.execute(
            insert(table), [{c.key: getattr(t, c.key) for c in table.columns} for t in created]
        )
        _announce_created(session, created, {item.card.id: item.card for item in items})
    for index, item in enumerate(items):
        if results[index] is None:  # a repeated card: the first one's answer
            earlier = results[first[item.card.id]]
            results[index] = (earlier[0], False) if isinstance(earlier, tuple) else earlier
    return [r for r in results if r is not None]
