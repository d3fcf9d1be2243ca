"""One issuer for every node (RFC 9068 §2.2 ``iss``, RFC 8414 §2 ``issuer``).

Access tokens name their issuer, ``{CARDVAULT_URL}/auth/realms/{CARDVAULT_REALM}``, and
every node checks it; a node configured with another URL would refuse the tokens of
the others and hand out tokens they refuse. The installation records its issuer at the
first start (or the first start after an upgrade: an existing database adopts the issuer
of the first node that starts) and every node is held to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from cardvault.store.db import Database, insert_if_absent
from cardvault.store.models import Base, InstallationState

__all__ = [
    "Issuer",
    "IssuerMismatch",
    "hold_issuer",
    "issuer_in",
    "recorded_issuer",
    "set_issuer",
]

log = logging.getLogger(__name__)

KEY = "issuer"  # the installation_state row


@dataclass(frozen=True)
class Issuer:
    """The settings that make the issuer: the public base URL and the realm."""

    url: str
    realm: str

    @property
    def value(self) -> str:
        return f"{self.url}/auth/realms/{self.realm}"

    def as_json(self) -> dict[str, str]:
        return {"issuer": self.value, "url": self.url, "realm": self.realm}


class IssuerMismatch(Exception):
    """This node's issuer is not the installation's. The message names both and the
    settings to fix."""

    def __init__(self, configured: Issuer, recorded: Issuer) -> None:
        fix = f"CARDVAULT_URL={recorded.url}"
        if configured.realm != recorded.realm:
            fix += f" and CARDVAULT_REALM={recorded.realm}"
        super().__init__(
            f"this node's token issuer is {configured.value}, but the database records "
            f"{recorded.value}: every node must have the same CARDVAULT_URL (and "
            f"CARDVAULT_REALM); set {fix}, or, if the service's public URL has changed, "
            "run `cardvault db set-issuer` once with the new settings"
        )
        self.configured, self.recorded = configured, recorded


def issuer_in(session: Session) -> Issuer | None:
    """The issuer recorded in the database of ``session``; None before the first start."""
    row = session.get(InstallationState, KEY)
    return None if row is None else Issuer(str(row.value["url"]), str(row.value["realm"]))


def recorded_issuer(db: Database) -> Issuer | None:
    """The installation's issuer; None before the first start."""
    with db.sessions() as session:
        return issuer_in(session)


def hold_issuer(db: Database, configured: Issuer) -> None:
    """Record ``configured`` if the installation has no issuer yet (of two nodes
    starting at once, the first to commit wins); raises :class:`IssuerMismatch` if the
    recorded one differs.

    Only where several machines can share the database (PostgreSQL): a SQLite file is
    one machine's, so a node started there with another URL (``cardvault serve --port
    9000`` without ``CARDVAULT_URL``) is the service moving, and its issuer is recorded
    with a warning (tokens issued under the old one are refused from now on)."""
    recorded = recorded_issuer(db)
    if recorded is None:
        table = Base.metadata.tables[InstallationState.__tablename__]
        with db.transaction() as session:
            insert_if_absent(session, table, {"key": KEY, "value": configured.as_json()})
        recorded = recorded_issuer(db)
    if recorded == configured:
        return
    assert recorded is not None  # inserted just above, by this node or another
    if not db.capabilities.sees_every_commit:  # other machines may be nodes of it
        raise IssuerMismatch(configured, recorded)
    set_issuer(db, configured)
    log.warning(
        "the token issuer is now %s (it was %s): tokens issued before are refused",
        configured.value,
        recorded.value,
    )


def set_issuer(db: Database, issuer: Issuer) -> Issuer | None:
    """Record ``issuer`` as the installation's (the service moved to a new URL); the
    one recorded before, if any. Tokens issued under the old issuer are refused from
    the next start of each node."""
    with db.transaction() as session:
        previous = issuer_in(session)
        session.merge(InstallationState(key=KEY, value=issuer.as_json()))
    return previous
