"""Compiled statements on psycopg 3 connections.

The SQL is what SQLAlchemy's psycopg dialect compiles (``pyformat`` parameters, with
their casts), sent as bytes so that psycopg does not encode it again. psycopg prepares
a statement on the server once a connection has run it ``prepare_threshold`` times
(at once on the readers): later executions send only its name and parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import psycopg
from sqlalchemy import exc

from cardvault.store.backend import Params, Raw, Sql


class PsycopgDriver:
    """:class:`~cardvault.store.backend.Driver` for psycopg 3."""

    def sql(self, text: str) -> Sql:
        return text.encode()

    def fetch(self, conn: Any, sql: Sql, params: Params, *, one: bool) -> list[Raw]:
        """``conn``: a ``psycopg.Connection``."""
        try:
            with conn.cursor() as cursor:
                cursor.execute(cast(bytes, sql), params)
                rows: list[Raw] = cursor.fetchmany(1) if one else cursor.fetchall()
                return rows
        except psycopg.Error as error:
            raise translate(sql, error, conn) from None

    def execute(self, conn: Any, sql: Sql, params: Sequence[Params]) -> None:
        """``conn``: a ``psycopg.Connection``."""
        try:
            with conn.cursor() as cursor:
                if len(params) == 1:
                    cursor.execute(cast(bytes, sql), params[0])
                else:
                    cursor.executemany(cast(bytes, sql), params)
        except psycopg.Error as error:
            raise translate(sql, error, conn) from None


def translate(sql: Sql, error: psycopg.Error, conn: psycopg.BaseConnection[Any]) -> exc.DBAPIError:
    """The error as SQLAlchemy raises it (``IntegrityError``, ``OperationalError``...),
    marked invalidated when the connection is gone, with the statement and no values:
    neither the parameters nor the server's DETAIL line (``Key (…)=(…)``), which may be
    card data."""
    text = sql if isinstance(sql, str) else sql.decode()
    translated = exc.DBAPIError.instance(
        text,
        None,
        _without_values(error),
        psycopg.Error,
        hide_parameters=True,
        connection_invalidated=conn.broken or conn.closed,
    )
    assert isinstance(translated, exc.DBAPIError)  # a psycopg.Error always is one
    return translated


def _without_values(error: psycopg.Error) -> psycopg.Error:
    """The same error class (SQLSTATE included) with the server's primary message
    only; a data error's message may quote the value it refused, so it keeps none."""
    if isinstance(error, psycopg.DataError):
        primary = f"{type(error).__name__} (SQLSTATE {error.sqlstate})"
    else:
        primary = error.diag.message_primary or str(error).splitlines()[0]
    try:
        return type(error)(primary)
    except Exception:  # a class that will not be built from a message
        return psycopg.DatabaseError(primary)
