"""Provisioning many tokens at one network in one round: what bulk enrolment needs.

In two steps, so that the work can be done before the caller takes the database's
write lock and only the storing inside it:

- :func:`prepare` makes the built-in simulators' token rows (the same rows, checks and
  refusals as :meth:`NetworkSimulator.provision`) and so knows their answers already;
  it only reads the database.
- :func:`store` stores them with one multi-row INSERT, in the caller's write
  transaction. Any other provider is asked there, once per request, so a real network
  is called only for requests whose result will be kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.orm import Session

from cardvault.networks.provider import (
    NetworkUnavailable,
    ProviderError,
    ProvisionRequest,
    TokenServiceProvider,
    TokenStatus,
)
from cardvault.networks.simulator import NetworkSimulator
from cardvault.store.direct import Bound, Direct, Source
from cardvault.store.models import Base
from cardvault.store.types import utcnow

Outcome = TokenStatus | ProviderError
NUMBER_TRIES = 100  # random token numbers tried for one token before giving up
_SIMULATED = Base.metadata.tables["simulated_tokens"]
_INSERT = Direct(insert(_SIMULATED))
_TAKEN = Direct(
    select(_SIMULATED.c.token_number).where(
        _SIMULATED.c.network == bindparam("b_network"),
        _SIMULATED.c.token_number.in_(bindparam("b_numbers", expanding=True)),
    )
)


@dataclass
class Batch:
    """Requests to one network. ``outcomes`` holds the answers known before storing
    (the simulators'); None where the network is asked by :func:`store`."""

    provider: TokenServiceProvider
    requests: Sequence[ProvisionRequest]
    outcomes: list[Outcome | None]
    rows: list[dict[str, Any]] = field(default_factory=list)  # simulator rows to store
    bound: Bound | None = None  # the rows' INSERT, bound ahead


def _number_tokens(
    source: Source,
    simulator: NetworkSimulator,
    rows: list[tuple[ProvisionRequest, dict[str, Any]]],
) -> None:
    """Random token numbers for the rows, unique in the network and never the PAN (one
    query per round; the unique constraint catches a number taken after this read)."""
    todo, kept = rows, set[str]()
    for _ in range(NUMBER_TRIES):
        for _request, row in todo:
            row["token_number"] = simulator.profile.random_token_number()
        numbers = [row["token_number"] for _request, row in todo]
        params = {"b_network": simulator.network, "b_numbers": numbers}
        taken = {found.token_number for found in _TAKEN.all(source, params)}
        clashes = []
        for request, row in todo:
            number = row["token_number"]
            if number in taken or number in kept or number == request.pan.reveal():
                clashes.append((request, row))
            else:
                kept.add(number)
        if not clashes:
            return
        todo = clashes
    raise NetworkUnavailable("the network could not allocate a token number")


def prepare(
    source: Source, provider: TokenServiceProvider, requests: Sequence[ProvisionRequest]
) -> Batch:
    """The batch of ``requests`` to ``provider``, with the simulators' answers; reads
    the database only (``source``: the database, or a transaction)."""
    if not isinstance(provider, NetworkSimulator):
        return Batch(provider, requests, [None] * len(requests))
    now = utcnow()
    batch = Batch(provider, requests, [])
    made: list[tuple[ProvisionRequest, dict[str, Any]]] = []
    for request in requests:
        try:
            made.append((request, provider.new_values(request, now)))
        except ProviderError as error:
            batch.outcomes.append(error)
            continue
        batch.outcomes.append(None)
    if made:
        _number_tokens(source, provider, made)
        batch.rows = [row for _request, row in made]
        batch.bound = _INSERT.bind(source, batch.rows)
    stored = iter(batch.rows)
    batch.outcomes = [
        o if o is not None else provider.status_of(next(stored)) for o in batch.outcomes
    ]
    return batch


def store(conn: Connection, batch: Batch) -> list[Outcome]:
    """Store a prepared batch in the caller's transaction and ask the network for the
    answers still missing; each request's token status or refusal, in request order."""
    _INSERT.execute(conn, batch.bound or batch.rows)
    outcomes: list[Outcome] = []
    session: Session | None = None
    for request, known in zip(batch.requests, batch.outcomes, strict=True):
        if known is not None:
            outcomes.append(known)
            continue
        # A provider other than the simulators works through an ORM session (joining
        # the caller's transaction).
        session = session or Session(bind=conn)
        try:
            outcomes.append(batch.provider.provision(session, request))
        except ProviderError as error:
            outcomes.append(error)
    if session is not None:
        session.flush()
    return outcomes
