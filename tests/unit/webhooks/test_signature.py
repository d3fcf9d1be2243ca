"""cardvault.webhooks.verify: what a merchant's receiver relies on."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys

import pytest

from cardvault.webhooks import InvalidSignature, signature_header, verify

BODY = b'{"id":"evt_1","event":"network_token.activated"}'
SECRET = "cvwh_test-secret"
NOW = 1_800_000_000


def test_a_signed_body_verifies_and_returns_its_timestamp() -> None:
    header = signature_header(BODY, [SECRET], NOW)
    assert verify(BODY, header, SECRET, now=NOW + 30) == NOW
    assert verify(BODY.decode(), header, SECRET.encode(), now=NOW) == NOW


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature_header(BODY, [SECRET], NOW) == f"t={NOW},v0={expected}"


@pytest.mark.parametrize(
    ("body", "secret", "now"),
    [
        (BODY.replace(b"activated", b"suspended"), SECRET, NOW),  # tampered body
        (BODY, "cvwh_other", NOW),  # wrong secret
        (BODY, SECRET, NOW + 61),  # too old
        (BODY, SECRET, NOW - 61),  # from the future
    ],
)
def test_refused(body: bytes, secret: str, now: int) -> None:
    header = signature_header(BODY, [SECRET], NOW)
    with pytest.raises(InvalidSignature):
        verify(body, header, secret, now=now)


def test_tolerance_is_configurable() -> None:
    header = signature_header(BODY, [SECRET], NOW)
    assert verify(BODY, header, SECRET, tolerance=600, now=NOW + 300) == NOW


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"v0={'0' * 64}",  # no timestamp
        f"t={NOW}",  # no signature
        f"t=soon,v0={'0' * 64}",
        f"t={NOW},t={NOW},v0={'0' * 64}",
    ],
)
def test_malformed_headers_are_refused(header: str | None) -> None:
    with pytest.raises(InvalidSignature):
        verify(BODY, header, SECRET, now=NOW)


def test_any_of_several_v0_values_may_match() -> None:
    header = signature_header(BODY, ["cvwh_new", SECRET], NOW)
    assert header.count("v0=") == 2
    assert verify(BODY, header, SECRET, now=NOW) == NOW
    assert verify(BODY, header, "cvwh_new", now=NOW) == NOW
    with pytest.raises(InvalidSignature):
        verify(BODY, header, "cvwh_neither", now=NOW)
    unknown_schemes = f"t={NOW},v1=abc,{header.split(',', 1)[1]}"
    assert verify(BODY, unknown_schemes, SECRET, now=NOW) == NOW


def test_verify_imports_nothing_of_the_server() -> None:
    code = (
        "import sys; from cardvault.webhooks import verify; "
        "heavy = [m for m in ('sqlalchemy', 'fastapi', 'cryptography', 'httpx') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
