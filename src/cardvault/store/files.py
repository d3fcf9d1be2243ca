"""The data directory is private: the directory 0700, every file in it 0600.

It holds the SQLite database (and SQLite's ``-wal`` and ``-shm`` files, which SQLite
creates as it goes), the key-encryption key, lock files and whatever else the server
writes. Rather than setting a mode at each of those places, the process's umask is
set once at start-up so that every file it creates is private, and files that an
older version (or another tool) left readable are tightened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["DIR_MODE", "FILE_MODE", "private_files", "secure_data_dir", "sqlite_path"]

DIR_MODE = 0o700
FILE_MODE = 0o600
UMASK = 0o077


def private_files() -> None:
    """From now on, files and directories this process creates are its user's only."""
    os.umask(UMASK)


def secure_data_dir(data_dir: Path, database_url: str = "") -> None:
    """Create ``data_dir`` 0700 if missing; tighten it and every file in it (and a
    SQLite database's own files, wherever they are) to 0700/0600."""
    private_files()
    data_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _tighten(data_dir, DIR_MODE)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            _tighten(Path(root, name), DIR_MODE)
        for name in files:
            _tighten(Path(root, name), FILE_MODE)
    database = sqlite_path(database_url)
    if database is not None:
        for suffix in ("", "-wal", "-shm", "-journal", ".writelock"):
            _tighten(Path(f"{database}{suffix}"), FILE_MODE)


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite database URL; None for another database or an in-memory one."""
    if not url.startswith("sqlite") or ":///" not in url:
        return None
    path = url.split(":///", 1)[1].split("?", 1)[0]
    return path if path and path != ":memory:" else None


def _tighten(path: Path, mode: int) -> None:
    """chmod to ``mode`` if ``path`` is ours and allows more; a missing file is fine."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid():
        return  # never follow a link out of the directory, never touch others' files
    if stat.S_IMODE(info.st_mode) & ~mode:
        path.chmod(mode)
