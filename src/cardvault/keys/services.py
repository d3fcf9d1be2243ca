"""Creating, loading and rotating installation keys."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cardvault.crypto import KeyProvider, KeyRing, generate_signing_key
from cardvault.crypto.signing import StoredKey
from cardvault.store.changes import publish_change
from cardvault.store.db import Database
from cardvault.store.models import SigningKey, WrappedSecret
from cardvault.store.types import utcnow

PEPPER = "client-secret-pepper"


def secret_aad(name: str) -> bytes:
    """The associated data of the wrapped secret ``name`` (binds the value to its name)."""
    return b"cardvault:wrapped-secret:" + name.encode()


def _pepper_aad() -> bytes:
    return secret_aad(PEPPER)


def ensure_installation_keys(db: Database, kek: KeyProvider, alg: str) -> None:
    """Create the pepper and a first signing key if the installation has none.

    Safe to run from several processes at once: a lost race is detected and ignored.
    """
    try:
        with db.transaction() as session:
            if session.get(WrappedSecret, PEPPER) is None:
                wrapped = kek.wrap(secrets.token_bytes(32), _pepper_aad())
                session.add(WrappedSecret(name=PEPPER, wrapped=wrapped))
    except IntegrityError:
        pass
    with db.transaction() as session:
        if session.scalar(select(SigningKey.kid).limit(1)) is None:
            material = generate_signing_key(alg, kek)
            session.add(
                SigningKey(
                    kid=material.kid,
                    alg=material.alg,
                    public_jwk=material.public_jwk,
                    private_key_wrapped=material.private_key_wrapped,
                    activates_at=utcnow(),
                )
            )


def load_pepper(session: Session, kek: KeyProvider) -> bytes:
    row = session.get(WrappedSecret, PEPPER)
    if row is None:
        raise LookupError("the installation has no client-secret pepper; run `cardvault init`")
    return kek.unwrap(row.wrapped, _pepper_aad())


def load_keyring(
    session: Session, kek: KeyProvider, *, retention: dt.timedelta, allowed_algs: list[str]
) -> KeyRing:
    rows = session.scalars(select(SigningKey)).all()
    stored = [
        StoredKey(r.kid, r.alg, r.public_jwk, r.private_key_wrapped, r.activates_at, r.retired_at)
        for r in rows
    ]
    return KeyRing(stored, kek, retention=retention, allowed_algs=allowed_algs)


def rotate_signing_key(
    session: Session, kek: KeyProvider, *, alg: str, delay: dt.timedelta, now: dt.datetime
) -> SigningKey:
    """Publish a new key now; it starts signing after ``delay``, retiring the current one.

    A rotation already under way (a key published but not signing yet) is the
    rotation: asking again returns that key, brought forward if this asks for it
    sooner, so two rotations at the same moment (two operators, two processes) make
    one new key. The current keys are locked first (PostgreSQL ``FOR UPDATE``; on
    SQLite the write transaction holds the database's lock), so the second rotation
    waits for the first and then finds its key."""
    activates = now + delay
    live = SigningKey.retired_at.is_(None)
    session.execute(select(SigningKey.kid).where(live).with_for_update())  # wait for a rival
    # Read again: a rival's new key is visible to a statement begun after it committed.
    current = session.scalars(select(SigningKey).where(live)).all()
    pending = [key for key in current if key.activates_at > now]
    if pending:
        key = max(pending, key=lambda k: k.activates_at)
        if activates < key.activates_at:
            for older in current:
                if older is not key:
                    older.retired_at = activates
            key.activates_at = activates
            publish_change(session, "keys", key.kid)
        return key
    for key in current:
        key.retired_at = activates
    material = generate_signing_key(alg, kek)
    key = SigningKey(
        kid=material.kid,
        alg=material.alg,
        public_jwk=material.public_jwk,
        private_key_wrapped=material.private_key_wrapped,
        activates_at=activates,
    )
    session.add(key)
    publish_change(session, "keys", material.kid)
    return key
