"""Small helpers: run one simulator call in its own transaction, inspect rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import update

from cardvault.crypto import Pan
from cardvault.networks import NetworkSimulator, ProvisionRequest, TokenStatus, brand_of
from cardvault.store import Database
from cardvault.store.models import SimulatedToken
from cardvault.store.types import utcnow

T = TypeVar("T")

CARDS = {
    "visa": "4242424242424242",
    "mastercard": "5555555555554444",
    "amex": "378282246310005",
    "discover": "6011111111111117",
}
NETWORKS = list(CARDS)
EXP = (11, 2031)


def call(db: Database, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(session, *args, **kwargs)`` in a transaction of its own."""
    with db.transaction() as session:
        return fn(session, *args, **kwargs)


def provision(db: Database, pan: str, exp: tuple[int, int] = EXP) -> TokenStatus:
    sim = NetworkSimulator(brand_of(pan))
    return call(db, sim.provision, ProvisionRequest(Pan(pan), *exp, cvc="123"))


def row(db: Database, provider_id: str) -> SimulatedToken:
    with db.sessions() as session:
        found = session.get(SimulatedToken, provider_id)
    assert found is not None
    return found


def make_due(db: Database, provider_id: str) -> None:
    """Move a pending token's settle time into the past instead of sleeping."""
    with db.transaction() as session:
        session.execute(
            update(SimulatedToken)
            .where(SimulatedToken.id == provider_id)
            .values(settle_at=utcnow() - dt.timedelta(seconds=1))
        )
