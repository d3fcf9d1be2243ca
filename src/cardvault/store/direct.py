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
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert, UpdateBase

from cardvault.store.db import Database

Processor = Callable[[Any], Any] | None
Statement = Select[Any] | UpdateBase


Source = Database | Connection  # a database (its thread's reader) or a transaction


class Direct:
    """A Core statement compiled once and executed on the DBAPI connection.

    Statements with bound parameters must name them (``bindparam("key")``). An
    expanding ``IN`` parameter is compiled once per number of values given. An
    ``INSERT`` must be given every column that has a Python-side default, since such
    defaults are SQLAlchemy's to apply.
    """

    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        self._compiled: dict[tuple[Any, ...], _Compiled] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reads

    def first(self, source: Source, params: Mapping[str, Any]) -> Any:
        """The first row (a named tuple), or None. Read with the database's reader of
        the calling thread, or in a connection's transaction (seeing its own writes)."""
        rows = self._read(source, params, one=True)
        return rows[0] if rows else None

    def all(self, source: Source, params: Mapping[str, Any]) -> list[Any]:
        """Every row, as named tuples (see :meth:`first`)."""
        return self._read(source, params, one=False)

    def _read(self, source: Source, params: Mapping[str, Any], *, one: bool) -> list[Any]:
        if isinstance(source, Database):
            driver = source.direct_reader()
            if driver is None:
                with source.engine.connect() as conn:
                    return self._read_through(conn, params, one=one)
            dialect = source.engine.dialect
        else:
            if source.dialect.name != "sqlite":
                return self._read_through(source, params, one=one)
            driver = _driver(source)
            dialect = source.dialect
        compiled = self._compile(dialect, (), params)
        cursor = driver.execute(compiled.sql, compiled.bind(params))
        raw = cursor.fetchmany(1) if one else cursor.fetchall()
        cursor.close()
        return [compiled.convert(r) for r in raw]

    def _read_through(self, conn: Connection, params: Mapping[str, Any], *, one: bool) -> list[Any]:
        """Read through SQLAlchemy (not SQLite): rows of the same named tuples."""
        result = conn.execute(self.statement, dict(params))
        found = [result.first()] if one else list(result)
        compiled = self._compile(conn.dialect, (), {})
        return [compiled.row(tuple(r)) for r in found if r is not None]

    # ------------------------------------------------------------------ writes

    def bind(self, source: Source, rows: Sequence[Mapping[str, Any]]) -> Bound:
        """The rows converted for SQLite's driver now, before their transaction (of
        ``source``'s database): a group commit then holds the write lock only for
        SQLite's own work. Give the result to :meth:`execute`; elsewhere than SQLite
        the rows are kept and bound there, as usual."""
        dialect = source.engine.dialect if isinstance(source, Database) else source.dialect
        if not rows or dialect.name != "sqlite":
            return Bound(rows, None, ())
        keys = tuple(rows[0]) if isinstance(self.statement, Insert) else ()
        compiled = self._compile(dialect, keys, rows[0])
        return Bound(rows, compiled.sql, [compiled.bind(r) for r in rows])

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]] | Bound) -> None:
        """Run the statement once per parameter set, in ``conn``'s transaction."""
        bound = rows if isinstance(rows, Bound) else self.bind(conn, rows)
        if bound.sql is not None:
            self._run(conn, bound.sql, bound.params)
        elif bound.rows:  # not SQLite: through SQLAlchemy
            conn.execute(self.statement, [dict(r) for r in bound.rows])

    @staticmethod
    def _run(conn: Connection, sql: str, params: Sequence[tuple[Any, ...]]) -> None:
        driver = _driver(conn)
        try:
            if len(params) == 1:
                driver.execute(sql, params[0])
            else:
                driver.executemany(sql, params)
        except sqlite3.IntegrityError as error:
            # As SQLAlchemy would raise it (callers catch its IntegrityError), and
            # with no parameter values: they may be card data.
            raise exc.IntegrityError(sql, None, error) from None
        except sqlite3.Error as error:
            raise exc.DBAPIError(sql, None, error) from None

    # ------------------------------------------------------------------ compiling

    def _compile(
        self, dialect: Dialect, insert_keys: tuple[str, ...], params: Mapping[str, Any]
    ) -> _Compiled:
        key: tuple[Any, ...] = (id(dialect), insert_keys)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._make(key, dialect, insert_keys, {})
        if compiled.expanding:  # one compilation per number of values of each
            sizes = tuple(
                len(params[name] if name in params else compiled.defaults[name])
                for name in compiled.expanding
            )
            key = (*key, sizes)
            compiled = self._compiled.get(key) or self._make(
                key, dialect, insert_keys, dict(zip(compiled.expanding, sizes, strict=True))
            )
        return compiled

    def _make(
        self,
        key: tuple[Any, ...],
        dialect: Dialect,
        insert_keys: tuple[str, ...],
        sizes: dict[str, int],
    ) -> _Compiled:
        with self._lock:
            compiled = self._compiled.get(key) or _Compiled(
                self.statement, dialect, insert_keys, sizes
            )
            self._compiled[key] = compiled
        return compiled


@dataclass(frozen=True, slots=True)
class Bound:
    """Rows of a statement and, on SQLite, their driver parameters (:meth:`Direct.bind`)."""

    # Never in a repr: rows may hold card data (holder details, token numbers).
    rows: Sequence[Mapping[str, Any]] = field(repr=False)
    sql: str | None  # None: not bound (not SQLite, or no rows)
    params: Sequence[tuple[Any, ...]] = field(repr=False)


def _driver(conn: Connection) -> sqlite3.Connection:
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


class _Compiled:
    """SQL text, parameter order and type conversions of one statement (with
    ``sizes`` values for each expanding parameter, when it has some)."""

    def __init__(
        self,
        statement: Statement,
        dialect: Dialect,
        insert_keys: Iterable[str],
        sizes: Mapping[str, int],
    ):
        keys = list(insert_keys)
        compiler = statement.compile(dialect=dialect, column_keys=keys or None)
        assert isinstance(compiler, SQLCompiler)
        if isinstance(statement, Insert):
            _check_defaults(statement, keys)
        names = list(compiler.positiontup or ())
        binds = compiler.binds
        self.expanding = tuple(name for name in names if binds[name].expanding)
        defaults = self.defaults = compiler.params
        self.sql = str(compiler)
        # (parameter, position in its list or None, default, conversion)
        self._binds: list[tuple[str, int | None, Any, Processor]] = []
        if sizes:
            if not sizes.keys() <= set(self.expanding):
                raise ValueError(f"not expanding parameters: {set(sizes) - set(self.expanding)}")
            placeholders = {name: defaults.get(name) for name in names if name not in sizes}
            values = {name: [None] * size for name, size in sizes.items()}
            expanded = statement.params({**placeholders, **values}).compile(
                dialect=dialect,
                column_keys=keys or None,
                compile_kwargs={"render_postcompile": True},
            )
            self.sql = str(expanded)
            for name in expanded.positiontup or ():
                if name in binds:
                    process = _bind(binds[name], dialect)
                    self._binds.append((name, None, defaults.get(name), process))
                    continue
                base, _, number = name.rpartition("_")  # the n-th value of a list
                assert base in sizes, name
                process = _bind(binds[base], dialect)
                self._binds.append((base, int(number) - 1, defaults.get(base), process))
        else:
            self._binds = [
                (name, None, defaults.get(name), _bind(binds[name], dialect)) for name in names
            ]
        columns = getattr(statement, "selected_columns", None)
        labels = [c.key for c in columns] if columns is not None else []
        self._row: Any = namedtuple("Row", labels, rename=True)  # type: ignore[misc]
        self._results: list[Processor] = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in (columns or ())
        ]
        self._plain = all(p is None for p in self._results)

    def bind(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        get = params.get
        if not self.expanding:  # the common case, kept short: it runs for every row
            return tuple(
                [
                    get(name, default) if process is None else process(get(name, default))
                    for name, _, default, process in self._binds
                ]
            )
        values = []
        for name, position, default, process in self._binds:
            value = get(name, default)
            if position is not None:
                value = value[position]
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


def _bind(bind: Any, dialect: Dialect) -> Processor:
    processor: Processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
    return processor


def _check_defaults(statement: Insert, keys: list[str]) -> None:
    table = statement.table
    for column in getattr(table, "columns", ()):
        if column.key not in keys and (column.default is not None or column.onupdate):
            raise ValueError(f"insert into {table}: give {column.key} (it has a default)")
