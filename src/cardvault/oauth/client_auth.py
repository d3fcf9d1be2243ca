"""Client authentication (RFC 6749 §2.3.1): ``client_secret_basic`` and ``client_secret_post``."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

from cardvault.accounts.services import ClientRecord
from cardvault.crypto import SecretHasher
from cardvault.oauth.errors import InvalidClient, InvalidRequest, OAuthError, TooManyFailures
from cardvault.oauth.throttle import FailureThrottle
from cardvault.observability import labelled, metrics

AUTH_METHODS = ("client_secret_basic", "client_secret_post")


@dataclass(frozen=True)
class Credentials:
    client_id: str
    secret: str
    method: str  # one of AUTH_METHODS

    def __repr__(self) -> str:
        return f"Credentials(client_id={self.client_id!r}, secret='****', method={self.method!r})"

    @property
    def basic(self) -> bool:
        return self.method == "client_secret_basic"


def _from_basic(header: str, realm: str) -> Credentials:
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidClient(detail="malformed Basic credentials", basic=True, realm=realm) from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id:
        raise InvalidClient(detail="malformed Basic credentials", basic=True, realm=realm)
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Base64.
    return Credentials(unquote_plus(client_id), unquote_plus(secret), "client_secret_basic")


def read_credentials(form: Mapping[str, str], authorization: str | None, realm: str) -> Credentials:
    """The credentials presented by exactly one method; raises the matching error."""
    basic = authorization is not None and authorization[:6].lower() == "basic "
    if basic:
        if "client_secret" in form:
            raise InvalidRequest("Use only one client authentication method")
        assert authorization is not None
        creds = _from_basic(authorization, realm)
        if form.get("client_id", creds.client_id) != creds.client_id:
            raise InvalidRequest("client_id does not match the Authorization header")
        return creds
    client_id = form.get("client_id", "")
    secret = form.get("client_secret")
    if not client_id or secret is None:
        raise InvalidClient(detail="no client authentication", basic=False, realm=realm)
    return Credentials(client_id, secret, "client_secret_post")


def authenticate(
    creds: Credentials,
    record: ClientRecord | None,
    hasher: SecretHasher,
    realm: str,
) -> ClientRecord:
    """``record`` (the client named by ``creds``, None if there is none) if the secret
    matches one of its valid secrets and it is usable."""
    if record is None:
        hasher.hash(creds.secret)  # same work as for a known client
        raise InvalidClient(detail="unknown client", basic=creds.basic, realm=realm)
    if not hasher.matches(creds.secret, record.valid_hashes(time.time())):
        raise InvalidClient(detail="wrong secret", basic=creds.basic, realm=realm)
    if record.refusal is not None:
        raise InvalidClient(detail=record.refusal, basic=creds.basic, realm=realm)
    return record


@dataclass
class ClientAuthenticator:
    """Authentication shared by the token, introspection and revocation endpoints."""

    lookup: Callable[[str], Awaitable[ClientRecord | None]]
    hasher: SecretHasher
    throttle: FailureThrottle
    realm: str

    def read(self, form: Mapping[str, str], authorization: str | None) -> Credentials:
        return read_credentials(form, authorization, self.realm)

    async def verify(self, creds: Credentials, source_ip: str, now: float) -> ClientRecord:
        """Throttle, then authenticate; failures count towards the throttle."""
        wait = self.throttle.retry_after(creds.client_id, source_ip, now)
        if wait:
            labelled(metrics().throttled, "client_auth").inc()
            raise TooManyFailures(wait)
        known = len(creds.client_id) <= 64
        record = await self.lookup(creds.client_id) if known else None
        try:
            client = authenticate(creds, record, self.hasher, self.realm)
        except OAuthError:
            self.throttle.failure(creds.client_id, source_ip, now)
            raise
        self.throttle.success(creds.client_id, source_ip, now)
        return client
