"""People: signing in with a password, invitations, and their membership."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.accounts.auditing import record, refusals
from cardvault.accounts.errors import AccountsError, NotFound, ValidationFailed
from cardvault.accounts.grants import check_grant, person_holding, require
from cardvault.accounts.scopes import Holding
from cardvault.accounts.scopes import person_scopes as person_scopes  # where callers look
from cardvault.audit import Actor
from cardvault.crypto import (
    SecretHasher,
    generate_password,
    generate_token,
    hash_password,
    random_id,
    verify_password,
)
from cardvault.store.models import Invitation, Member, Organization, Person

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}$")
MIN_PASSWORD = 12
INVITATION_LIFETIME = dt.timedelta(days=2)
# Compared against when the email is unknown, so both paths cost one argon2 check.
_DUMMY_HASH = hash_password(generate_token(16))


class AlreadyMember(AccountsError):
    code = "conflict"


class InvitationInvalid(AccountsError):
    code = "invalid-invitation"


@dataclass(frozen=True)
class Identity:
    """A signed-in person and their membership, as plain values."""

    person_id: str
    email: str
    org_id: str
    org_name: str
    access: str

    @property
    def can_write(self) -> bool:
        return self.access == "write"


def identity(session: Session, person_id: str) -> Identity | None:
    """The person's identity in their organization, or ``None`` if no longer a member."""
    row = session.execute(
        select(Person.email, Member.org_id, Member.access, Organization.name)
        .join(Member, Member.person_id == Person.id)
        .join(Organization, Organization.id == Member.org_id)
        .where(Person.id == person_id)
        .order_by(Member.created_at)
    ).first()
    if row is None:
        return None
    return Identity(person_id, row.email, row.org_id, row.name, row.access)


def authenticate(session: Session, email: str, password: str) -> Identity | None:
    """The identity for a correct email and password, else ``None`` (same cost either way)."""
    person = session.scalar(select(Person).where(Person.email == email.strip().lower()))
    if person is None:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(person.password_hash, password):
        return None
    return identity(session, person.id)


def _check_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL_PATTERN.fullmatch(email):
        raise ValidationFailed("email", "must be an email address")
    return email


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed("password", f"must be at least {MIN_PASSWORD} characters")


@dataclass(frozen=True)
class Invited:
    """A new member: either a one-time link token or a generated password, shown once."""

    person_id: str
    email: str
    link_token: str | None
    password: str | None


def invite(
    session: Session,
    hasher: SecretHasher,
    *,
    org_id: str,
    email: str,
    access: str,
    with_password: bool,
    invited_by: str,
    grantor: Holding,
    actor: Actor | None,
    now: dt.datetime,
) -> Invited:
    """Add a person with ``read`` or ``write`` access; they sign in by link or password.

    The access grants the person its scopes, so ``grantor`` must hold
    ``members:write`` and be allowed to grant them (:class:`InsufficientScope`).
    Recorded as ``member.invite`` by ``actor``, refusals included.
    """
    with refusals(actor, "member.invite", target_type="member", target_id=email):
        require(grantor, "members:write", parameter="org_id")
        email = _check_email(email)
        if access not in ("read", "write"):
            raise ValidationFailed("access", "must be 'read' or 'write'")
        check_grant(grantor, person_holding(access), field="access")
        if session.scalar(select(Person.id).where(Person.email == email)) is not None:
            raise AlreadyMember(f"{email} already has an account")
    invited = _add_person(session, hasher, org_id, email, access, with_password, invited_by, now)
    details = {"access": access}
    record(session, actor, "member.invite", target_type="member", target_id=email, details=details)
    return invited


def _add_person(
    session: Session,
    hasher: SecretHasher,
    org_id: str,
    email: str,
    access: str,
    with_password: bool,
    invited_by: str,
    now: dt.datetime,
) -> Invited:
    password = generate_password() if with_password else None
    # Without a password yet, the stored hash is of a random value nobody knows.
    person = Person(
        id=random_id("usr_"), email=email, password_hash=hash_password(password or generate_token())
    )
    session.add(person)
    session.flush()
    session.add(
        Member(
            id=random_id("mem_"), org_id=org_id, kind="person", person_id=person.id, access=access
        )
    )
    token = None
    if not with_password:
        token = generate_token()
        session.add(
            Invitation(
                token_hash=hasher.hash(token),
                org_id=org_id,
                person_id=person.id,
                created_by=invited_by,
                created_at=now,
                expires_at=now + INVITATION_LIFETIME,
            )
        )
    session.flush()
    return Invited(person.id, email, token, password)


def pending_invitation(
    session: Session, hasher: SecretHasher, token: str, now: dt.datetime
) -> tuple[Invitation, str]:
    """The unused, unexpired invitation for ``token`` and the invitee's email."""
    invitation = session.get(Invitation, hasher.hash(token))
    if invitation is None or invitation.used_at is not None or invitation.expires_at <= now:
        raise InvitationInvalid("this invitation link is invalid, used or expired")
    person = session.get(Person, invitation.person_id)
    if person is None:
        raise NotFound("the invited person no longer exists")
    return invitation, person.email


def accept_invitation(
    session: Session, hasher: SecretHasher, token: str, password: str, now: dt.datetime
) -> str:
    """Set the invitee's password and use the link up; returns the person id."""
    check_password(password)
    invitation, _email = pending_invitation(session, hasher, token, now)
    person = session.get(Person, invitation.person_id)
    assert person is not None
    person.password_hash = hash_password(password)
    invitation.used_at = now
    return person.id
