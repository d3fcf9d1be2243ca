"""/organizations/{org}/vaults and scope enforcement of the management API."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import Factory
from tests.functional.oauth.helpers import access_token
from tests.servers import Server


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_list_and_create_vaults(server: Server, factory: Factory) -> None:
    admin = factory.client(scopes=["organization:admin"], vaults=0)
    token = access_token(server, admin)
    url = f"{server.url}/organizations/{admin.org_id}/vaults"
    created = httpx.post(url, json={"name": "payments"}, headers=_bearer(token))
    assert created.status_code == 201
    vault = created.json()
    assert vault["name"] == "payments" and vault["org_id"] == admin.org_id
    assert vault["id"].startswith("vlt_")
    listed = httpx.get(url, headers=_bearer(token)).json()["data"]
    assert [v["id"] for v in listed] == [vault["id"]]  # only the new one: admin has no vault


@pytest.mark.parametrize(
    ("scopes", "method", "status"),
    [
        (["cards:write"], "GET", 403),
        (["vaults:read"], "GET", 200),
        (["vaults:write"], "GET", 200),  # write implies read
        (["vaults:read"], "POST", 403),
        (["organization:admin"], "POST", 201),
    ],
)
def test_scopes_are_enforced(
    server: Server, factory: Factory, scopes: list[str], method: str, status: int
) -> None:
    client = factory.client(scopes=scopes, vaults=1)
    url = f"{server.url}/organizations/{client.org_id}/vaults"
    response = httpx.request(
        method,
        url,
        json={"name": "x"} if method == "POST" else None,
        headers=_bearer(access_token(server, client)),
    )
    assert response.status_code == status
    if status == 403:
        required = "vaults:read" if method == "GET" else "vaults:write"
        assert response.json() == {
            "errors": [
                {
                    "status": 403,
                    "code": "insufficient-scope",
                    "detail": f"This request requires the scope {required}",
                }
            ]
        }
        assert response.headers["www-authenticate"] == (
            f'Bearer error="insufficient_scope", scope="{required}"'
        )


def test_another_organization_is_404(server: Server, factory: Factory) -> None:
    admin = factory.client(scopes=["organization:admin"], vaults=0)
    other = factory.organization()
    response = httpx.get(
        f"{server.url}/organizations/{other}/vaults",
        headers=_bearer(access_token(server, admin)),
    )
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not-found"


def test_bad_body_is_422_naming_the_field(server: Server, factory: Factory) -> None:
    admin = factory.client(scopes=["organization:admin"], vaults=0)
    url = f"{server.url}/organizations/{admin.org_id}/vaults"
    token = access_token(server, admin)
    missing = httpx.post(url, json={}, headers=_bearer(token))
    assert missing.status_code == 422
    assert missing.json() == {
        "errors": [
            {
                "status": 422,
                "code": "required-fields-missing",
                "detail": "name: field required",
                "source": {"field": "name"},
            }
        ]
    }
    empty = httpx.post(url, json={"name": ""}, headers=_bearer(token))
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["code"] == "invalid-format"
