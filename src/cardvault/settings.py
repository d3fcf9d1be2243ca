"""One typed settings object for the whole service.

Every option is read from the environment with the ``CARDVAULT_`` prefix, converted
and checked once at start-up. Nothing else in the code reads ``os.environ``.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARDVAULT_", extra="ignore")

    # Where SQLite, the key-encryption key and other local state live.
    data_dir: Path = Path("./.cardvault")
    # SQLAlchemy URL. Empty: a SQLite file in the data directory.
    # ``postgresql+psycopg://user@host/db`` for PostgreSQL.
    database_url: str = ""
    sqlite_synchronous: Literal["full", "normal"] = Field(
        default="full",
        description=(
            "SQLite's durability (PRAGMA synchronous, in WAL mode). 'full': a commit is on "
            "disk before it is answered, so a card answered 201 survives a power loss or an "
            "operating-system crash. 'normal': faster writes (no sync per commit); a process "
            "crash still loses nothing, but the last commits answered before a power loss "
            "or an OS crash can be lost. Ignored on PostgreSQL."
        ),
    )
    # The realm in /auth/realms/{realm}/...
    realm: str = "cardvault"
    # Public base URL of this service. Empty: http://{host}:{port}.
    # The token issuer is {url}/auth/realms/{realm}.
    url: str = ""
    # Audience of access tokens. Empty: the public base URL.
    audience: str = ""
    # Service accounts appear as members named <client_id>@<members_domain>.
    members_domain: str = "cardvault.local"
    # Default lifetime of access tokens, in seconds.
    access_token_lifespan: int = Field(default=300, ge=10, le=86400)
    # Longest lifetime any token may have; retired signing keys stay published this long.
    access_token_lifespan_max: int = Field(default=3600, ge=10, le=86400)
    # Signature algorithm of access tokens (asymmetric only).
    signing_alg: Literal["ES256", "RS256"] = "ES256"
    # Seconds between publishing a new signing key and signing with it.
    key_rotation_delay: int = Field(default=300, ge=0)
    # Clock leeway when verifying tokens, in seconds.
    token_leeway: int = Field(default=5, ge=0, le=120)
    # How often each worker looks for revocations and key changes (seconds).
    # PostgreSQL also pushes them with LISTEN/NOTIFY.
    change_poll_interval: float = Field(default=0.25, gt=0, le=1.0)
    # Audit records of the token endpoint are written in batches this often (seconds).
    audit_flush_interval: float = Field(default=0.05, gt=0, le=5.0)
    # Failed client authentications allowed per minute (see README, "Throttling").
    throttle_client_ip_failures: int = Field(default=10, ge=1)
    throttle_ip_failures: int = Field(default=30, ge=1)
    throttle_client_failures: int = Field(default=100, ge=1)
    # How often each worker asks the networks about PENDING tokens (seconds).
    settle_interval: float = Field(default=0.5, gt=0, le=60)
    # Webhooks (see README, "Webhooks"). How often each worker looks for new events
    # and due deliveries (seconds).
    webhook_poll_interval: float = Field(default=0.25, gt=0, le=10)
    # Seconds one delivery attempt may take (connect, send, response headers).
    webhook_timeout: float = Field(default=10.0, gt=0, le=120)
    # Seconds a delivery is retried before it is marked failed (default 24 h).
    webhook_retry_horizon: float = Field(default=86400.0, gt=0)
    # First retry after about this many seconds, doubling up to webhook_backoff_max.
    webhook_backoff_base: float = Field(default=5.0, gt=0)
    webhook_backoff_max: float = Field(default=3600.0, gt=0)
    # Requests in flight per worker process, and per endpoint within them.
    webhook_concurrency: int = Field(default=32, ge=1, le=1000)
    webhook_endpoint_concurrency: int = Field(default=4, ge=1, le=100)
    # Networks webhooks may reach although they are not public, comma-separated
    # (e.g. "127.0.0.1/32,10.1.0.0/16"). Empty: public addresses only.
    webhook_allowed_networks: str = ""
    # Most webhook endpoints one vault may have.
    max_webhooks_per_vault: int = Field(default=16, ge=1, le=1000)
    # Bulk enrolment: rows per chunk (one write transaction each), and the pause
    # between chunks and between polls for work (seconds) of each worker process.
    bulk_chunk_rows: int = Field(default=200, ge=1, le=5000)
    bulk_pause: float = Field(default=0.005, ge=0, le=5.0)
    bulk_poll_interval: float = Field(default=0.25, gt=0, le=60)
    # Most live service accounts one organization may have.
    max_service_accounts_per_org: int = Field(default=100, ge=1)
    # Largest accepted body on the OAuth endpoints, in bytes.
    oauth_max_body: int = Field(default=8192, ge=1024)
    # Key-encryption key file. Empty: {data_dir}/kek.key (created 0600 on first start).
    kek_file: str = ""
    # Threads per worker for blocking work (database calls of the API routes).
    threads: int = Field(default=8, ge=1, le=200)
    # Dashboard sessions: absolute lifetime (hours) and idle timeout (minutes).
    dashboard_session_hours: int = Field(default=12, ge=1, le=720)
    dashboard_idle_minutes: int = Field(default=30, ge=1, le=1440)
    # Failed dashboard sign-ins allowed per minute: per email and address, per address.
    signin_email_ip_failures: int = Field(default=5, ge=1)
    signin_ip_failures: int = Field(default=20, ge=1)
    signin_email_failures: int = Field(default=50, ge=1)
    # Seconds ``cardvault login`` waits between polls (RFC 8628 ``interval``).
    device_poll_interval: int = Field(default=5, ge=1, le=60)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    # Write one JSON log line per HTTP request.
    access_log: bool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("realm")
    @classmethod
    def _realm_is_a_path_segment(cls, value: str) -> str:
        if not value or "/" in value:
            raise ValueError("realm must be a non-empty path segment")
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        from cardvault.webhooks.addresses import parse_networks

        parse_networks(value)  # raises ValueError naming the bad entry
        return value

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        if not self.url:
            self.url = f"http://{self.host}:{self.port}"
        self.url = self.url.rstrip("/")
        if not self.audience:
            self.audience = self.url
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'cardvault.db').resolve()}"
        if self.access_token_lifespan > self.access_token_lifespan_max:
            raise ValueError("access_token_lifespan exceeds access_token_lifespan_max")
        return self

    @property
    def issuer(self) -> str:
        return f"{self.url}/auth/realms/{self.realm}"

    @property
    def key_retention(self) -> dt.timedelta:
        """How long a retired signing key stays published: until its last token expired."""
        return dt.timedelta(seconds=self.access_token_lifespan_max + self.token_leeway)

    @property
    def kek_path(self) -> Path:
        return Path(self.kek_file) if self.kek_file else self.data_dir / "kek.key"

    @property
    def is_https(self) -> bool:
        return self.url.startswith("https://")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
