"""Direct statements read and write exactly what SQLAlchemy reads and writes."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError

from cardvault.store import Database, create_database
from cardvault.store.direct import Direct
from cardvault.store.migrate import upgrade
from cardvault.store.models import Base
from cardvault.store.unavailable import is_unavailable
from tests.conftest import BACKENDS, Databases

AUDIT = Base.metadata.tables["audit_events"]
ORGS = Base.metadata.tables["organizations"]
BY_ACTION = select(AUDIT).where(AUDIT.c.action == bindparam("action")).order_by(AUDIT.c.id)
WHEN = dt.datetime(2026, 11, 29, 7, 5, 3, 120_000, tzinfo=dt.UTC)


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, databases: Databases) -> Iterator[Database]:
    url = databases.url(request.param)
    upgrade(url)
    database = create_database(url)
    yield database
    database.dispose()


def _record(action: str, details: object, **fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "occurred_at": WHEN,
        "actor_type": "service_account",
        "actor_id": "svc_1",
        "action": action,
        "outcome": "success",
        "reason": None,
        "org_id": None,
        "vault_id": "vlt_1",
        "target_type": "card",
        "target_id": "card_1",
        "source_ip": "127.0.0.1",
        "details": details,
    }
    return {**row, **fields}


def test_rows_written_directly_read_back_like_sqlalchemy_rows(db: Database) -> None:
    rows = [
        _record("direct.write", {"rows": [1, 200], "ok": True}),
        _record("direct.write", None, occurred_at=WHEN + dt.timedelta(microseconds=1)),
    ]
    with db.write_connection() as conn:
        Direct(insert(AUDIT)).execute(conn, rows)
    with db.engine.connect() as conn:
        expected = [tuple(r) for r in conn.execute(BY_ACTION, {"action": "direct.write"})]

    found = Direct(BY_ACTION).all(db, {"action": "direct.write"})

    assert [tuple(r) for r in found] == expected
    assert found[0].details == {"rows": [1, 200], "ok": True}
    assert found[0].occurred_at == WHEN and found[0].occurred_at.tzinfo is not None
    assert found[1].details is None and found[1].reason is None


def test_rows_written_by_sqlalchemy_read_directly_are_the_same(db: Database) -> None:
    with db.write_connection() as conn:
        conn.execute(insert(AUDIT), [_record("orm.write", {"a": "b"})])
        expected = conn.execute(BY_ACTION, {"action": "orm.write"}).one()

    row = Direct(BY_ACTION).first(db, {"action": "orm.write"})

    assert tuple(row) == tuple(expected)
    assert row._asdict() == dict(expected._mapping)
    assert Direct(BY_ACTION).first(db, {"action": "never.written"}) is None


def test_a_duplicate_key_is_sqlalchemys_integrity_error_without_the_values(db: Database) -> None:
    add_org = Direct(insert(ORGS))
    # The duplicate key itself holds the digits: PostgreSQL's DETAIL line would quote it.
    org = {"id": "org_4242424242424242", "name": "holder 4242424242424242", "created_at": WHEN}
    with db.write_connection() as conn:
        add_org.execute(conn, [org])

    with pytest.raises(IntegrityError) as raised, db.write_connection() as conn:
        add_org.execute(conn, [org])

    assert "4242424242424242" not in str(raised.value)
    assert "4242424242424242" not in repr(raised.value.orig)
    with db.engine.connect() as conn:
        assert conn.execute(select(ORGS.c.id)).scalars().all() == [org["id"]]


def test_a_failed_write_leaves_nothing_of_its_transaction(db: Database) -> None:
    add_org = Direct(insert(ORGS))
    with pytest.raises(IntegrityError), db.write_connection() as conn:
        add_org.execute(conn, [{"id": "org_a", "name": "a", "created_at": WHEN}])
        add_org.execute(conn, [{"id": "org_a", "name": "again", "created_at": WHEN}])
    with db.engine.connect() as conn:
        assert conn.execute(select(ORGS.c.id)).scalars().all() == []


def test_an_insert_must_give_the_columns_sqlalchemy_would_default(db: Database) -> None:
    cards = Base.metadata.tables["cards"]  # created_at has a Python-side default
    with pytest.raises(ValueError, match="created_at"), db.write_connection() as conn:
        Direct(insert(cards)).execute(conn, [{"id": "card_1"}])


def test_an_expanding_in_reads_what_sqlalchemy_reads_for_any_number_of_values(
    db: Database,
) -> None:
    with db.write_connection() as conn:
        conn.execute(insert(AUDIT), [_record(f"act.{n}", {"n": n}) for n in range(5)])
    by_actions = select(AUDIT).where(
        AUDIT.c.vault_id == bindparam("vault"),
        AUDIT.c.action.in_(bindparam("actions", expanding=True)),
    )
    direct = Direct(by_actions.order_by(AUDIT.c.id))
    for actions in ([], ["act.3"], ["act.0", "act.4", "nothing"], [f"act.{n}" for n in range(5)]):
        params = {"vault": "vlt_1", "actions": actions}
        with db.engine.connect() as conn:
            expected = [tuple(r) for r in conn.execute(by_actions.order_by(AUDIT.c.id), params)]
            in_transaction = [tuple(r) for r in direct.all(conn, params)]
        assert [tuple(r) for r in direct.all(db, params)] == expected
        assert in_transaction == expected
        assert len(expected) == len(set(actions) - {"nothing"})


def test_a_read_in_a_transaction_sees_its_uncommitted_writes(db: Database) -> None:
    org = {"id": "org_t", "name": "t", "created_at": WHEN}
    by_id = Direct(select(ORGS).where(ORGS.c.id == bindparam("id")))
    with db.write_connection() as conn:
        Direct(insert(ORGS)).execute(conn, [org])
        assert by_id.first(conn, {"id": "org_t"}).name == "t"
        assert by_id.first(db, {"id": "org_t"}) is None  # not committed yet
    assert by_id.first(db, {"id": "org_t"}).name == "t"


def test_an_in_list_given_in_the_statement_reads_like_sqlalchemy(db: Database) -> None:
    with db.write_connection() as conn:
        conn.execute(
            insert(AUDIT),
            [_record("listed", None, outcome=o) for o in ("success", "failure", "other")],
        )
    query = (
        select(AUDIT.c.outcome)
        .where(AUDIT.c.action == bindparam("action"), AUDIT.c.outcome.in_(["success", "failure"]))
        .order_by(AUDIT.c.id)
    )

    found = Direct(query).all(db, {"action": "listed"})

    assert [r.outcome for r in found] == ["success", "failure"]


def test_rows_bound_before_the_transaction_write_what_sqlalchemy_reads_back(db: Database) -> None:
    rows = [
        _record("bound.write", {"rows": [1, 2]}),
        _record("bound.write", None, occurred_at=WHEN + dt.timedelta(seconds=1)),
    ]
    bound = Direct(insert(AUDIT)).bind(db, rows)  # no transaction yet

    with db.write_connection() as conn:
        Direct(insert(AUDIT)).execute(conn, bound)
    with db.engine.connect() as conn:
        written = conn.execute(BY_ACTION, {"action": "bound.write"}).all()

    assert [(r.occurred_at, r.details, r.vault_id) for r in written] == [
        (WHEN, {"rows": [1, 2]}, "vlt_1"),
        (WHEN + dt.timedelta(seconds=1), None, "vlt_1"),
    ]
    assert bound.sql is not None  # bound once, before the transaction, on every database


def test_a_bound_duplicate_is_sqlalchemys_integrity_error_without_the_values(db: Database) -> None:
    add_org = Direct(insert(ORGS))
    org = {"id": "org_1", "name": "holder 4242424242424242", "created_at": WHEN}
    with db.write_connection() as conn:
        add_org.execute(conn, add_org.bind(db, [org]))

    with pytest.raises(IntegrityError) as raised, db.write_connection() as conn:
        add_org.execute(conn, add_org.bind(conn, [org]))

    assert "4242424242424242" not in str(raised.value)
    assert "4242424242424242" not in repr(add_org.bind(db, [org]))


def test_postgresql_prepares_the_loop_readers_statements(pg: Database) -> None:
    """Reads from the event loop run on an asynchronous reader, which has the server
    prepare them: what runs again sends only the statement's name and parameters."""
    by_id = Direct(select(ORGS).where(ORGS.c.id == bindparam("id")))

    async def scenario() -> tuple[list[Any], list[Any]]:
        try:
            for n in range(3):
                assert await by_id.afirst(pg, {"id": f"org_{n}"}) is None
            # The loop's one reader so far lists what the server prepared for it.
            listed = b"SELECT statement FROM pg_prepared_statements"
            prepared = await pg.aread(listed, {}, one=False)
            read_only = await pg.aread(b"SHOW default_transaction_read_only", {}, one=True)
            return prepared, read_only
        finally:
            await pg.aclose()

    prepared, read_only = asyncio.run(scenario())
    assert any("FROM organizations" in row[0] and "$1" in row[0] for row in prepared)
    assert read_only == [("on",)]  # and it cannot write


def test_a_loop_reader_whose_connection_was_cut_reads_again(pg: Database) -> None:
    by_id = Direct(select(ORGS).where(ORGS.c.id == bindparam("id")))
    pid_of = b"SELECT pg_backend_pid()"

    async def scenario() -> tuple[int, int]:
        try:
            assert await by_id.afirst(pg, {"id": "org_x"}) is None
            [(pid,)] = await pg.aread(pid_of, {}, one=True)
            with pg.engine.connect() as conn:  # the server restarts, a proxy drops it...
                conn.execute(select(func.pg_terminate_backend(pid)))
            assert await by_id.afirst(pg, {"id": "org_x"}) is None  # on a new connection
            [(again,)] = await pg.aread(pid_of, {}, one=True)
            return pid, again
        finally:
            await pg.aclose()

    pid, again = asyncio.run(scenario())
    assert again != pid


def test_a_thread_read_whose_connection_was_cut_reads_again(pg: Database) -> None:
    """Reads from threads run on the pool's connections (in autocommit)."""
    by_id = Direct(select(ORGS).where(ORGS.c.id == bindparam("id")))
    assert by_id.first(pg, {"id": "org_x"}) is None
    [(pid,)] = pg.read(b"SELECT pg_backend_pid()", {}, one=True)
    url = pg.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as other:  # not one of the pool's
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))

    assert by_id.first(pg, {"id": "org_x"}) is None
    [(again,)] = pg.read(b"SELECT pg_backend_pid()", {}, one=True)
    assert again != pid


def test_an_unreachable_database_is_unavailable_to_the_loop_too() -> None:
    db = create_database("postgresql+psycopg://postgres@127.0.0.1:9/nowhere")

    async def scenario() -> BaseException:
        try:
            with pytest.raises(Exception) as raised:
                await Direct(select(ORGS.c.id)).afirst(db, {})
            return raised.value
        finally:
            await db.aclose()

    try:
        assert is_unavailable(asyncio.run(scenario()))
    finally:
        db.dispose()


def test_an_unreachable_database_is_unavailable_not_a_bug() -> None:
    db = create_database("postgresql+psycopg://postgres@127.0.0.1:9/nowhere")
    try:
        with pytest.raises(Exception) as raised:
            Direct(select(ORGS.c.id)).all(db, {})
        assert is_unavailable(raised.value)
    finally:
        db.dispose()
