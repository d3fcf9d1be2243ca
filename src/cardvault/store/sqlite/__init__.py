"""SQLite: the embedded default. One file in the data directory, WAL mode, one
writer at a time (:mod:`cardvault.store.sqlite.writes`), reads on a connection of each
thread's own (:mod:`cardvault.store.sqlite.driver`)."""

from cardvault.store.sqlite.backend import SQLiteBackend, Synchronous
from cardvault.store.sqlite.writes import WAL_RESTART_PAGES, WRITER_CHECKPOINT_PAGES

__all__ = ["WAL_RESTART_PAGES", "WRITER_CHECKPOINT_PAGES", "SQLiteBackend", "Synchronous"]
