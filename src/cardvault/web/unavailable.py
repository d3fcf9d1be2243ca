"""503 ``unavailable``: the one rendering of "the database cannot be used right now".

Every front asks :func:`cardvault.store.unavailable.is_unavailable` and, when it
says yes, answers with what is built here, so a database outage looks the same on
every route: 503, ``Retry-After``, and a warning line in the log (no traceback: an
outage is not a bug). Resource and admin APIs use the error envelope; the OAuth
endpoints use RFC 6749 §5.2's shape with ``temporarily_unavailable`` (the code
RFC 6749 §4.1.2.1 names for a server that cannot answer for now).
"""

from __future__ import annotations

import logging

import orjson

from cardvault.crypto.pan import mask_pans
from cardvault.store.unavailable import RETRY_AFTER, summary

__all__ = [
    "API_BODY",
    "HEADERS",
    "OAUTH_BODY",
    "log_unavailable",
]

log = logging.getLogger("cardvault.unavailable")

DETAIL = "The service cannot reach its database; try again shortly"
API_BODY = orjson.dumps({"errors": [{"status": 503, "code": "unavailable", "detail": DETAIL}]})
OAUTH_BODY = orjson.dumps({"error": "temporarily_unavailable", "error_description": DETAIL})
HEADERS = {"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"}


def log_unavailable(method: str, path: str, error: BaseException) -> None:
    log.warning("database unavailable on %s %s: %s", method, path, mask_pans(summary(error)))
