"""Privilege escalation: every path that grants, tried by callers holding less.

Against real servers on SQLite and PostgreSQL. A refused grant is 403
``insufficient-scope`` whose ``source`` names the scope, an audited failure, and
leaves no credential behind. The last person with write access of an organization
stays, through the API, the CLI and the dashboard, however requests interleave.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from cardvault.accounts import people
from cardvault.accounts import services as accounts
from cardvault.accounts.grants import OPERATOR
from cardvault.store.models import AuditEvent, Member, Person, ServiceAccount
from cardvault.store.types import utcnow
from tests.factories import Client, Factory
from tests.functional.cli.conftest import cli_for
from tests.functional.dashboard.helpers import Browser
from tests.functional.oauth.helpers import access_token, token_request
from tests.servers import Server

ADMIN = "organization:admin"


@dataclass(frozen=True)
class Org:
    org_id: str
    vaults: tuple[str, str]


@pytest.fixture
def org(factory: Factory) -> Org:
    org_id = factory.organization("Target")
    return Org(org_id, (factory.vault(org_id, "v0"), factory.vault(org_id, "v1")))


def _account(
    factory: Factory, org_id: str, scopes: Sequence[str], vault_ids: Sequence[str] = ()
) -> Client:
    """A service account made by the operator, holding exactly ``scopes`` on ``vault_ids``."""
    with factory.db.transaction() as session:
        account, secret = accounts.create_service_account(
            session,
            factory.hasher,
            grantor=OPERATOR,
            actor=None,
            org_id=org_id,
            name=f"caller-{secrets.token_hex(3)}",
            scopes=list(scopes),
            vault_ids=list(vault_ids),
            lifespan=300,
        )
        return Client(account.client_id, secret.reveal(), org_id, tuple(vault_ids), account.id)


def _person(factory: Factory, org_id: str, access: str) -> tuple[str, str]:
    """A person with ``access`` in the organization; returns (email, password)."""
    with factory.db.transaction() as session:
        invited = people.invite(
            session,
            factory.hasher,
            org_id=org_id,
            email=f"p{secrets.token_hex(5)}@example.com",
            access=access,
            with_password=True,
            invited_by="attack-suite",
            grantor=OPERATOR,
            actor=None,
            now=utcnow(),
        )
    assert invited.password
    return invited.email, invited.password


def _bearer(server: Server, client: Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token(server, client)}"}


def _audited(factory: Factory, actor: str, action: str, *, target: str | None = None) -> AuditEvent:
    """The newest failure audit record of ``actor`` doing ``action`` (on ``target`` if
    given), waiting for the audit buffer to flush it."""
    deadline = time.monotonic() + 5
    query = select(AuditEvent).where(
        AuditEvent.actor_id == actor, AuditEvent.action == action, AuditEvent.outcome == "failure"
    )
    if target is not None:
        query = query.where(AuditEvent.target_id == target)
    while True:
        with factory.db.sessions() as session:
            row = session.scalars(query.order_by(AuditEvent.id.desc())).first()
        if row is not None:
            return row
        assert time.monotonic() < deadline, f"no failure audit record of {action} by {actor}"
        time.sleep(0.05)


def _accounts_named(factory: Factory, org_id: str, name: str) -> int:
    with factory.db.sessions() as session:
        count = session.scalar(
            select(func.count())
            .select_from(ServiceAccount)
            .where(ServiceAccount.org_id == org_id, ServiceAccount.name == name)
        )
    return int(count or 0)


def _access_of(factory: Factory, org_id: str, email: str) -> str | None:
    with factory.db.sessions() as session:
        return session.scalar(
            select(Member.access)
            .join(Person, Person.id == Member.person_id)
            .where(Member.org_id == org_id, Person.email == email)
        )


def _member_id(factory: Factory, org_id: str, email: str) -> str:
    with factory.db.sessions() as session:
        found = session.scalar(
            select(Member.id)
            .join(Person, Person.id == Member.person_id)
            .where(Member.org_id == org_id, Person.email == email)
        )
    assert found
    return found


def _writers(factory: Factory, org_id: str) -> int:
    with factory.db.sessions() as session:
        count = session.scalar(
            select(func.count())
            .select_from(Member)
            .where(Member.org_id == org_id, Member.kind == "person", Member.access == "write")
        )
    return int(count or 0)


def _refusal(scope: str, **source: str) -> dict[str, Any]:
    return {"status": 403, "code": "insufficient-scope", "source": {**source, "scope": scope}}


def _error(response: httpx.Response) -> dict[str, Any]:
    error = dict(response.json()["errors"][0])
    assert error.pop("detail")
    return error


# (caller scopes, caller vaults, wanted scopes, wanted vaults, source of the refusal);
# vaults are indices into the organization's two vaults.
CREATE_ATTEMPTS: dict[str, tuple[list[str], list[int], list[str], list[int], dict[str, Any]]] = {
    "the reported defect": (
        ["service-accounts:write"],
        [],
        [ADMIN, "cards:write"],
        [0],
        {"field": "scopes", "scope": ADMIN},
    ),
    "card scopes it does not hold": (
        ["service-accounts:write"],
        [],
        ["cards:write", "network-tokens:write"],
        [1],
        {"field": "scopes", "scope": "cards:write"},
    ),
    "a management scope it does not hold": (
        ["service-accounts:write"],
        [],
        ["members:write"],
        [],
        {"field": "scopes", "scope": "members:write"},
    ),
    "write from read": (
        ["service-accounts:write", "cards:read"],
        [0],
        ["cards:write"],
        [0],
        {"field": "scopes", "scope": "cards:write"},
    ),
    "its scope on a vault it is not bound to": (
        ["service-accounts:write", "cards:write"],
        [0],
        ["cards:read"],
        [1],
        {"field": "vault_ids", "scope": "cards:read", "vault": 1},
    ),
    "a bound admin granting another vault": (
        [ADMIN],
        [0],
        ["cards:write"],
        [1],
        {"field": "vault_ids", "scope": "cards:write", "vault": 1},
    ),
    "a bound admin granting an unbound admin": (
        [ADMIN],
        [0],
        [ADMIN],
        [],
        {"field": "vault_ids", "scope": ADMIN},
    ),
}


@pytest.mark.parametrize("attempt", list(CREATE_ATTEMPTS))
def test_creating_a_service_account_beyond_the_callers_scopes_is_refused(
    server: Server, factory: Factory, org: Org, attempt: str
) -> None:
    held, bound, scopes, vaults, source = CREATE_ATTEMPTS[attempt]
    caller = _account(factory, org.org_id, held, [org.vaults[i] for i in bound])
    name = f"escalated-{secrets.token_hex(3)}"
    response = httpx.post(
        f"{server.url}/organizations/{org.org_id}/service-accounts",
        json={"name": name, "scopes": scopes, "vault_ids": [org.vaults[i] for i in vaults]},
        headers=_bearer(server, caller),
    )
    expected = dict(source)
    if "vault" in expected:
        expected["vault_id"] = org.vaults[expected.pop("vault")]
    assert response.status_code == 403
    assert _error(response) == {"status": 403, "code": "insufficient-scope", "source": expected}
    assert _accounts_named(factory, org.org_id, name) == 0
    audited = _audited(factory, caller.client_id, "service_account.create")
    assert audited.org_id == org.org_id
    assert audited.reason and audited.reason.startswith("insufficient-scope: ")
    assert audited.details == expected


def test_callers_may_grant_what_they_hold(server: Server, factory: Factory, org: Org) -> None:
    bound = _account(factory, org.org_id, ["service-accounts:write", "cards:write"], org.vaults[:1])
    base = f"{server.url}/organizations/{org.org_id}/service-accounts"
    narrower = httpx.post(
        base,
        json={"name": "reader", "scopes": ["cards:read"], "vault_ids": [org.vaults[0]]},
        headers=_bearer(server, bound),
    )
    assert narrower.status_code == 201, narrower.text
    unbound_admin = _account(factory, org.org_id, [ADMIN])
    anything = httpx.post(
        base,
        json={"name": "worker", "scopes": [ADMIN, "cards:write"], "vault_ids": [org.vaults[1]]},
        headers=_bearer(server, unbound_admin),
    )
    assert anything.status_code == 201, anything.text


def test_rotating_the_secret_of_a_stronger_account_is_refused(
    server: Server, factory: Factory, org: Org
) -> None:
    stronger = _account(factory, org.org_id, [ADMIN])
    caller = _account(factory, org.org_id, ["service-accounts:write"])
    base = f"{server.url}/organizations/{org.org_id}/service-accounts"
    headers = _bearer(server, caller)
    refused = httpx.post(f"{base}/{stronger.client_id}/rotate-secret", headers=headers)
    assert refused.status_code == 403
    assert _error(refused) == _refusal(ADMIN, parameter="client_id")
    assert token_request(server, stronger).status_code == 200  # its secret is unchanged
    with factory.db.sessions() as session:
        account = session.scalar(
            select(ServiceAccount).where(ServiceAccount.client_id == stronger.client_id)
        )
        assert account is not None and account.previous_secret_hash is None
    _audited(factory, caller.client_id, "service_account.rotate_secret", target=stronger.client_id)
    own = httpx.post(f"{base}/{caller.client_id}/rotate-secret", headers=headers)
    assert own.status_code == 200  # what it holds itself


def test_giving_write_access_beyond_the_callers_scopes_is_refused(
    server: Server, factory: Factory, org: Org
) -> None:
    stronger = _account(factory, org.org_id, [ADMIN])
    factory.set_access(stronger, "read")
    reader, _password = _person(factory, org.org_id, "read")
    caller = _account(factory, org.org_id, ["members:write"])
    bound_admin = _account(factory, org.org_id, [ADMIN], org.vaults[:1])
    base = f"{server.url}/organizations/{org.org_id}/members"
    sa_member = f"{stronger.client_id}@cardvault.local"
    for who, target in ((caller, sa_member), (caller, reader), (bound_admin, reader)):
        response = httpx.patch(
            f"{base}/{target}", json={"access": "write"}, headers=_bearer(server, who)
        )
        assert response.status_code == 403, (who.client_id, target)
        assert _error(response) == _refusal(ADMIN, field="access")
        audited = _audited(factory, who.client_id, "member.update", target=target)
        assert audited.details == {"field": "access", "scope": ADMIN}
    assert token_request(server, stronger).status_code == 401  # still read: no token
    assert _access_of(factory, org.org_id, reader) == "read"


def test_the_dashboard_refuses_read_only_people_and_audits_it(
    server: Server, factory: Factory, org: Org
) -> None:
    _person(factory, org.org_id, "write")
    email, password = _person(factory, org.org_id, "read")
    other, _ = _person(factory, org.org_id, "read")
    browser = Browser(server)
    assert browser.sign_in(email, password).status_code == 303
    browser.open("/dashboard/settings")
    name = f"sneaky-{secrets.token_hex(3)}"
    created = browser.post(
        "/dashboard/service-accounts",
        {"name": name, "scopes": [ADMIN, "cards:write"], "vault": org.vaults[0]},
    )
    assert created.status_code == 403
    assert "this change needs the scope service-accounts:write" in created.text
    assert f'value="{name}"' in created.text  # the form, shown again with the reason
    assert _accounts_named(factory, org.org_id, name) == 0
    assert _audited(factory, email, "service_account.create").details == {
        "parameter": "org_id",
        "scope": "service-accounts:write",
    }

    member = _member_id(factory, org.org_id, other)
    raised = browser.post(f"/dashboard/members/{member}/access", {"access": "write"})
    assert raised.status_code == 403
    assert "this change needs the scope members:write" in raised.text
    assert _access_of(factory, org.org_id, other) == "read"
    _audited(factory, email, "member.update", target=member)

    invited = browser.post(
        "/dashboard/invitations", {"email": "new@example.com", "access": "write"}
    )
    assert invited.status_code == 403
    _audited(factory, email, "member.invite", target="new@example.com")


def test_the_cli_reports_a_refused_grant(server: Server, factory: Factory, org: Org) -> None:
    caller = _account(factory, org.org_id, ["service-accounts:write"])
    cli = cli_for(server, caller.client_id, caller.client_secret)
    name = f"cli-{secrets.token_hex(3)}"
    document = (
        "apiVersion: 1.0.0\nkind: ServiceAccount\ndata:\n"
        f'  annotations:\n    "vgs.io/vault-id": "{org.vaults[0]}"\n'
        f"  name: {name}\n  scopes:\n    - name: cards:write\n    - name: network-tokens:write\n"
    )
    result = cli(
        "apply", "service-account", "-O", org.org_id, "-f", "-", stdin=document, check=False
    )
    assert result.returncode == 1
    assert "you may not grant cards:write: you do not hold it (insufficient-scope)" in result.stderr
    assert result.stdout == ""  # no credentials printed
    assert _accounts_named(factory, org.org_id, name) == 0
    _audited(factory, caller.client_id, "service_account.create")


def test_the_last_person_with_write_access_stays(
    server: Server, factory: Factory, org: Org
) -> None:
    admin = _account(factory, org.org_id, [ADMIN])
    last, _ = _person(factory, org.org_id, "write")
    reader, _ = _person(factory, org.org_id, "read")
    base = f"{server.url}/organizations/{org.org_id}/members"
    headers = _bearer(server, admin)
    removed = httpx.delete(f"{base}/{last}", headers=headers)
    lowered = httpx.patch(f"{base}/{last}", json={"access": "read"}, headers=headers)
    for response in (removed, lowered):
        assert response.status_code == 409
        assert _error(response) == {
            "status": 409,
            "code": "last-admin",
            "source": {"parameter": "member"},
        }
    assert _access_of(factory, org.org_id, last) == "write"
    assert (
        _audited(factory, admin.client_id, "member.remove").reason
        == (
            f"last-admin: {last} is the last person with write access to the organization; "
            "give another person write access first"
        )[:128]
    )
    _audited(factory, admin.client_id, "member.update", target=last)

    cli = cli_for(server, admin.client_id, admin.client_secret)
    result = cli("remove", "member", last, "-O", org.org_id, check=False)
    assert result.returncode == 1
    assert "is the last person with write access" in result.stderr
    assert "(last-admin)" in result.stderr
    assert _access_of(factory, org.org_id, last) == "write"

    # With a second person given write access, the first one may go.
    raised = httpx.patch(f"{base}/{reader}", json={"access": "write"}, headers=headers)
    assert raised.status_code == 200
    assert httpx.delete(f"{base}/{last}", headers=headers).status_code == 204
    assert _writers(factory, org.org_id) == 1


def _at_once(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run the calls in threads released together; their responses in order."""
    barrier = threading.Barrier(len(calls))
    results: list[httpx.Response | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


@pytest.mark.parametrize("change", ["remove", "lower", "mixed"])
def test_two_concurrent_changes_leave_one_person_with_write(
    server: Server, factory: Factory, org: Org, change: str
) -> None:
    admin = _account(factory, org.org_id, [ADMIN])
    first, _ = _person(factory, org.org_id, "write")
    second, _ = _person(factory, org.org_id, "write")
    base = f"{server.url}/organizations/{org.org_id}/members"
    headers = _bearer(server, admin)

    def remove(email: str) -> Callable[[], httpx.Response]:
        return lambda: httpx.delete(f"{base}/{email}", headers=headers, timeout=30)

    def lower(email: str) -> Callable[[], httpx.Response]:
        return lambda: httpx.patch(
            f"{base}/{email}", json={"access": "read"}, headers=headers, timeout=30
        )

    one, other = {
        "remove": (remove(first), remove(second)),
        "lower": (lower(first), lower(second)),
        "mixed": (remove(first), lower(second)),
    }[change]
    responses = _at_once(one, other)
    assert sorted(r.status_code for r in responses)[1] == 409, [r.text for r in responses]
    assert sorted(r.status_code for r in responses)[0] in (200, 204)
    assert _writers(factory, org.org_id) == 1


def test_two_people_removing_each_other_in_the_dashboard_leave_one(
    server: Server, factory: Factory, org: Org
) -> None:
    people_ = [_person(factory, org.org_id, "write") for _ in range(2)]
    browsers = []
    for email, password in people_:
        browser = Browser(server)
        assert browser.sign_in(email, password).status_code == 303
        browser.open("/dashboard/settings")
        browsers.append(browser)
    (a, b), (email_a, email_b) = browsers, [email for email, _ in people_]
    id_a, id_b = _member_id(factory, org.org_id, email_a), _member_id(factory, org.org_id, email_b)
    responses = _at_once(
        lambda: a.post(f"/dashboard/members/{id_b}/remove", {}),
        lambda: b.post(f"/dashboard/members/{id_a}/remove", {}),
    )
    assert _writers(factory, org.org_id) == 1
    done = [r for r in responses if r.headers.get("location") == "/dashboard/settings#members"]
    assert len(done) == 1, [(r.status_code, r.headers.get("location")) for r in responses]
    (loser,) = [r for r in responses if r is not done[0]]
    # Refused as the last person with write access, or already signed out by the removal.
    if loser.status_code == 409:
        assert "is the last person with write access" in loser.text
    else:
        assert loser.status_code == 303
        assert loser.headers["location"].startswith("/dashboard/sign-in")
