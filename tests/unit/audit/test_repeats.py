"""Refusals that come in floods: the first of each kind is written, the rest counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cardvault.audit import AuditBuffer, AuditRecord
from cardvault.audit.services import MAX_REPEAT_KEYS, REPEAT_WINDOW
from cardvault.store import Database, create_database, upgrade
from cardvault.store.models import AuditEvent


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    database = create_database(url)
    yield database
    database.dispose()


def refusal(ip: str = "203.0.113.9", reason: str = "malformed token") -> AuditRecord:
    return AuditRecord(
        actor_type="anonymous",
        actor_id=None,
        action="token.verify",
        outcome="failure",
        reason=reason,
        source_ip=ip,
    )


def rows(db: Database) -> list[dict[str, Any]]:
    with db.sessions() as session:
        found = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        return [{"reason": r.reason, "source_ip": r.source_ip, "details": r.details} for r in found]


def test_a_flood_from_one_source_is_one_record_and_one_count_a_window(db: Database) -> None:
    buffer = AuditBuffer(db)
    for i in range(1000):
        buffer.add_repeated(refusal(), now=100.0 + i * 0.01)
    buffer.flush(now=111.0)
    assert rows(db) == [{"reason": "malformed token", "source_ip": "203.0.113.9", "details": None}]
    assert len(buffer) == 1  # the open window's count is still to be written
    buffer.add_repeated(refusal(), now=100.0 + REPEAT_WINDOW + 1)  # a new window
    buffer.flush(now=100.0 + REPEAT_WINDOW + 2)
    written = rows(db)
    assert len(written) == 3
    assert written[1]["details"]["repeated"] == 999
    assert written[2]["details"] is None


def test_other_sources_and_reasons_are_written_apart(db: Database) -> None:
    buffer = AuditBuffer(db)
    buffer.add_repeated(refusal("203.0.113.9"), now=1.0)
    buffer.add_repeated(refusal("203.0.113.10"), now=1.0)
    buffer.add_repeated(refusal("203.0.113.9", "token expired"), now=1.0)
    buffer.flush(now=2.0)
    assert len(rows(db)) == 3


def test_the_final_flush_writes_every_open_count(db: Database) -> None:
    buffer = AuditBuffer(db)
    for _ in range(5):
        buffer.add_repeated(refusal())
    buffer.flush(final=True)
    written = rows(db)
    assert [w["details"] and w["details"]["repeated"] for w in written] == [None, 4]
    assert len(buffer) == 0


def test_memory_is_bounded_and_evicted_counts_are_written(db: Database) -> None:
    buffer = AuditBuffer(db)
    buffer.add_repeated(refusal("198.51.100.1"), now=1.0)
    buffer.add_repeated(refusal("198.51.100.1"), now=1.5)
    for i in range(MAX_REPEAT_KEYS):
        buffer.add_repeated(refusal(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"), now=2.0)
    buffer.flush(now=3.0)
    evicted = [r for r in rows(db) if r["source_ip"] == "198.51.100.1"]
    assert [r["details"] and r["details"]["repeated"] for r in evicted] == [None, 1]
