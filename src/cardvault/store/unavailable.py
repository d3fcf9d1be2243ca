"""Which errors mean "the database cannot be used right now" rather than a bug.

One question, asked by the HTTP layer's error renderer, the dashboard and background
work: is this exception the database
being unreachable, restarting, out of disk or timing out? Such an error is
transient: a request answers 503 with ``Retry-After`` and a job retries later. Any
other error (a bad statement, a constraint nobody expected, a programming error) is
a bug and stays one: a 500 with its traceback in the log.
"""

from __future__ import annotations

import errno
import logging
import sqlite3

import psycopg
from sqlalchemy import exc as sa

from cardvault.crypto.pan import mask_pans

__all__ = ["RETRY_AFTER", "is_conflict", "is_unavailable", "log_failure", "summary"]

# Seconds a client is asked to wait before trying again (``Retry-After``).
RETRY_AFTER = 2

# SQLite reports a full disk, a failing disk, a file it can no longer open and a
# lock held past its busy timeout as OperationalError; its other OperationalErrors
# ("no such table", syntax errors...) are bugs.
_SQLITE_TRANSIENT = (
    "database or disk is full",
    "disk i/o error",
    "unable to open database file",
    "database is locked",
    "database table is locked",
)
_OS_TRANSIENT = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS}


def is_unavailable(error: BaseException) -> bool:
    """True if ``error`` (or the driver error it wraps) is the database being out of
    reach, out of space or too slow; False for anything that would be a bug."""
    if isinstance(error, sa.TimeoutError | sa.DisconnectionError):
        return True  # the pool waited too long for a connection; a connection died
    if isinstance(error, sa.DBAPIError):
        if error.connection_invalidated:
            return True
        return error.orig is not None and _driver_unavailable(error.orig)
    return _driver_unavailable(error)


def is_conflict(error: BaseException) -> bool:
    """True if ``error`` is PostgreSQL giving up a transaction because it conflicted
    with another one (a deadlock, a serialization failure): the same writes succeed
    when run again."""
    inner = error.orig if isinstance(error, sa.DBAPIError) else error
    return isinstance(inner, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure)


def _driver_unavailable(error: BaseException) -> bool:
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        # Connection refused or reset, server shutting down, statement timeout,
        # deadlock or serialization failure: all pass if tried again later.
        return True
    if isinstance(error, sqlite3.OperationalError):
        message = str(error).lower()
        return any(text in message for text in _SQLITE_TRANSIENT)
    if isinstance(error, OSError):
        return error.errno in _OS_TRANSIENT
    return False


def summary(error: BaseException) -> str:
    """One short line for a warning in the log: the error's class and first line of
    its driver message (no statement and no parameters)."""
    inner = error.orig if isinstance(error, sa.DBAPIError) and error.orig is not None else error
    first = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    return f"{type(inner).__name__}: {first[:200]}"


def log_failure(logger: logging.Logger, what: str, error: BaseException) -> None:
    """Log a failed background step: a warning line when the database is out of
    reach (the step is retried; an outage is not a bug), the traceback otherwise."""
    if is_unavailable(error):
        logger.warning("%s: database unavailable (%s)", what, mask_pans(summary(error)))
    else:
        logger.error("%s", what, exc_info=error)


# The exception classes a database error can arrive as; their handler sorts the
# outages (503) from the bugs (re-raised: 500).
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sa.SQLAlchemyError,
    sqlite3.Error,
    psycopg.Error,
    OSError,
)
