"""SQLite's one writer at a time: the write lock, and WAL checkpoints around it.

Writers of this process queue on a thread lock, and writers of different processes on
a lock file: the kernel wakes the next one as soon as the lock is free, where SQLite's
busy handler sleeps and polls. Checkpoints copy the WAL back into the database file
from a thread of the server, outside the write lock (see :meth:`WriteLock.checkpoint`).
"""

from __future__ import annotations

import fcntl
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from cardvault.store.errors import StoreError

log = logging.getLogger(__name__)

# Writers copy the WAL back into the database file themselves (SQLite's automatic
# checkpoint) only once it holds this many pages: in the server a background
# checkpoint (:meth:`WriteLock.checkpoint`) does it long before, outside the write lock.
WRITER_CHECKPOINT_PAGES = 10_000
# SQLite starts the WAL over from its beginning only when a writer finds all of it
# copied, which under steady writes never happens by itself: the WAL grows until the
# writers' own checkpoint above copies it inside a commit (30 ms of write lock at
# 10,000 pages). Past this many pages, :meth:`WriteLock.checkpoint` leaves the last
# few to the holder of the write lock (:meth:`WriteLock.release`), so that the next
# writer starts the WAL over.
WAL_RESTART_PAGES = 2_000


class WriteLock:
    """The write lock of one SQLite file, for this process and across processes."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._local = threading.local()
        self._file: IO[bytes] | None = open(f"{path}.writelock", "ab")  # noqa: SIM115 (held open)
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpoint_lock = threading.Lock()
        self._wal_long = False  # the last checkpoint left the WAL's last pages to a writer

    def acquire(self, *, blocking: bool = True) -> bool:
        """Take this process's lock and the lock file. Without ``blocking``, False at
        once if another writer holds either. The holder must call :meth:`release`;
        any thread may."""
        if not self._lock.acquire(blocking):
            return False
        if self._file is not None:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                self._lock.release()
                return False
            except BaseException:
                self._lock.release()
                raise
        return True

    def release(self) -> None:
        """Give the lock back; first, if the last checkpoint found the WAL long, copy
        its last pages (no writer can add any now, so all of it is copied, and the next
        writer starts the WAL over)."""
        try:
            if self._wal_long:
                self._finish_checkpoint()
        finally:
            if self._file is not None:
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._lock.release()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Marks this thread as writing (the caller holds the lock already)."""
        if getattr(self._local, "writing", False):
            raise StoreError("nested write transaction in one thread")
        self._local.writing = True
        try:
            yield
        finally:
            self._local.writing = False

    @contextmanager
    def writing(self) -> Iterator[None]:
        """The lock around one write transaction; a nested write in one thread is a bug
        (it would wait for itself), so it fails at once instead of hanging."""
        if getattr(self._local, "writing", False):
            raise StoreError("nested write transaction in one thread")
        self.acquire()
        try:
            with self.held():
                yield
        finally:
            self.release()

    def checkpoint(self) -> tuple[int, int]:
        """Copy what the WAL holds into the database file (a PASSIVE checkpoint: it
        waits for no reader or writer and copies what it can); the WAL's frames and how
        many of them are now in the database file, both -1 if another connection was
        checkpointing.

        A checkpoint costs about as much as the commits it follows; run in a thread of
        the server, it leaves the write lock to the writers. From a WAL of
        WAL_RESTART_PAGES or more, it leaves the last few pages to the next holder of
        the write lock (:meth:`release`): in a thread, the lock would wait for the
        interpreter lock as long as it waits for the copy."""
        with self._checkpoint_lock:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(
                    self._path, timeout=0, isolation_level=None, check_same_thread=False
                )
            frames, copied = _passive_checkpoint(self._checkpointer)
            if frames >= WAL_RESTART_PAGES:
                frames, copied = _passive_checkpoint(self._checkpointer)  # what came meanwhile
                self._wal_long = True
        return frames, copied

    def _finish_checkpoint(self) -> None:
        if not self._checkpoint_lock.acquire(blocking=False):
            return  # the checkpoint thread is at it: the next writer will do
        try:
            if self._checkpointer is not None and self._wal_long:
                _passive_checkpoint(self._checkpointer)
            self._wal_long = False
        except sqlite3.Error:  # the WAL stays long a while; the next writer tries again
            log.warning("copying the last pages of the WAL failed", exc_info=True)
        finally:
            self._checkpoint_lock.release()

    def close(self) -> None:
        with self._checkpoint_lock:
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None
        if self._file is not None:
            self._file.close()
            self._file = None


def _passive_checkpoint(conn: sqlite3.Connection) -> tuple[int, int]:
    """The WAL's frames and how many are in the database file (-1, -1 if another
    connection was checkpointing)."""
    _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(frames), int(copied)
