"""What a caller typed reaches the audit log masked: a card number as BIN and last four,
a client or webhook secret as its prefix, in the target, the reason and the details."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from cardvault.audit import AuditRecord, write_audit
from cardvault.store import Database, create_database, upgrade
from cardvault.store.models import AuditEvent

SECRET = "cvs_PjdyWfbCyhXREEb2Un0ujZulGf-Qs779Py9nKRj35Fc"
HOOK_SECRET = "cvwh_q2xkT0k3Yx9c8Zs1Vw4Hn6Mb5Lp7Rt2Ey8Ua3Io0Pq"
PAN = "4111111111111111"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    database = create_database(url)
    yield database
    database.dispose()


def test_typed_secrets_and_card_numbers_are_stored_masked(db: Database) -> None:
    record = AuditRecord(
        actor_type="service_account",
        actor_id="cv-calm",
        action="service_account.rotate_secret",
        outcome="failure",
        target_type="service_account",
        target_id=SECRET,
        reason=f"insufficient-scope: {PAN}",
        details={"field": HOOK_SECRET, "count": 3},
    )
    with db.transaction() as session:
        write_audit(session, record)
    with db.sessions() as session:
        (row,) = session.scalars(select(AuditEvent)).all()
        stored = f"{row.target_id} {row.reason} {row.details}"
    assert SECRET not in stored and HOOK_SECRET not in stored and PAN not in stored
    assert row.target_id == "cvs_****"
    assert row.details == {"field": "cvwh_****", "count": 3}
    assert "411111" in (row.reason or "") and "1111" in (row.reason or "")
