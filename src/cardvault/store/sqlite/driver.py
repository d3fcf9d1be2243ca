"""Compiled statements on ``sqlite3`` connections, and this thread's reader."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import exc

from cardvault.store.backend import Params, Raw, Sql


class SQLiteDriver:
    """:class:`~cardvault.store.backend.Driver` for ``sqlite3`` (``qmark`` parameters)."""

    def sql(self, text: str) -> Sql:
        return text

    def fetch(self, conn: Any, sql: Sql, params: Params, *, one: bool) -> list[Raw]:
        """``conn``: a ``sqlite3.Connection``."""
        try:
            cursor = conn.execute(cast(str, sql), cast(Sequence[Any], params))
            raw: list[Raw] = cursor.fetchmany(1) if one else cursor.fetchall()
            cursor.close()
        except sqlite3.Error as error:
            raise translate(sql, error) from None
        return raw

    def execute(self, conn: Any, sql: Sql, params: Sequence[Params]) -> None:
        """``conn``: a ``sqlite3.Connection``."""
        try:
            if len(params) == 1:
                conn.execute(cast(str, sql), cast(Sequence[Any], params[0]))
            else:
                conn.executemany(cast(str, sql), cast(Sequence[Sequence[Any]], params))
        except sqlite3.Error as error:
            raise translate(sql, error) from None


def translate(sql: Sql, error: sqlite3.Error) -> exc.StatementError:
    """The error as SQLAlchemy raises it (callers catch its ``IntegrityError``), with
    no parameter values: they may be card data."""
    text = sql if isinstance(sql, str) else sql.decode()
    return exc.DBAPIError.instance(text, None, error, sqlite3.Error, hide_parameters=True)


def connect_reader(path: str) -> sqlite3.Connection:
    """A read-only connection (``query_only``) outside any transaction: in WAL mode
    every statement sees a consistent snapshot of what was committed before it."""
    reader = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    reader.execute("PRAGMA query_only=ON")
    return reader
