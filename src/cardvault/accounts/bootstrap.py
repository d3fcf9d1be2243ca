"""``cardvault init``: the first organization, vault, admin and CLI credentials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from cardvault.accounts.grants import OPERATOR
from cardvault.accounts.services import create_organization, create_service_account, create_vault
from cardvault.audit import AuditRecord, write_audit
from cardvault.crypto import SecretHasher, generate_password, hash_password, random_id
from cardvault.store.models import InstallationState, Member, Person

STATE_KEY = "bootstrap"
ADMIN_EMAIL = "admin@cardvault.local"
CLI_ACCOUNT_NAME = "cardvault-cli"


@dataclass(frozen=True)
class InitResult:
    organization_id: str
    vault_id: str
    admin_email: str
    admin_password: str | None
    client_id: str
    client_secret: str | None
    created: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "organization_id": self.organization_id,
            "vault_id": self.vault_id,
            "admin": {"email": self.admin_email, "password": self.admin_password},
            "cli_credentials": {"client_id": self.client_id, "client_secret": self.client_secret},
        }


def initialize(session: Session, hasher: SecretHasher) -> InitResult:
    """Create the first objects once; later calls return their ids and no secrets."""
    state = session.get(InstallationState, STATE_KEY)
    if state is not None:
        v = state.value
        return InitResult(
            v["organization_id"],
            v["vault_id"],
            v["admin_email"],
            None,
            v["client_id"],
            None,
            created=False,
        )
    org = create_organization(session, "Default organization")
    # Recorded once, as installation.init, below.
    vault = create_vault(session, org.id, "default", actor=None)
    password = generate_password()
    person = Person(id=random_id("usr_"), email=ADMIN_EMAIL, password_hash=hash_password(password))
    session.add(person)
    session.flush()
    session.add(
        Member(
            id=random_id("mem_"), org_id=org.id, kind="person", person_id=person.id, access="write"
        )
    )
    account, secret = create_service_account(
        session,
        hasher,
        grantor=OPERATOR,
        actor=None,
        org_id=org.id,
        name=CLI_ACCOUNT_NAME,
        scopes=["organization:admin"],
        vault_ids=[],
        lifespan=300,
    )
    session.add(
        InstallationState(
            key=STATE_KEY,
            value={
                "organization_id": org.id,
                "vault_id": vault.id,
                "admin_email": ADMIN_EMAIL,
                "client_id": account.client_id,
            },
        )
    )
    write_audit(
        session,
        AuditRecord(
            actor_type="system",
            actor_id="cardvault init",
            action="installation.init",
            outcome="success",
            org_id=org.id,
            target_type="organization",
            target_id=org.id,
        ),
    )
    return InitResult(
        org.id, vault.id, ADMIN_EMAIL, password, account.client_id, secret.reveal(), created=True
    )
