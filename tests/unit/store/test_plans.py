"""PostgreSQL answers the hot lookups from one index, whatever its statistics say."""

from __future__ import annotations

import json

from sqlalchemy import insert

from cardvault.network_tokens.services import TOKEN_BY_ALIAS
from cardvault.store import Database
from cardvault.store.models import Base
from cardvault.store.records import CARDS, TOKENS
from cardvault.store.types import utcnow

TOKENS_IN_VAULT = 3000


def _plan(db: Database, params: dict[str, str]) -> str:
    """The plan of the statement the service runs, as the server prepares it."""
    compiled = TOKEN_BY_ALIAS._compile(db.engine.dialect, (), params)
    conn = db.engine.raw_connection()
    try:
        cursor = conn.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(b"EXPLAIN (FORMAT JSON) " + compiled.sql, compiled.bind(params))
        return json.dumps(cursor.fetchone()[0])
    finally:
        conn.close()


def test_a_token_is_found_by_alias_from_one_index_after_a_burst(pg: Database) -> None:
    """A burst of enrolments in one vault, before PostgreSQL's statistics know of it:
    the lookup by alias still reads one index entry, not the vault's thousands."""
    now = utcnow()
    card = {
        "id": "card_1", "vault_id": "vlt_1", "org_id": "org_1", "pan_alias": "pan_card",
        "fingerprint": b"f" * 32, "pan_encrypted": b"e" * 40, "data_key_version": 1,
        "bin": "424242", "last4": "4242", "brand": "visa", "exp_month": 12,
        "exp_year": 2030, "holder_info": None, "created_at": now, "updated_at": now,
    }  # fmt: skip
    with pg.engine.begin() as conn:
        conn.execute(insert(Base.metadata.tables["organizations"]), [
            {"id": "org_1", "name": "o", "created_at": now}
        ])  # fmt: skip
        conn.execute(insert(Base.metadata.tables["vaults"]), [
            {"id": "vlt_1", "org_id": "org_1", "name": "v", "created_at": now}
        ])  # fmt: skip
        conn.execute(insert(CARDS), [card])
        conn.execute(insert(TOKENS), [
            {
                "id": f"ntk_{n}", "vault_id": "vlt_1", "org_id": "org_1", "card_id": "card_1",
                "live_card_id": None, "pan_alias": f"pan_{n}", "network": "visa",
                "provider_id": f"p{n}", "state": "DELETED", "token_encrypted": None,
                "token_last4": None, "token_exp_month": None, "token_exp_year": None,
                "payment_account_reference": None, "failure_reason": None,
                "created_at": now, "updated_at": now,
            }
            for n in range(TOKENS_IN_VAULT)
        ])  # fmt: skip

    plan = _plan(pg, {"vault_id": "vlt_1", "key": "pan_7"})
    assert "ix_network_tokens_alias_vault" in plan
    assert "ix_network_tokens_vault_created" not in plan
    found = TOKEN_BY_ALIAS.first(pg, {"vault_id": "vlt_1", "key": "pan_7"})
    assert found is not None and found[0].id == "ntk_7"
