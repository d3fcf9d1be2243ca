"""The delivery worker: a background task of every server process.

It turns new events into deliveries, claims due ones, and POSTs them with bounded
concurrency overall and per endpoint, so a slow or dead endpoint holds at most its
own few slots and never delays the others. Results go back to the database, so a
restart (even SIGKILL) loses nothing: an unfinished claim is retried once its lease
runs out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import ipaddress
import logging
import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from cardvault import __version__
from cardvault.keys.vault_keys import VaultKeys
from cardvault.observability import labelled, metrics
from cardvault.store.db import Database
from cardvault.store.probe import ChangeProbe
from cardvault.store.types import utcnow
from cardvault.store.unavailable import log_failure
from cardvault.webhooks.addresses import AddressPolicy, Target
from cardvault.webhooks.deliveries import FAILED, Job, Outcome, claim, fan_out, record
from cardvault.webhooks.endpoints import signing_secrets
from cardvault.webhooks.errors import UrlNotAllowed
from cardvault.webhooks.signature import SIGNATURE_HEADER, signature_header

log = logging.getLogger(__name__)
USER_AGENT = f"cardvault-webhooks/{__version__}"
_jitter = random.SystemRandom()


@dataclass(frozen=True)
class WorkerSettings:
    poll_interval: float
    timeout: float
    horizon: dt.timedelta
    backoff_base: float
    backoff_max: float
    concurrency: int
    per_endpoint: int

    @property
    def lease(self) -> dt.timedelta:
        """How long a claim is held: the request's timeout plus time to record it."""
        return dt.timedelta(seconds=self.timeout + 5)

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt: exponential, capped, jittered (½ to 1 times)."""
        delay = min(self.backoff_base * 2 ** min(attempts - 1, 30), self.backoff_max)
        return float(delay * _jitter.uniform(0.5, 1.0))


class DeliveryWorker:
    def __init__(
        self, db: Database, vault_keys: VaultKeys, policy: AddressPolicy, config: WorkerSettings
    ) -> None:
        self._db = db
        self._keys = vault_keys
        self._policy = policy
        self._config = config
        self._busy: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        # Idle, the worker only looks for new commits; deliveries that fall due with
        # time (retries, expired leases) are looked for at least this often.
        self._probe = ChangeProbe(db)
        self._claim_every = max(config.poll_interval, min(config.backoff_base, 1.0))
        self._claimed_at = -math.inf

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=self._config.concurrency)
        async with httpx.AsyncClient(
            follow_redirects=False, timeout=self._config.timeout, limits=limits
        ) as client:
            try:
                while True:
                    try:
                        await self._tick(client)
                    except Exception as error:
                        log_failure(log, "webhook delivery round failed; will retry", error)
                    await asyncio.sleep(self._config.poll_interval)
            finally:
                self._probe.close()
                for task in self._tasks:
                    task.cancel()

    async def _tick(self, client: httpx.AsyncClient) -> None:
        config = self._config
        made = 0
        if self._probe.changed():  # new events are commits
            made = await asyncio.to_thread(fan_out, self._db, config.horizon)
        slots = config.concurrency - len(self._tasks)
        now = time.monotonic()
        # Deliveries this worker just made are claimed at once; others' (another
        # worker's, retries falling due, expired leases) at least every _claim_every.
        if slots <= 0 or (not made and now - self._claimed_at < self._claim_every):
            return
        self._claimed_at = now
        jobs = await asyncio.to_thread(
            claim,
            self._db,
            slots=slots,
            allowance=lambda endpoint: config.per_endpoint - self._busy[endpoint],
            lease=config.lease,
        )
        for job in jobs:
            self._busy[job.endpoint_id] += 1
            task = asyncio.create_task(self._deliver(client, job), name=job.delivery_id)
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._done, job.endpoint_id))

    def _done(self, endpoint_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._busy[endpoint_id] -= 1
        if self._busy[endpoint_id] <= 0:
            del self._busy[endpoint_id]

    async def _deliver(self, client: httpx.AsyncClient, job: Job) -> None:
        try:
            outcome = await self._attempt(client, job)
            state = await asyncio.to_thread(
                record, self._db, job.delivery_id, outcome, self._config.backoff
            )
            if state == FAILED:
                metrics().webhooks_given_up.inc()
            log.info(
                "webhook %s of %s to %s: %s (%s)",
                job.delivery_id,
                job.event_id,
                job.endpoint_id,
                outcome.status_code or outcome.error,
                state,
            )
        except Exception:
            log.exception(
                "webhook %s could not be recorded; its lease will expire", job.delivery_id
            )

    async def _attempt(self, client: httpx.AsyncClient, job: Job) -> Outcome:
        started = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            secrets = await asyncio.to_thread(self._secrets, job)
            async with asyncio.timeout(self._config.timeout):  # DNS lookup included
                target = await self._policy.check(job.url)
                status = await _post(client, target, job, secrets)
        except UrlNotAllowed as refused:
            _failed("not_allowed")
            return Outcome(None, refused.detail[:255], took())
        except TimeoutError:
            _failed("timeout")
            return Outcome(None, "timeout", took())
        except httpx.HTTPError as failure:
            _failed("connection")
            return Outcome(None, f"{type(failure).__name__}"[:255], took())
        if 200 <= status < 300:
            return Outcome(status, None, took())
        _failed(f"http_{status // 100}xx" if 400 <= status < 600 else "http_other")
        return Outcome(status, f"HTTP {status}", took())

    def _secrets(self, job: Job) -> list[bytes]:
        cipher = self._keys.cipher(job.vault_id)  # may load the key: off the event loop
        return signing_secrets(
            cipher,
            job.endpoint_id,
            job.secret,
            job.previous_secret,
            job.previous_expires_at,
            utcnow(),
        )


def _failed(reason: str) -> None:
    """A failed attempt in the metrics: not_allowed (the address), timeout,
    connection, or the endpoint's answer (http_4xx, http_5xx, http_other)."""
    labelled(metrics().webhook_failures, reason).inc()


async def _post(client: httpx.AsyncClient, target: Target, job: Job, secrets: list[bytes]) -> int:
    """POST the event to the address that was checked (not a fresh DNS answer), with
    the original host in ``Host`` and, for https, in SNI and certificate checks."""
    body = job.payload.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature_header(body, secrets, int(time.time())),
        "Cardvault-Event-Id": job.event_id,
        "Cardvault-Event": job.event,
        "Cardvault-Delivery-Id": job.delivery_id,
        "Idempotency-Key": job.event_id,
        "Host": urlsplit(target.url).netloc,
    }
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    request = client.build_request(
        "POST", _pinned(target), content=body, headers=headers, extensions=extensions
    )
    response = await client.send(request, stream=True)
    await response.aclose()
    return response.status_code


def _pinned(target: Target) -> str:
    address = target.addresses[0]
    host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    parts = urlsplit(target.url)
    return urlunsplit((parts.scheme, f"{host}:{target.port}", parts.path or "/", parts.query, ""))
