"""One typed settings object for the whole service.

Every option is read from the environment with the ``CARDVAULT_`` prefix, converted
and checked once at start-up. Nothing else in the code reads ``os.environ``. Each
field's ``description`` is its documentation: the configuration reference of the docs
is generated from it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[IpNetwork, ...]:
    """``"127.0.0.0/8, ::1"`` → networks; raises ValueError naming a bad entry."""
    items = [item.strip() for item in value.split(",") if item.strip()]
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def in_networks(address: str, networks: Sequence[IpNetwork]) -> bool:
    """Whether ``address`` (an IPv4-mapped IPv6 address as its IPv4 one) is in one of
    ``networks``; an address that does not parse is in none."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARDVAULT_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./.cardvault"),
        description="Local state: the SQLite file, the key-encryption key and other files "
        "(the directory is 0700, every file in it 0600).",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the database. Empty: a SQLite file "
        "(`cardvault.db`) in the data directory; `postgresql+psycopg://user@host/db` "
        "for PostgreSQL.",
    )
    sqlite_synchronous: Literal["full", "normal"] = Field(
        default="full",
        description=(
            "SQLite's durability (PRAGMA synchronous, in WAL mode). `full`: a commit is on "
            "disk before it is answered, so a card answered 201 survives a power loss or an "
            "operating-system crash. `normal`: faster writes (no sync per commit); a process "
            "crash still loses nothing, but the last commits answered before a power loss "
            "or an OS crash can be lost. Ignored on PostgreSQL."
        ),
    )
    db_pool_size: int = Field(
        default=4,
        ge=1,
        le=100,
        description="PostgreSQL connections per worker process for writes and for the reads "
        "of worker threads. A node opens at "
        "most `workers` * (`db_pool_size` + `db_readers` + 1) connections (the 1 listens "
        "for other nodes' changes); every node's sum must stay below the server's "
        "`max_connections`. Ignored on SQLite.",
    )
    db_readers: int = Field(
        default=4,
        ge=1,
        le=100,
        description="PostgreSQL connections per worker process for the reads of its event "
        "loop (the busy GETs, the token endpoint's client lookup): asynchronous, autocommit, "
        "read-only, every statement prepared. Ignored on SQLite.",
    )
    realm: str = Field(
        default="cardvault",
        description="The realm in `/auth/realms/{realm}/…` (a single path segment).",
    )
    url: str = Field(
        default="",
        description="Public base URL of this service. Empty: `http://{host}:{port}`. "
        "The token issuer is `{url}/auth/realms/{realm}`; an `https://` URL makes the "
        "dashboard's cookie `Secure`.",
    )
    audience: str = Field(
        default="",
        description="Audience (`aud`) of access tokens. Empty: the public base URL.",
    )
    members_domain: str = Field(
        default="cardvault.local",
        description="Service accounts appear as members named `<client_id>@<members_domain>`.",
    )
    access_token_lifespan: int = Field(
        default=300,
        ge=10,
        le=86400,
        description="Default lifetime of access tokens, in seconds.",
    )
    access_token_lifespan_max: int = Field(
        default=3600,
        ge=10,
        le=86400,
        description="Longest lifetime any token may have, in seconds; retired signing keys "
        "stay published this long.",
    )
    signing_alg: Literal["ES256", "RS256"] = Field(
        default="ES256",
        description="Signature algorithm of access tokens (asymmetric only).",
    )
    key_rotation_delay: int = Field(
        default=300,
        ge=0,
        description="Seconds between publishing a new signing key and signing with it.",
    )
    token_leeway: int = Field(
        default=5,
        ge=0,
        le=120,
        description="Clock skew allowed when verifying tokens, in seconds.",
    )
    change_poll_interval: float = Field(
        default=0.25,
        gt=0,
        le=1.0,
        description="How often each worker looks for revocations and key changes (seconds). "
        "PostgreSQL also pushes them with LISTEN/NOTIFY.",
    )
    audit_flush_interval: float = Field(
        default=0.05,
        gt=0,
        le=5.0,
        description="Audit records of the token endpoint are written in batches this often "
        "(seconds), and at shutdown.",
    )
    throttle_client_ip_failures: int = Field(
        default=10,
        ge=1,
        description="Failed client authentications allowed per minute for one client id "
        "from one source address.",
    )
    throttle_ip_failures: int = Field(
        default=30,
        ge=1,
        description="Failed client authentications allowed per minute from one source "
        "address, any client id.",
    )
    throttle_client_failures: int = Field(
        default=100,
        ge=1,
        description="Failed client authentications allowed per minute for one client id, "
        "any address.",
    )
    settle_interval: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="How often each worker asks the networks about PENDING network tokens "
        "(seconds).",
    )
    networks: Literal["simulator"] = Field(
        default="simulator",
        description="Who answers for the card networks' token services: `simulator`, the "
        "built-in simulators of Visa, Mastercard, Amex and Discover (the only choice so far).",
    )
    webhook_poll_interval: float = Field(
        default=0.25,
        gt=0,
        le=10,
        description="How often each worker looks for new events and due webhook deliveries "
        "(seconds).",
    )
    webhook_timeout: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="Seconds one delivery attempt may take (connect, send, response headers).",
    )
    webhook_retry_horizon: float = Field(
        default=86400.0,
        gt=0,
        description="Seconds a delivery is retried before it is marked failed (24 h).",
    )
    webhook_backoff_base: float = Field(
        default=5.0,
        gt=0,
        description="First retry of a delivery after about this many seconds; the delay "
        "doubles (with jitter) up to `webhook_backoff_max`.",
    )
    webhook_backoff_max: float = Field(
        default=3600.0,
        gt=0,
        description="Longest delay between two attempts of a delivery (seconds).",
    )
    webhook_concurrency: int = Field(
        default=32,
        ge=1,
        le=1000,
        description="Webhook requests in flight per worker process.",
    )
    webhook_endpoint_concurrency: int = Field(
        default=4,
        ge=1,
        le=100,
        description="Webhook requests in flight per endpoint within one worker process.",
    )
    webhook_allowed_networks: str = Field(
        default="",
        description="Networks webhooks may reach although they are not public, "
        "comma-separated CIDRs (e.g. `127.0.0.1/32,10.1.0.0/16`). Empty: public "
        "addresses only.",
    )
    metrics_allowed_networks: str = Field(
        default="127.0.0.1/32,::1/128",
        description="Networks whose clients may read the Prometheus metrics at `/metrics`, "
        "comma-separated CIDRs (e.g. `127.0.0.1/32,10.0.0.0/8` for a scraper on the "
        "private network). Any other client gets 404, as for an unknown path. Empty: "
        "nobody.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Load balancers and reverse proxies whose `Forwarded` or "
        "`X-Forwarded-For` header names the caller, comma-separated CIDRs (e.g. "
        "`10.0.0.0/8`). The caller is the first address, read from the right, that is not "
        "one of them: the throttles, the audit log and `/metrics` see it. Empty: the "
        "socket's address, and the headers are ignored (anyone can send them).",
    )
    max_webhooks_per_vault: int = Field(
        default=16,
        ge=1,
        le=1000,
        description="Most webhook endpoints one vault may have (then 409 `limit-reached`).",
    )
    bulk_chunk_rows: int = Field(
        default=200,
        ge=1,
        le=5000,
        description="Bulk enrolment rows per chunk (one write transaction each).",
    )
    bulk_pause: float = Field(
        default=0.005,
        ge=0,
        le=5.0,
        description="Pause between two bulk enrolment chunks of a worker process (seconds).",
    )
    bulk_poll_interval: float = Field(
        default=0.25,
        gt=0,
        le=60,
        description="How often each worker process looks for new bulk enrolment jobs (seconds).",
    )
    max_service_accounts_per_org: int = Field(
        default=100,
        ge=1,
        description="Most live service accounts one organization may have "
        "(then 409 `limit-reached`).",
    )
    oauth_max_body: int = Field(
        default=8192,
        ge=1024,
        description="Largest accepted body on the OAuth endpoints, in bytes.",
    )
    kek_file: str = Field(
        default="",
        description="Key-encryption key file. Empty: `{data_dir}/kek.key` (created 0600 on "
        "first start).",
    )
    threads: int = Field(
        default=8,
        ge=1,
        le=200,
        description="Threads per worker process for blocking work: every database call on "
        "PostgreSQL and the handlers that are not asynchronous. One pool; the database "
        "connections they share are `db_pool_size` and `db_readers`.",
    )
    dashboard_session_hours: int = Field(
        default=12,
        ge=1,
        le=720,
        description="Absolute lifetime of a dashboard session, in hours.",
    )
    dashboard_idle_minutes: int = Field(
        default=30,
        ge=1,
        le=1440,
        description="A dashboard session ends after this many minutes without a request.",
    )
    signin_email_ip_failures: int = Field(
        default=5,
        ge=1,
        description="Failed dashboard sign-ins allowed per minute for one email from one address.",
    )
    signin_ip_failures: int = Field(
        default=20,
        ge=1,
        description="Failed dashboard sign-ins allowed per minute from one address.",
    )
    signin_email_failures: int = Field(
        default=50,
        ge=1,
        description="Failed dashboard sign-ins allowed per minute for one email.",
    )
    device_poll_interval: int = Field(
        default=5,
        ge=1,
        le=60,
        description="Seconds `cardvault login` waits between polls (RFC 8628 `interval`).",
    )
    host: str = Field(default="127.0.0.1", description="Address `cardvault serve` listens on.")
    port: int = Field(
        default=8000, ge=1, le=65535, description="Port `cardvault serve` listens on."
    )
    workers: int = Field(
        default=1, ge=1, le=64, description="Worker processes of `cardvault serve`."
    )
    access_log: bool = Field(
        default=False,
        description="Write one JSON log line per HTTP request (logs go to standard error).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info",
        description="Level of the JSON logs on standard error.",
    )

    @field_validator("realm")
    @classmethod
    def _realm_is_a_path_segment(cls, value: str) -> str:
        if not value or "/" in value:
            raise ValueError("realm must be a non-empty path segment")
        return value

    @field_validator("webhook_allowed_networks", "metrics_allowed_networks", "trusted_proxies")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
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
    def webhook_networks(self) -> tuple[IpNetwork, ...]:
        """``webhook_allowed_networks`` as networks (checked at start-up)."""
        return parse_networks(self.webhook_allowed_networks)

    @property
    def metrics_networks(self) -> tuple[IpNetwork, ...]:
        """``metrics_allowed_networks`` as networks (checked at start-up)."""
        return parse_networks(self.metrics_allowed_networks)

    @property
    def proxy_networks(self) -> tuple[IpNetwork, ...]:
        """``trusted_proxies`` as networks (checked at start-up)."""
        return parse_networks(self.trusted_proxies)

    @property
    def kek_path(self) -> Path:
        return Path(self.kek_file) if self.kek_file else self.data_dir / "kek.key"

    @property
    def is_https(self) -> bool:
        return self.url.startswith("https://")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
