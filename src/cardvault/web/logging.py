"""JSON logs on standard error, one object a line.

Whatever a line carries (message, extra fields, a traceback's text), card numbers in it
are shown as BIN and last four and client or webhook secrets by their prefix only: the
last line of defence of DESIGN §3, for values that reach a log by a path nobody meant.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from contextvars import ContextVar
from typing import Any

import orjson

from cardvault.crypto import mask_pans
from cardvault.crypto.secrets import mask_secrets

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# The request being answered (set by the HTTP layer): every line logged while it is
# answered carries its id, as the answer's X-Request-Id does.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key != "color_message":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(entry, default=str).decode())


def redact(line: str) -> str:
    """``line`` with card numbers masked and secrets cut to their prefix."""
    return mask_secrets(mask_pans(line))


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)


def log_dictconfig(level: str) -> dict[str, Any]:
    """Logging configuration for the HTTP server's own loggers: JSON as well."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": handler},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "_granian": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "granian.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }
