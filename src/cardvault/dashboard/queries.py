"""Read-only queries behind the dashboard pages (no card data ever leaves here)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from cardvault.store.models import AuditEvent, Card, NetworkToken, Vault

TOKEN_STATES = ("PENDING", "ACTIVE", "SUSPENDED", "DELETED", "FAILED")
AUDIT_PAGE = 50


@dataclass
class VaultSummary:
    id: str
    name: str
    created_at: dt.datetime
    cards: int = 0
    tokens: dict[str, int] = field(default_factory=dict)


def vault_summaries(session: Session, org_id: str) -> list[VaultSummary]:
    """Every vault of the organization with its card count and token counts by state."""
    vaults = session.scalars(
        select(Vault).where(Vault.org_id == org_id).order_by(Vault.created_at, Vault.id)
    ).all()
    card_rows = session.execute(
        select(Card.vault_id, func.count()).where(Card.org_id == org_id).group_by(Card.vault_id)
    ).tuples()
    cards = {vault_id: count for vault_id, count in card_rows}
    tokens: dict[str, dict[str, int]] = defaultdict(dict)
    rows = session.execute(
        select(NetworkToken.vault_id, NetworkToken.state, func.count())
        .where(NetworkToken.org_id == org_id)
        .group_by(NetworkToken.vault_id, NetworkToken.state)
    ).tuples()
    for vault_id, state, count in rows:
        tokens[vault_id][state] = count
    return [
        VaultSummary(v.id, v.name, v.created_at, cards.get(v.id, 0), tokens.get(v.id, {}))
        for v in vaults
    ]


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    outcome: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def _filtered(query: Select[Any], wanted: AuditFilter) -> Select[Any]:
    if wanted.actor:
        query = query.where(AuditEvent.actor_id == wanted.actor)
    if wanted.action:
        query = query.where(AuditEvent.action == wanted.action)
    if wanted.outcome:
        query = query.where(AuditEvent.outcome == wanted.outcome)
    if wanted.since:
        query = query.where(AuditEvent.occurred_at >= wanted.since)
    if wanted.until:
        query = query.where(AuditEvent.occurred_at < wanted.until)
    return query


def audit_page(
    session: Session, org_id: str, wanted: AuditFilter, before: int | None
) -> tuple[list[AuditEvent], int | None]:
    """Newest first; the events older than ``before`` (an event id) and the next cursor."""
    query = _filtered(select(AuditEvent).where(AuditEvent.org_id == org_id), wanted)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    rows = list(session.scalars(query.order_by(AuditEvent.id.desc()).limit(AUDIT_PAGE + 1)))
    following = rows[AUDIT_PAGE - 1].id if len(rows) > AUDIT_PAGE else None
    return rows[:AUDIT_PAGE], following


def audit_choices(session: Session, org_id: str) -> tuple[list[str], list[str]]:
    """The actions and actors seen in the organization's log, for the filter menus."""
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.org_id == org_id).distinct()
    ).all()
    actors = session.scalars(
        select(AuditEvent.actor_id)
        .where(AuditEvent.org_id == org_id, AuditEvent.actor_id.is_not(None))
        .distinct()
    ).all()
    return sorted(actions), sorted(a for a in actors if a)
