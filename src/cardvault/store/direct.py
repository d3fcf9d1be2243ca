"""Hot statements run straight on SQLite's driver.

On the hottest calls (``GET /network-tokens/{key}``, ``GET /cards/{key}``,
``POST /cards``, the audit log) SQLAlchemy's work around each execution — pool
checkout, event dispatch, cache-key lookup, building the ``Row`` — costs far more
than SQLite's: about 180 µs around a 12 µs query on this project's bench machine.

A :class:`Direct` statement is still a SQLAlchemy Core statement: SQLAlchemy
compiles it (once) and supplies each column type's own conversions (``UTCDateTime``,
``JSON``...), so values read or written here are exactly what the ORM would read or
write. Only the per-execution machinery is skipped, and only on a file-backed
SQLite database; on PostgreSQL the statement runs through SQLAlchemy as usual.

Reads run on a connection of the calling thread's own (``query_only``, outside any
transaction: in WAL mode every statement sees a consistent snapshot). Writes run
on the driver connection of the caller's SQLAlchemy connection, inside its
transaction.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert, UpdateBase

from cardvault.store.db import Database

Processor = Callable[[Any], Any] | None
Statement = Select[Any] | UpdateBase


class Direct:
    """A Core statement compiled once and executed on the DBAPI connection.

    Statements with bound parameters must name them (``bindparam("key")``); expanding
    ``IN`` parameters are not supported. An ``INSERT`` must be given every column that
    has a Python-side default, since such defaults are SQLAlchemy's to apply.
    """

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        self._compiled: dict[tuple[int, tuple[str, ...]], _Compiled] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reads

    def first(self, db: Database, params: Mapping[str, Any]) -> Any:
        """The first row (a named tuple), or None."""
        rows = self._read(db, params, one=True)
        return rows[0] if rows else None

    def all(self, db: Database, params: Mapping[str, Any]) -> list[Any]:
        """Every row, as named tuples."""
        return self._read(db, params, one=False)

    def _read(self, db: Database, params: Mapping[str, Any], *, one: bool) -> list[Any]:
        driver = db.direct_reader()
        if driver is None:
            with db.engine.connect() as conn:
                result = conn.execute(self.statement, dict(params))
                compiled = self._compile(conn.dialect, ())
                found = [result.first()] if one else list(result)
                return [compiled.row(tuple(r)) for r in found if r is not None]
        compiled = self._compile(db.engine.dialect, ())
        cursor = driver.execute(compiled.sql, compiled.bind(params))
        raw = cursor.fetchmany(1) if one else cursor.fetchall()
        cursor.close()
        return [compiled.convert(r) for r in raw]

    # ------------------------------------------------------------------ writes

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once per parameter set, in ``conn``'s transaction."""
        if not rows:
            return
        if conn.dialect.name != "sqlite":
            conn.execute(self.statement, [dict(r) for r in rows])
            return
        keys = tuple(rows[0]) if isinstance(self.statement, Insert) else ()
        compiled = self._compile(conn.dialect, keys)
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        try:
            if len(rows) == 1:
                driver.execute(compiled.sql, compiled.bind(rows[0]))
            else:
                driver.executemany(compiled.sql, [compiled.bind(r) for r in rows])
        except sqlite3.IntegrityError as error:
            # As SQLAlchemy would raise it (callers catch its IntegrityError), and
            # with no parameter values: they may be card data.
            raise exc.IntegrityError(compiled.sql, None, error) from None
        except sqlite3.Error as error:
            raise exc.DBAPIError(compiled.sql, None, error) from None

    # ------------------------------------------------------------------ compiling

    def _compile(self, dialect: Dialect, insert_keys: tuple[str, ...]) -> _Compiled:
        key = (id(dialect), insert_keys)
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key) or _Compiled(
                    self.statement, dialect, insert_keys
                )
                self._compiled[key] = compiled
        return compiled


class _Compiled:
    """SQL text, parameter order and type conversions of one statement."""

    def __init__(self, statement: Statement, dialect: Dialect, insert_keys: Iterable[str]):
        keys = list(insert_keys)
        compiler = statement.compile(dialect=dialect, column_keys=keys or None)
        assert isinstance(compiler, SQLCompiler)
        if isinstance(statement, Insert):
            _check_defaults(statement, keys)
        self.sql = str(compiler)
        names = list(compiler.positiontup or ())
        defaults = compiler.params
        for name in names:
            if compiler.binds[name].expanding:
                raise ValueError(f"expanding parameter {name!r} is not supported")
        self._binds: list[tuple[str, Any, Processor]] = [
            (
                name,
                defaults.get(name),
                compiler.binds[name].type.dialect_impl(dialect).bind_processor(dialect),
            )
            for name in names
        ]
        columns = getattr(statement, "selected_columns", None)
        labels = [c.key for c in columns] if columns is not None else []
        self._row: Any = namedtuple("Row", labels, rename=True)  # type: ignore[misc]
        self._results: list[Processor] = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in (columns or ())
        ]
        self._plain = all(p is None for p in self._results)

    def bind(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        values = []
        for name, default, process in self._binds:
            value = params.get(name, default)
            values.append(value if process is None else process(value))
        return tuple(values)

    def convert(self, raw: Sequence[Any]) -> Any:
        """A row as the driver gives it, converted as SQLAlchemy would."""
        if self._plain:
            return self._row._make(raw)
        return self._row._make(
            v if p is None else p(v) for p, v in zip(self._results, raw, strict=True)
        )

    def row(self, values: tuple[Any, ...]) -> Any:
        """A row SQLAlchemy already converted."""
        return self._row._make(values)


def _check_defaults(statement: Insert, keys: list[str]) -> None:
    table = statement.table
    for column in getattr(table, "columns", ()):
        if column.key not in keys and (column.default is not None or column.onupdate):
            raise ValueError(f"insert into {table}: give {column.key} (it has a default)")
