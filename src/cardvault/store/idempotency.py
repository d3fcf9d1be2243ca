"""``Idempotency-Key`` on POST: the same key and body within 24 h replays the first
answer; the same key with another body is 422 ``idempotency-key-reused``.

Only successful answers are kept: a refused request wrote nothing and may be retried.
Request bodies are compared by a keyed hash (they may hold a PAN), never stored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select

from cardvault.crypto import SecretHasher
from cardvault.problems import Problem, Unprocessable
from cardvault.store.models import Base
from cardvault.store.types import utcnow

RETENTION = dt.timedelta(hours=24)
KEYS = Base.metadata.tables["idempotency_keys"]
MAX_KEY_LENGTH = 255


class IdempotencyKeyReused(Problem):
    status = 422
    code = "idempotency-key-reused"


@dataclass(frozen=True)
class Replay:
    status: int
    body: bytes


@dataclass(frozen=True)
class IdempotentRequest:
    vault_id: str
    key: str
    method_path: str
    request_hash: bytes

    @classmethod
    def of(
        cls, hasher: SecretHasher, vault_id: str, key: str | None, method_path: str, body: str
    ) -> IdempotentRequest | None:
        if key is None:
            return None
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise Unprocessable(f"Idempotency-Key: must be 1-{MAX_KEY_LENGTH} characters")
        return cls(vault_id, key, method_path, hasher.hash(f"{method_path}\n{body}"))

    def replay(self, conn: Connection) -> Replay | None:
        """The stored answer, or ``None`` if this key is new (or older than 24 h)."""
        row = conn.execute(
            select(KEYS).where(KEYS.c.vault_id == self.vault_id, KEYS.c.key == self.key)
        ).first()
        if row is None or row.created_at < utcnow() - RETENTION:
            return None
        if row.method_path != self.method_path or row.request_hash != self.request_hash:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used with a different request in the last 24 hours"
            )
        return Replay(row.status, row.body)

    def remember(self, conn: Connection, status: int, body: bytes) -> None:
        """Keep the answer, replacing an expired entry of the same key."""
        conn.execute(
            delete(KEYS).where(
                KEYS.c.vault_id == self.vault_id,
                KEYS.c.key == self.key,
                KEYS.c.created_at < utcnow() - RETENTION,
            )
        )
        conn.execute(
            insert(KEYS),
            [
                {
                    "vault_id": self.vault_id,
                    "key": self.key,
                    "method_path": self.method_path,
                    "request_hash": self.request_hash,
                    "status": status,
                    "body": body,
                    "created_at": utcnow(),
                }
            ],
        )
