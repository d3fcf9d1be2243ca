"""Provisioning many tokens at one network in one round: what bulk enrolment needs.

The built-in simulators store a whole batch with one multi-row INSERT (the same rows,
checks and refusals as :meth:`NetworkSimulator.provision`); any other provider is
asked once per request.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from cardvault.networks.provider import (
    ProviderError,
    ProvisionRequest,
    TokenServiceProvider,
    TokenStatus,
)
from cardvault.networks.simulator import NetworkSimulator
from cardvault.store.models import Base, SimulatedToken
from cardvault.store.types import utcnow

Outcome = TokenStatus | ProviderError
_COLUMNS = tuple(c.key for c in SimulatedToken.__table__.columns)


def _one_by_one(
    session: Session, provider: TokenServiceProvider, requests: Sequence[ProvisionRequest]
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for request in requests:
        try:
            outcomes.append(provider.provision(session, request))
        except ProviderError as error:
            outcomes.append(error)
    return outcomes


def _number_tokens(
    session: Session,
    simulator: NetworkSimulator,
    rows: list[tuple[ProvisionRequest, SimulatedToken]],
) -> None:
    """Random token numbers for the rows, unique in the network (one query for all)."""
    for _request, row in rows:
        row.token_number = simulator.profile.random_token_number()
    numbers = [row.token_number for _request, row in rows]
    taken = set(
        session.scalars(
            select(SimulatedToken.token_number).where(
                SimulatedToken.network == simulator.network,
                SimulatedToken.token_number.in_(numbers),
            )
        )
    )
    seen: set[str] = set()
    for request, row in rows:
        clash = row.token_number in taken or row.token_number in seen
        if clash or row.token_number == request.pan.reveal():
            row.token_number = simulator.new_token_number(session, request.pan)
        seen.add(row.token_number)


def provision_many(
    session: Session, provider: TokenServiceProvider, requests: Sequence[ProvisionRequest]
) -> list[Outcome]:
    """Each request's token status, or the refusal it got, in request order."""
    if not isinstance(provider, NetworkSimulator):
        return _one_by_one(session, provider, requests)
    now = utcnow()
    outcomes: list[Outcome | None] = []
    rows: list[tuple[ProvisionRequest, SimulatedToken]] = []
    for request in requests:
        try:
            row = provider.new_row(request, now)
        except ProviderError as error:
            outcomes.append(error)
            continue
        rows.append((request, row))
        outcomes.append(None)
    if rows:
        _number_tokens(session, provider, rows)
        table = Base.metadata.tables["simulated_tokens"]
        values = [{name: getattr(row, name) for name in _COLUMNS} for _r, row in rows]
        session.execute(insert(table), values)
    stored = iter(rows)
    return [o if o is not None else provider.status_of(next(stored)[1]) for o in outcomes]
