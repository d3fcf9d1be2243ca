"""Client authentication (RFC 6749 §2.3.1): client_secret_basic and client_secret_post."""

from __future__ import annotations

import base64
import time
from urllib.parse import quote_plus

import pytest

from cardvault.accounts.services import ClientRecord
from cardvault.crypto import SecretHasher, generate_client_secret
from cardvault.oauth.client_auth import Credentials, authenticate, read_credentials
from cardvault.oauth.errors import InvalidClient, InvalidRequest

REALM = "cardvault"
HASHER = SecretHasher(b"pepper-" * 5)
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Basic realm="cardvault"'}


def basic(client_id: str, secret: str) -> str:
    """An Authorization header built as RFC 6749 §2.3.1 says: urlencode, then Base64."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def raw_basic(decoded: bytes) -> str:
    return "Basic " + base64.b64encode(decoded).decode()


def record(
    client_id: str,
    secrets: tuple[tuple[bytes, float | None], ...],
    refusal: str | None = None,
) -> ClientRecord:
    return ClientRecord(
        service_account_id="sa_" + client_id,
        client_id=client_id,
        org_id="org_1",
        vault_ids=("vlt_1",),
        scopes=("cards:read",),
        lifespan=600,
        secrets=secrets,
        refusal=refusal,
    )


# read_credentials ------------------------------------------------------------------


def test_basic_credentials() -> None:
    creds = read_credentials({}, basic("cv-abc", "cvs_secret"), REALM)

    assert creds == Credentials("cv-abc", "cvs_secret", "client_secret_basic")
    assert creds.basic


@pytest.mark.parametrize("scheme", ["Basic", "basic", "BASIC"])
def test_basic_scheme_is_case_insensitive(scheme: str) -> None:
    header = scheme + " " + base64.b64encode(b"cv-abc:cvs_secret").decode()

    assert read_credentials({}, header, REALM).secret == "cvs_secret"


def test_basic_parts_are_form_urlencoded() -> None:
    """RFC 6749 §2.3.1: ``%3A`` in the secret is a colon, ``+`` is a space."""
    creds = read_credentials({}, raw_basic(b"cv%3Aabc:s%3Acret+with%2Bplus%25"), REALM)

    assert creds.client_id == "cv:abc"
    assert creds.secret == "s:cret with+plus%"


def test_basic_round_trip_of_awkward_secret() -> None:
    secret = "a:b c+d%e&f=g/h?é"

    creds = read_credentials({}, basic("cv-abc", secret), REALM)

    assert (creds.client_id, creds.secret) == ("cv-abc", secret)


def test_basic_secret_may_contain_unencoded_colon() -> None:
    """Only the first colon separates the id from the secret."""
    assert read_credentials({}, raw_basic(b"cv-abc:a:b"), REALM).secret == "a:b"


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!not-base64!!!",
        "Basic ",
        raw_basic(b"no-colon-here"),
        raw_basic(b":secret-without-id"),
        raw_basic(b"\xff\xfe:\xfd"),
    ],
)
def test_malformed_basic(header: str) -> None:
    with pytest.raises(InvalidClient) as info:
        read_credentials({}, header, REALM)

    assert info.value.basic is True
    assert info.value.status == 401
    assert info.value.headers() == WWW_AUTHENTICATE
    assert info.value.body()["error"] == "invalid_client"


def test_basic_and_client_secret_in_form() -> None:
    with pytest.raises(InvalidRequest):
        read_credentials({"client_secret": "cvs_other"}, basic("cv-abc", "cvs_secret"), REALM)


def test_basic_with_matching_client_id_in_form() -> None:
    creds = read_credentials({"client_id": "cv-abc"}, basic("cv-abc", "cvs_secret"), REALM)

    assert creds == Credentials("cv-abc", "cvs_secret", "client_secret_basic")


def test_basic_with_other_client_id_in_form() -> None:
    with pytest.raises(InvalidRequest):
        read_credentials({"client_id": "cv-other"}, basic("cv-abc", "cvs_secret"), REALM)


def test_post_credentials() -> None:
    form = {"client_id": "cv-abc", "client_secret": "cvs_secret", "grant_type": "x"}

    creds = read_credentials(form, None, REALM)

    assert creds == Credentials("cv-abc", "cvs_secret", "client_secret_post")
    assert not creds.basic


def test_other_authorization_scheme_falls_back_to_form() -> None:
    form = {"client_id": "cv-abc", "client_secret": "cvs_secret"}

    assert read_credentials(form, "Bearer abc", REALM).method == "client_secret_post"


@pytest.mark.parametrize(
    "form",
    [{}, {"client_id": "cv-abc"}, {"client_secret": "cvs_secret"}, {"grant_type": "x"}],
)
def test_no_credentials(form: dict[str, str]) -> None:
    with pytest.raises(InvalidClient) as info:
        read_credentials(form, None, REALM)

    assert info.value.basic is False
    assert info.value.status == 401
    assert info.value.headers() == {}


def test_credentials_repr_hides_secret() -> None:
    creds = read_credentials({}, basic("cv-abc", "cvs_topsecretvalue"), REALM)

    assert "cvs_topsecretvalue" not in repr(creds)
    assert "cvs_topsecretvalue" not in str(creds)


# authenticate ----------------------------------------------------------------------


@pytest.fixture
def secret() -> str:
    return generate_client_secret().reveal()


@pytest.fixture
def clients(secret: str) -> dict[str, ClientRecord]:
    current = ((HASHER.hash(secret), None),)
    return {
        "cv-good": record("cv-good", current),
        "cv-disabled": record("cv-disabled", current, refusal="client disabled"),
    }


def test_authenticates_with_current_secret(clients: dict[str, ClientRecord], secret: str) -> None:
    for method in ("client_secret_basic", "client_secret_post"):
        creds = Credentials("cv-good", secret, method)

        assert (
            authenticate(creds, clients.get(creds.client_id), HASHER, REALM) is clients["cv-good"]
        )


def _failure(creds: Credentials, clients: dict[str, ClientRecord]) -> InvalidClient:
    with pytest.raises(InvalidClient) as info:
        authenticate(creds, clients.get(creds.client_id), HASHER, REALM)
    return info.value


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_failures_look_the_same(clients: dict[str, ClientRecord], secret: str, method: str) -> None:
    unknown = _failure(Credentials("cv-nobody", secret, method), clients)
    wrong = _failure(Credentials("cv-good", secret + "x", method), clients)
    refused = _failure(Credentials("cv-disabled", secret, method), clients)

    assert unknown.body() == wrong.body() == refused.body()
    assert unknown.body()["error"] == "invalid_client"
    assert unknown.status == wrong.status == refused.status == 401
    assert unknown.headers() == wrong.headers() == refused.headers()
    expected = WWW_AUTHENTICATE if method == "client_secret_basic" else {}
    assert unknown.headers() == expected
    # the audit log learns what happened, and never the secret
    assert len({unknown.detail, wrong.detail, refused.detail}) == 3
    assert refused.detail == "client disabled"
    for error in (unknown, wrong, refused):
        assert secret not in str(error.body()) + error.detail + str(error)


def test_refused_client_needs_no_right_secret_to_be_refused(
    clients: dict[str, ClientRecord],
) -> None:
    error = _failure(Credentials("cv-disabled", "cvs_wrong", "client_secret_post"), clients)

    assert error.body()["error"] == "invalid_client"


def test_previous_secret_valid_until_its_expiry() -> None:
    current, previous = generate_client_secret().reveal(), generate_client_secret().reveal()
    now = time.time()
    in_grace = {
        "cv-r": record("cv-r", ((HASHER.hash(current), None), (HASHER.hash(previous), now + 3600)))
    }
    expired = {
        "cv-r": record("cv-r", ((HASHER.hash(current), None), (HASHER.hash(previous), now - 1)))
    }

    for clients in (in_grace, expired):
        creds = Credentials("cv-r", current, "client_secret_post")
        assert authenticate(creds, clients.get(creds.client_id), HASHER, REALM).client_id == "cv-r"

    creds = Credentials("cv-r", previous, "client_secret_post")
    assert authenticate(creds, in_grace.get(creds.client_id), HASHER, REALM).client_id == "cv-r"
    assert _failure(creds, expired).detail == "wrong secret"


def test_secret_hashed_with_another_pepper_is_refused(secret: str) -> None:
    other = SecretHasher(b"x" * 32)
    clients = {"cv-good": record("cv-good", ((other.hash(secret), None),))}

    _failure(Credentials("cv-good", secret, "client_secret_post"), clients)
