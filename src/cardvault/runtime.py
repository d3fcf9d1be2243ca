"""Everything one server process holds: settings, database, keys and live state.

Built once per worker by the application's lifespan; the HTTP layers read it from
``app.state.runtime``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import delete

from cardvault.accounts.services import ClientRecord, aload_client
from cardvault.audit import AuditBuffer
from cardvault.crypto import KeyRing, LocalFileKeyProvider, SecretHasher
from cardvault.keys import (
    KeyMissing,
    ensure_installation_keys,
    has_installation_keys,
    load_keyring,
    load_pepper,
    verify_kek,
)
from cardvault.keys.vault_keys import VaultKeys
from cardvault.networks.provider import Providers
from cardvault.networks.registry import providers
from cardvault.oauth.access_tokens import AccessTokenVerifier
from cardvault.oauth.client_cache import ClientCache
from cardvault.oauth.issuer import Issuer, hold_issuer
from cardvault.oauth.throttle import FailureThrottle
from cardvault.observability import record_pool
from cardvault.settings import Settings
from cardvault.store import Database, create_database, upgrade
from cardvault.store.files import secure_data_dir
from cardvault.store.group_commit import GroupCommit
from cardvault.store.models import Base
from cardvault.store.probe import ChangeProbe
from cardvault.store.types import utcnow
from cardvault.store.unavailable import log_failure
from cardvault.sync.changes import ChangeFeed, Freshness
from cardvault.sync.revocations import RevocationState
from cardvault.webhooks.addresses import AddressPolicy
from cardvault.webhooks.worker import DeliveryWorker, WorkerSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

ALLOWED_ALGS = ("ES256", "RS256")  # asymmetric only: never "none", never HMAC
CHECKPOINT_INTERVAL = 0.1  # seconds between WAL checkpoints (SQLite)
POOL_SAMPLE_INTERVAL = 1.0  # seconds between two samples of the pools for the metrics


def prepare(settings: Settings) -> Database:
    """Apply migrations, check the key-encryption key against the database and create
    missing installation keys; returns the database. Raises
    :class:`~cardvault.keys.KeyMismatch` or :class:`~cardvault.keys.KeyMissing` (one
    line each, for the operator) when the key is not the installation's. From here on,
    whatever the process writes in the data directory is private."""
    secure_data_dir(settings.data_dir, settings.database_url)
    upgrade(settings.database_url)
    db = create_database(
        settings.database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        pool_size=settings.db_pool_size,
        readers=settings.db_readers,
    )
    try:
        kek = _installation_kek(db, settings.kek_path)
        with db.sessions() as session:
            verify_kek(session, kek, where=str(settings.kek_path))
        ensure_installation_keys(db, kek, settings.signing_alg)
    except BaseException:
        db.dispose()
        raise
    return db


def _installation_kek(db: Database, path: Path) -> LocalFileKeyProvider:
    """The key-encryption key file; a new one is made only for a database that holds
    no keys yet (a node whose file is missing must not start with a key of its own)."""
    if not path.exists():
        with db.sessions() as session:
            if has_installation_keys(session):
                raise KeyMissing(str(path))
    return LocalFileKeyProvider(path)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    kek: LocalFileKeyProvider
    hasher: SecretHasher
    keyring: KeyRing
    revocations: RevocationState
    verifier: AccessTokenVerifier
    audit: AuditBuffer
    throttle: FailureThrottle
    feed: ChangeFeed
    freshness: Freshness
    clients: ClientCache
    vault_keys: VaultKeys
    writes: GroupCommit
    providers: Providers
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        db = prepare(settings)
        hold_issuer(db, Issuer(settings.url, settings.realm))
        kek = LocalFileKeyProvider(settings.kek_path, create=False)
        retention = settings.key_retention
        with db.sessions() as session:
            hasher = SecretHasher(load_pepper(session, kek))
            keyring = load_keyring(
                session, kek, retention=retention, allowed_algs=list(ALLOWED_ALGS)
            )
        revocations = RevocationState(db, retention=retention)

        async def load(client_id: str) -> ClientRecord | None:
            return await aload_client(db, client_id)

        feed = ChangeFeed(db, poll_interval=settings.change_poll_interval)
        freshness = Freshness(db, feed)
        # Exact only where a probe sees every commit (see Capabilities.sees_every_commit).
        clients = ClientCache(load, freshness.sync, enabled=db.capabilities.sees_every_commit)
        feed.subscribe(revocations.apply)
        feed.subscribe(clients.apply)
        vault_keys = VaultKeys(db, kek)
        feed.subscribe(vault_keys.apply)
        feed.prime()
        revocations.load()
        runtime = cls(
            settings=settings,
            db=db,
            kek=kek,
            hasher=hasher,
            keyring=keyring,
            revocations=revocations,
            verifier=None,  # type: ignore[arg-type]  # set just below
            audit=AuditBuffer(db),
            throttle=FailureThrottle(
                per_client_ip=settings.throttle_client_ip_failures,
                per_ip=settings.throttle_ip_failures,
                per_client=settings.throttle_client_failures,
            ),
            feed=feed,
            freshness=freshness,
            clients=clients,
            vault_keys=vault_keys,
            writes=GroupCommit(db),
            providers=providers(settings.networks),
        )
        runtime.verifier = AccessTokenVerifier(
            lambda: runtime.keyring,
            revocations,
            issuer=settings.issuer,
            audience=settings.audience,
            leeway=settings.token_leeway,
            sync=freshness.sync,
        )
        revocations.on_keys_changed = runtime.reload_keys
        return runtime

    async def run_db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking database work from the event loop (see :meth:`Database.call`)."""
        return await self.db.call(fn, *args)

    def reload_keys(self) -> None:
        retention = self.settings.key_retention
        with self.db.sessions() as session:
            self.keyring = load_keyring(
                session, self.kek, retention=retention, allowed_algs=list(ALLOWED_ALGS)
            )

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.feed.run(), name="change-feed"),
            asyncio.create_task(self._flush_loop(), name="audit-flush"),
            asyncio.create_task(self._housekeeping(), name="housekeeping"),
            asyncio.create_task(self._settle_loop(), name="settle-pending-tokens"),
            asyncio.create_task(self._webhook_worker().run(), name="webhook-deliveries"),
            asyncio.create_task(self._bulk_loop(), name="bulk-enrolment"),
            asyncio.create_task(self._checkpoint_loop(), name="wal-checkpoint"),
            asyncio.create_task(self._pool_loop(), name="pool-metrics"),
        ]

    def _webhook_worker(self) -> DeliveryWorker:
        s = self.settings
        config = WorkerSettings(
            poll_interval=s.webhook_poll_interval,
            timeout=s.webhook_timeout,
            horizon=dt.timedelta(seconds=s.webhook_retry_horizon),
            backoff_base=s.webhook_backoff_base,
            backoff_max=s.webhook_backoff_max,
            concurrency=s.webhook_concurrency,
            per_endpoint=s.webhook_endpoint_concurrency,
        )
        return DeliveryWorker(self.db, self.vault_keys, self.webhook_policy, config)

    @property
    def webhook_policy(self) -> AddressPolicy:
        return AddressPolicy(self.settings.webhook_networks)

    async def _settle_loop(self) -> None:
        """Moves PENDING network tokens on once the network has decided."""
        from cardvault.network_tokens.services import settle_pending

        while True:
            await asyncio.sleep(self.settings.settle_interval)
            try:
                await asyncio.to_thread(
                    settle_pending, self.db, self.providers, self.vault_keys.cipher
                )
            except Exception as error:
                log_failure(log, "settling pending network tokens failed; will retry", error)

    async def _bulk_loop(self) -> None:
        """Processes bulk enrolment jobs, one chunk at a time (see ``bulk/worker.py``)."""
        from cardvault.bulk.worker import BulkWorker

        settings = self.settings
        worker = BulkWorker(self.db, self.vault_keys, self.providers, settings.bulk_chunk_rows)
        probe = ChangeProbe(self.db)  # no commit since an idle look: still nothing to do
        busy = False
        try:
            while True:
                try:
                    if busy or probe.changed() or worker.due():
                        busy = await asyncio.to_thread(worker.step)
                except Exception as error:
                    log_failure(log, "bulk enrolment step failed; will retry", error)
                    busy = False
                await asyncio.sleep(settings.bulk_pause if busy else settings.bulk_poll_interval)
        finally:
            probe.close()

    async def _checkpoint_loop(self) -> None:
        """Copies the WAL into the database file (SQLite), in a thread, every
        CHECKPOINT_INTERVAL seconds, so that writers need not (see ``Database.checkpoint``);
        ends at once where the database has none."""
        failing = False  # a full disk fails every round: say so once, not ten times a second
        while True:
            try:
                if await asyncio.to_thread(self.db.checkpoint) is None:
                    return  # nothing to copy on this database
                failing = False
            except Exception as error:
                if not failing:
                    log_failure(log, "WAL checkpoint failed; will retry", error)
                failing = True
            await asyncio.sleep(CHECKPOINT_INTERVAL)

    async def _pool_loop(self) -> None:
        """Samples this worker's database pools for the metrics (the workers' samples
        add up at a scrape); ends at once where there are none (SQLite)."""
        while pools := self.db.pools():
            for pool in pools:
                record_pool(pool.name, pool.size, pool.in_use, pool.waiting)
            await asyncio.sleep(POOL_SAMPLE_INTERVAL)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.audit_flush_interval)
            if not len(self.audit):
                continue
            try:
                await asyncio.to_thread(self.audit.flush)
            except Exception as error:
                log_failure(log, "writing audit records failed; will retry", error)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(600)
            self.revocations.prune()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.feed.prune, utcnow())
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._prune_idempotency_keys)

    def _prune_idempotency_keys(self) -> None:
        """Forget idempotency answers older than 24 hours."""
        keys = Base.metadata.tables["idempotency_keys"]
        cutoff = utcnow() - dt.timedelta(hours=24)
        with self.db.write_connection() as conn:
            conn.execute(delete(keys).where(keys.c.created_at < cutoff))

    async def stop(self) -> None:
        self.feed.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        try:
            await asyncio.to_thread(self.audit.flush, final=True)
        except Exception:
            log.exception("final audit flush failed; %d records lost", len(self.audit))
        self.freshness.close()
        await self.db.aclose()
        self.db.dispose()
