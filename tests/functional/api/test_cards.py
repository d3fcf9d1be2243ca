"""/cards over HTTP: enrolment, de-duplication, reads, updates, isolation, idempotency."""

from __future__ import annotations

import datetime as dt
import random
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from cardvault.crypto.pan import luhn_check_digit
from cardvault.store.models import AuditEvent
from tests.factories import Client, Factory
from tests.functional.oauth.helpers import access_token
from tests.servers import Server

NEXT_YEAR = dt.date.today().year + 1


def random_pan(prefix: str = "4", length: int = 16) -> str:
    body = prefix + "".join(random.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return body + luhn_check_digit(body)


class Api:
    def __init__(self, server: Server, client: Client) -> None:
        self.server = server
        self.client = client
        self.headers = {"Authorization": f"Bearer {access_token(server, client)}"}

    def post(self, body: dict[str, object], **headers: str) -> httpx.Response:
        return httpx.post(
            f"{self.server.url}/cards", json=body, headers={**self.headers, **headers}
        )

    def get(self, path: str = "", **params: object) -> httpx.Response:
        return httpx.get(f"{self.server.url}/cards{path}", params=params, headers=self.headers)


@pytest.fixture
def api(server: Server, factory: Factory) -> Api:
    return Api(server, factory.client(scopes=["cards:write"]))


def _card(pan: str | None = None, **extra: object) -> dict[str, object]:
    return {"pan": pan or random_pan(), "exp_month": 7, "exp_year": NEXT_YEAR, **extra}


def test_enrol_returns_only_bin_and_last_four(api: Api) -> None:
    pan = random_pan()
    holder = {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "billing_address": {"city": "London", "country": "GB", "postal_code": "N1"},
    }
    response = api.post(_card(pan, cvc="123", holder_info=holder))
    assert response.status_code == 201
    card = response.json()
    assert set(card) == {
        "id",
        "pan_alias",
        "bin",
        "last4",
        "brand",
        "exp_month",
        "exp_year",
        "expires_at",
        "holder_info",
        "fingerprint",
        "created_at",
        "updated_at",
    }
    assert (card["bin"], card["last4"], card["brand"]) == (pan[:6], pan[-4:], "visa")
    assert (card["exp_month"], card["exp_year"]) == (7, NEXT_YEAR)
    assert card["expires_at"] == f"{NEXT_YEAR}-07"
    assert card["holder_info"] == holder
    assert len(card["fingerprint"]) == 32
    assert pan not in response.text and pan[6:-4] not in response.text
    assert card["pan_alias"] != card["id"] and pan[-4:] not in card["pan_alias"]


@pytest.mark.parametrize(
    ("pan", "brand"),
    [
        ("4242424242424242", "visa"),
        ("5555555555554444", "mastercard"),
        ("2223003122003222", "mastercard"),
        ("378282246310005", "amex"),
        ("6011111111111117", "discover"),
        ("3530111333300000", "jcb"),
    ],
)
def test_brand_from_the_iin(server: Server, factory: Factory, pan: str, brand: str) -> None:
    api = Api(server, factory.client(scopes=["cards:write"]))
    assert api.post(_card(pan)).json()["brand"] == brand


def test_same_pan_returns_the_existing_card(api: Api) -> None:
    pan = random_pan()
    first = api.post(_card(pan)).json()
    again = api.post(_card(f"{pan[:4]} {pan[4:8]}-{pan[8:]}", exp_month=1))
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert again.json()["exp_month"] == 7  # an earlier expiry does not replace a later one
    later = api.post(_card(pan, exp_year=NEXT_YEAR + 2)).json()
    assert (later["id"], later["exp_year"]) == (first["id"], NEXT_YEAR + 2)


def test_two_digit_years_are_normalised(api: Api) -> None:
    card = api.post(_card(exp_year=NEXT_YEAR % 100)).json()
    assert card["exp_year"] == NEXT_YEAR


@pytest.mark.parametrize(
    ("body", "status", "code", "detail"),
    [
        ({"pan": "4242424242424241"}, 422, "invalid-format", "pan: fails the Luhn check"),
        ({"pan": "4242-abcd"}, 422, "invalid-format", None),
        ({"pan": "42424242424"}, 422, "invalid-format", None),
        ({"exp_month": 13}, 422, "invalid-format", "exp_month: must be between 1 and 12"),
        ({"exp_year": 2001}, 422, "invalid-format", "exp_year: the card has expired"),
        ({"cvc": "12"}, 422, "invalid-format", None),
    ],
)
def test_bad_cards_are_refused(
    api: Api, body: dict[str, object], status: int, code: str, detail: str | None
) -> None:
    response = api.post(_card(**body) if "pan" not in body else {**_card(), **body})
    assert response.status_code == status
    (error,) = response.json()["errors"]
    assert error["code"] == code
    if detail:
        assert error["detail"] == detail
    assert "4242424242424241" not in response.text


def test_missing_fields_are_named(api: Api) -> None:
    response = api.post({"exp_month": 1, "exp_year": NEXT_YEAR})
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "status": 422,
        "code": "required-fields-missing",
        "detail": "pan: field required",
        "source": {"field": "pan"},
    }


def test_read_by_id_or_alias_list_update_delete(api: Api) -> None:
    created = [api.post(_card()).json() for _ in range(3)]
    newest = created[-1]
    assert api.get(f"/{newest['id']}").json() == newest
    assert api.get(f"/{newest['pan_alias']}").json() == newest
    first = api.get(limit=2).json()
    assert [c["id"] for c in first["data"]] == [created[2]["id"], created[1]["id"]]
    rest = api.get(limit=2, cursor=first["next_cursor"]).json()
    assert rest["data"][0]["id"] == created[0]["id"]

    patched = httpx.patch(
        f"{api.server.url}/cards/{newest['id']}",
        headers=api.headers,
        json={"exp_month": 12, "exp_year": NEXT_YEAR + 3, "holder_info": {"name": "New Name"}},
    )
    assert patched.status_code == 200
    assert patched.json()["expires_at"] == f"{NEXT_YEAR + 3}-12"
    assert patched.json()["holder_info"] == {"name": "New Name"}
    half = httpx.patch(
        f"{api.server.url}/cards/{newest['id']}", headers=api.headers, json={"exp_month": 1}
    )
    assert half.status_code == 422

    gone = httpx.delete(f"{api.server.url}/cards/{newest['id']}", headers=api.headers)
    assert gone.status_code == 204
    assert api.get(f"/{newest['id']}").status_code == 404


def test_other_vaults_cards_are_404(server: Server, factory: Factory, api: Api) -> None:
    card = api.post(_card()).json()
    same_org = Api(server, factory.client(org_id=api.client.org_id, scopes=["cards:write"]))
    other_org = Api(server, factory.client(scopes=["cards:write"]))
    for other in (same_org, other_org):
        for key in (card["id"], card["pan_alias"]):
            response = other.get(f"/{key}")
            assert response.status_code == 404
            assert response.json()["errors"][0]["code"] == "not-found"
        assert other.get().json()["data"] == []
        deleted = httpx.delete(f"{server.url}/cards/{card['id']}", headers=other.headers)
        assert deleted.status_code == 404
    assert api.get(f"/{card['id']}").status_code == 200


@pytest.mark.parametrize(
    ("scopes", "method", "status"),
    [
        (["cards:read"], "GET", 200),
        (["cards:read"], "POST", 403),
        (["network-tokens:write"], "GET", 403),
        (["cards:write"], "GET", 200),
    ],
)
def test_card_scopes(
    server: Server, factory: Factory, scopes: list[str], method: str, status: int
) -> None:
    api = Api(server, factory.client(scopes=scopes))
    response = api.get() if method == "GET" else api.post(_card())
    assert response.status_code == status


def test_token_without_a_vault_is_forbidden(server: Server, factory: Factory) -> None:
    admin = Api(server, factory.client(scopes=["organization:admin"], vaults=0))
    response = admin.get()
    assert response.status_code == 403


def test_idempotency_key_replays_and_detects_reuse(api: Api) -> None:
    body = _card()
    first = api.post(body, **{"Idempotency-Key": "order-1"})
    again = api.post(body, **{"Idempotency-Key": "order-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    reused = api.post(_card(), **{"Idempotency-Key": "order-1"})
    assert reused.status_code == 422
    assert reused.json()["errors"][0]["code"] == "idempotency-key-reused"
    assert len(api.get().json()["data"]) == 1


def test_enrolments_are_audited_by_card_id(api: Api, factory: Factory) -> None:
    pan = random_pan()
    card = api.post(_card(pan)).json()
    api.get(f"/{card['id']}")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        with factory.db.sessions() as session:
            rows = session.scalars(
                select(AuditEvent).where(AuditEvent.target_id == card["id"]).order_by(AuditEvent.id)
            ).all()
        if len(rows) >= 2:
            break
        time.sleep(0.05)
    assert [r.action for r in rows] == ["card.create", "card.read"]
    assert all(r.vault_id == api.client.vault_ids[0] for r in rows)
    assert pan not in repr([vars(r) for r in rows])


def _stored_text(server: Server, backend: str) -> bytes:
    if backend == "sqlite":
        path = Path(server.database_url.split(":///", 1)[1])
        files = [path, Path(f"{path}-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    name = server.database_url.rsplit("/", 1)[1]
    return subprocess.run(
        ["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "--data-only", name],
        capture_output=True,
        check=True,
    ).stdout


def test_no_pan_or_cvc_in_the_database_or_log(server: Server, api: Api, backend: str) -> None:
    pans = [random_pan() for _ in range(3)]
    for pan in pans:
        api.post(_card(pan, cvc="9071"))
    time.sleep(0.3)  # audit batch
    stored = _stored_text(server, backend)
    log = server.log_path.read_bytes()
    for pan in pans:
        assert pan.encode() not in stored
        assert pan.encode() not in log
    assert b"9071" not in log


def test_concurrent_enrolments_keep_one_card_per_pan(api: Api) -> None:
    """Enrolments arriving together share transactions; each PAN still gets one card,
    created once and matched by its twins."""
    pans = [random_pan() for _ in range(10)]
    with ThreadPoolExecutor(max_workers=30) as pool:
        answers = list(pool.map(lambda pan: api.post(_card(pan)), pans * 3))
    by_pan: dict[str, list[httpx.Response]] = {}
    for pan, answer in zip(pans * 3, answers, strict=True):
        by_pan.setdefault(pan, []).append(answer)
    for pan, twins in by_pan.items():
        assert sorted(a.status_code for a in twins) == [200, 200, 201]
        assert len({a.json()["id"] for a in twins}) == 1
        assert twins[0].json()["last4"] == pan[-4:]
    listed = api.get(limit=100).json()["data"]
    assert len({card["id"] for card in listed}) == len(listed) == 10
