"""Copies of the database for backups: the copy itself (where the store can make one)
and the way to read a copy that no server opened.

Only a SQLite database is a file this process can copy consistently while the server
runs (:mod:`cardvault.store.sqlite.copy`). A PostgreSQL database is backed up with
PostgreSQL's own tools (``pg_dump``, base backups with WAL archiving), never by
cardvault.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from cardvault.store.errors import StoreError
from cardvault.store.files import sqlite_path
from cardvault.store.sqlite.copy import check_database, copy_database

__all__ = [
    "SnapshotUnsupported",
    "check_copy",
    "copy_url",
    "database_file",
    "reading_copy",
    "snapshot",
]


class SnapshotUnsupported(StoreError):
    """The database is not one this process can copy (PostgreSQL)."""


def database_file(database_url: str) -> Path | None:
    """The file of the database at ``database_url``; None if it is not a file (PostgreSQL)."""
    path = sqlite_path(database_url)
    return Path(path) if path is not None else None


def snapshot(database_url: str, target: Path) -> None:
    """Copy the database into the new file ``target`` (0600) as one consistent snapshot,
    while the server keeps writing. Raises :class:`SnapshotUnsupported` for a database
    that is not a file, :class:`StoreError` if the copy fails or is not sound."""
    source = sqlite_path(database_url)
    if source is None:
        raise SnapshotUnsupported("only a SQLite database can be copied by cardvault")
    copy_database(source, target)


def check_copy(path: Path) -> None:
    """Raises :class:`StoreError` unless ``path`` is a sound database file."""
    check_database(path)


def copy_url(path: Path) -> str:
    """The database URL of a copy."""
    return f"sqlite:///{path.resolve()}"


@contextmanager
def reading_copy(path: Path) -> Iterator[Session]:
    """A session on a copy, opened as a plain file (none of the server's pragmas: no
    switch to WAL, no lock files beside it); closed on exit."""
    engine = create_engine(copy_url(path), poolclass=NullPool)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()
