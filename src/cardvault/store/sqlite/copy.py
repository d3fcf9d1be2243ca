"""A consistent copy of a live SQLite database, by SQLite's online backup API.

Copying the file of a WAL database is wrong: the latest commits are still in its
``-wal`` file, and a copy taken while a checkpoint writes the file is torn. The
backup API copies the database as one read transaction sees it (WAL readers block no
writer, so the server keeps committing meanwhile) into a new file that stands alone:
rollback-journal mode, no ``-wal`` beside it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from cardvault.store.errors import StoreError

__all__ = ["check_database", "copy_database"]

BUSY_TIMEOUT = 10.0  # seconds a copy waits for a lock SQLite holds a moment (WAL recovery)


def copy_database(source: str, target: Path) -> None:
    """Copy the database file ``source`` into the new file ``target`` (created 0600;
    raises ``FileExistsError`` if it exists) as one snapshot, then check the copy.
    Raises :class:`StoreError` if ``source`` is missing, the copy fails or is not
    sound; then ``target`` is removed again."""
    if not Path(source).is_file():
        raise StoreError(f"there is no database at {source}")
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        _backup(Path(source), target)
        check_database(target)
        _fsync(target)
    except BaseException:
        for suffix in ("", "-journal"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        raise


def _backup(source: Path, target: Path) -> None:
    # mode=rw: never create an empty database where the server's should be.
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=rw", uri=True, timeout=BUSY_TIMEOUT)
    try:
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            src.backup(dst)  # one step (pages=-1): one read transaction, one snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise StoreError(f"copying {source} failed: {exc}") from None
    finally:
        src.close()


def check_database(path: Path) -> None:
    """Raises :class:`StoreError` unless ``path`` is a sound SQLite database
    (``PRAGMA quick_check``); opens it read-only."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            verdict = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a sound SQLite database: {exc}") from None
    if verdict != [("ok",)]:
        raise StoreError(f"{path} is not a sound SQLite database (quick_check failed)")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
