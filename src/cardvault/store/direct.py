"""The executor: SQLAlchemy Core statements compiled once, run on the driver.

On the hottest calls (``GET /network-tokens/{key}``, ``GET /cards/{key}``,
``POST /cards``, the audit log) SQLAlchemy's work around each execution — pool
checkout, event dispatch, cache-key lookup, building the ``Row`` — costs far more
than the database's: about 180 µs around a 12 µs query on SQLite on this project's
bench machine.

A :class:`Direct` statement is still a SQLAlchemy Core statement: SQLAlchemy compiles
it (once per dialect) and supplies each column type's own conversions
(``UTCDateTime``, ``JSON``...), so values read or written here are exactly what the
ORM would read or write. Only the per-execution machinery is skipped, on SQLite and
PostgreSQL alike: the compiled SQL runs on the DBAPI connection (``sqlite3``,
psycopg 3) through the dialect's :class:`~cardvault.store.backend.Driver`, which
raises errors as SQLAlchemy does.

Reads given a :class:`~cardvault.store.db.Database` run on a reader connection of the
calling thread's own, outside any transaction (SQLite: ``query_only``, WAL snapshot
per statement; PostgreSQL: autocommit, read-only, statements prepared by the server).
Reads and writes given a ``Connection`` run on its driver connection, inside its
transaction. Rows come back as named tuples, or as whatever the statement's row
factory (a record class) makes of the columns.
"""

from __future__ import annotations

import threading
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert, UpdateBase

from cardvault.store.backend import Driver, Params, Raw, Sql
from cardvault.store.db import Database, driver_for

Processor = Callable[[Any], Any] | None
Statement = Select[*tuple[Any, ...]] | UpdateBase
R = TypeVar("R")

# A database (its thread's reader), or a transaction: a Core connection's or a session's.
Source = Database | Connection | Session


class Direct(Generic[R]):
    """A Core statement compiled once per dialect and run on the DBAPI connection.

    ``row`` makes each row from its column values, in the statement's column order
    (a record class); without it, rows are named tuples. Statements with bound
    parameters must name them (``bindparam("key")``). An expanding ``IN`` parameter
    is compiled once per number of values given. An ``INSERT`` must be given every
    column that has a Python-side default, since such defaults are SQLAlchemy's to apply.
    """

    @overload
    def __init__(self: Direct[Any], statement: Statement) -> None: ...

    @overload
    def __init__(self, statement: Statement, row: Callable[..., R]) -> None: ...

    def __init__(self, statement: Statement, row: Callable[..., R] | None = None) -> None:
        self.statement = statement
        self._row_factory = row
        self._compiled: dict[tuple[Any, ...], _Compiled] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reads

    def first(self, source: Source, params: Mapping[str, Any]) -> R | None:
        """The first row, or None. Read with the database's reader of the calling
        thread, or in a connection's transaction (seeing its own writes)."""
        rows = self._read(source, params, one=True)
        return rows[0] if rows else None

    def all(self, source: Source, params: Mapping[str, Any]) -> list[R]:
        """Every row (see :meth:`first`)."""
        return self._read(source, params, one=False)

    async def afirst(self, db: Database, params: Mapping[str, Any]) -> R | None:
        """:meth:`first` from the event loop (see :meth:`Database.aread`)."""
        compiled = self._compile(db.engine.dialect, (), params)
        raw = await db.aread(compiled.sql, compiled.bind(params), one=True)
        return compiled.convert(raw[0]) if raw else None

    def _read(self, source: Source, params: Mapping[str, Any], *, one: bool) -> list[R]:
        if isinstance(source, Session):
            source = source.connection()
        if isinstance(source, Database):
            compiled = self._compile(source.engine.dialect, (), params)
            raw = source.read(compiled.sql, compiled.bind(params), one=one)
        else:
            compiled = self._compile(source.dialect, (), params)
            driver = _in_transaction(source)
            raw = compiled.driver.fetch(driver, compiled.sql, compiled.bind(params), one=one)
        convert = compiled.convert
        return [convert(r) for r in raw]

    # ------------------------------------------------------------------ writes

    def bind(self, source: Source, rows: Sequence[Mapping[str, Any]]) -> Bound:
        """The rows converted for the driver now, before their transaction (of
        ``source``'s database): a group commit then spends its transaction on the
        database's own work. Give the result to :meth:`execute`."""
        if not rows:
            return Bound(rows, None, ())
        if isinstance(source, Session):
            source = source.connection()
        dialect = source.engine.dialect if isinstance(source, Database) else source.dialect
        keys = tuple(rows[0]) if isinstance(self.statement, Insert) else ()
        compiled = self._compile(dialect, keys, rows[0])
        return Bound(rows, compiled.sql, [compiled.bind(r) for r in rows], compiled.driver)

    def execute(
        self, conn: Connection | Session, rows: Sequence[Mapping[str, Any]] | Bound
    ) -> None:
        """Run the statement once per parameter set, in ``conn``'s transaction."""
        if isinstance(conn, Session):
            conn = conn.connection()
        bound = rows if isinstance(rows, Bound) else self.bind(conn, rows)
        if bound.sql is not None and bound.driver is not None:
            bound.driver.execute(_in_transaction(conn), bound.sql, bound.params)

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
                self.statement, dialect, insert_keys, sizes, self._row_factory
            )
            self._compiled[key] = compiled
        return compiled


@dataclass(frozen=True, slots=True)
class Bound:
    """Rows of a statement and their driver parameters (:meth:`Direct.bind`)."""

    # Never in a repr: rows may hold card data (holder details, token numbers).
    rows: Sequence[Mapping[str, Any]] = field(repr=False)
    sql: Sql | None  # None: no rows
    params: Sequence[Params] = field(repr=False)
    driver: Driver | None = field(default=None, repr=False)


class _Compiled:
    """SQL text, parameters and type conversions of one statement on one dialect (with
    ``sizes`` values for each expanding parameter, when it has some)."""

    def __init__(
        self,
        statement: Statement,
        dialect: Dialect,
        insert_keys: Iterable[str],
        sizes: Mapping[str, int],
        row: Callable[..., Any] | None,
    ):
        keys = list(insert_keys)
        # As for an executemany: no implicit RETURNING of new ids (nobody reads them).
        compiler = statement.compile(
            dialect=dialect, column_keys=keys or None, for_executemany=True
        )
        assert isinstance(compiler, SQLCompiler)
        if isinstance(statement, Insert):
            _check_defaults(statement, keys)
        binds = compiler.binds
        self.driver = driver_for(dialect)
        defaults = self.defaults = compiler.params  # by the names the SQL gives them
        self.expanding = tuple(name for name in defaults if binds[name].expanding)
        self._positional = bool(dialect.positional)
        if sizes:
            if not sizes.keys() <= set(self.expanding):
                raise ValueError(f"not expanding parameters: {set(sizes) - set(self.expanding)}")
            placeholders = {name: value for name, value in defaults.items() if name not in sizes}
            lists = {name: [None] * size for name, size in sizes.items()}
            state = compiler.construct_expanded_state({**placeholders, **lists})
            text = state.statement
            names = list(state.positiontup or ()) if self._positional else list(state.parameters)
            expanded = {
                name: (base, position)
                for base, members in state.parameter_expansion.items()
                for position, name in enumerate(members)
            }
        else:
            text = str(compiler)
            names = list(compiler.positiontup or ()) if self._positional else list(defaults)
            expanded = {}
        self.sql = self.driver.sql(text)
        # (name in the SQL, parameter, position in its list or None, default, conversion)
        self._binds: list[tuple[str, str, int | None, Any, Processor]] = []
        for name in names:
            base, position = expanded.get(name, (name, None))
            process = _bind(binds[base], dialect)
            self._binds.append((name, base, position, defaults.get(base), process))
        self._simple = not self.expanding
        columns = getattr(statement, "selected_columns", None)
        labels = [c.key for c in columns] if columns is not None else []
        self._row: Callable[..., Any] = row or namedtuple("Row", labels, rename=True)
        self._results: list[Processor] = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in (columns or ())
        ]
        self._plain = all(p is None for p in self._results)

    def bind(self, params: Mapping[str, Any]) -> Params:
        get = params.get
        if self._simple:  # the common case, kept short: it runs for every row
            values = [
                get(base, default) if process is None else process(get(base, default))
                for _name, base, _, default, process in self._binds
            ]
        else:
            values = []
            for _name, base, position, default, process in self._binds:
                value = get(base, default)
                if position is not None:
                    value = value[position]
                values.append(value if process is None else process(value))
        if self._positional:
            return tuple(values)
        return dict(zip([b[0] for b in self._binds], values, strict=True))

    def convert(self, raw: Raw) -> Any:
        """A row as the driver gives it, converted as SQLAlchemy would, then made
        into the statement's row."""
        if self._plain:
            return self._row(*raw)
        return self._row(
            *[v if p is None else p(v) for p, v in zip(self._results, raw, strict=True)]
        )


def _in_transaction(conn: Connection) -> Any:
    """The DBAPI connection of ``conn``, in a transaction that SQLAlchemy knows of (as
    its own first statement would begin one): ended when ``conn`` closes, never left
    open in the pool by a driver that begins transactions by itself (psycopg)."""
    if not conn.in_transaction():
        conn.begin()
    return conn.connection.driver_connection


def _bind(bind: Any, dialect: Dialect) -> Processor:
    processor: Processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
    return processor


def _check_defaults(statement: Insert, keys: list[str]) -> None:
    table = statement.table
    for column in getattr(table, "columns", ()):
        if column.key not in keys and (column.default is not None or column.onupdate):
            raise ValueError(f"insert into {table}: give {column.key} (it has a default)")
