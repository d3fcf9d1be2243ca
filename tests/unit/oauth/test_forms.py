"""Reading application/x-www-form-urlencoded bodies (RFC 6749 Appendix B)."""

from __future__ import annotations

import pytest

from cardvault.oauth.errors import InvalidRequest
from cardvault.oauth.forms import parse_form

FORM = "application/x-www-form-urlencoded"


def test_parses_parameters() -> None:
    body = b"grant_type=client_credentials&scope=cards%3Aread&client_id=cv-abc"

    assert parse_form(FORM, body) == {
        "grant_type": "client_credentials",
        "scope": "cards:read",
        "client_id": "cv-abc",
    }


def test_empty_body_is_an_empty_form() -> None:
    assert parse_form(FORM, b"") == {}


def test_blank_values_are_kept() -> None:
    assert parse_form(FORM, b"scope=&grant_type=client_credentials") == {
        "scope": "",
        "grant_type": "client_credentials",
    }


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded; charset=UTF-8",
        "application/x-www-form-urlencoded;charset=utf-8",
        "Application/X-WWW-Form-Urlencoded",
        " application/x-www-form-urlencoded ",
    ],
)
def test_content_type_variants_accepted(content_type: str) -> None:
    assert parse_form(content_type, b"a=1") == {"a": "1"}


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "multipart/form-data; boundary=x",
        "text/plain",
        "application/x-www-form-urlencoded-extra",
    ],
)
def test_other_content_types_refused(content_type: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_form(content_type, b"a=1")

    assert info.value.body()["error"] == "invalid_request"
    assert FORM in info.value.description


def test_repeated_parameter_is_refused_by_name() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_form(FORM, b"scope=cards%3Aread&grant_type=client_credentials&scope=cards%3Awrite")

    assert "scope" in info.value.description
    assert info.value.body() == {
        "error": "invalid_request",
        "error_description": info.value.description,
    }


def test_repeated_parameter_with_same_value_is_refused() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_form(FORM, b"client_id=cv-a&client_id=cv-a")

    assert "client_id" in info.value.description


@pytest.mark.parametrize("body", [b"client_secret=\xff\xfe", b"a=\xc3", b"\xe2\x82=1"])
def test_invalid_utf8_bytes_are_refused(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_form(FORM, body)


def test_percent_encoded_invalid_utf8_is_refused() -> None:
    # Percent-encoded bytes must decode strictly: no silent U+FFFD substitution.
    with pytest.raises(InvalidRequest):
        parse_form(FORM, b"client_id=cv-a&client_secret=%FF%FE")


@pytest.mark.parametrize("body", [b"a=1&&b=2", b"a=1&b", b"&", b"novalue"])
def test_malformed_pairs_are_refused(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_form(FORM, body)


def test_plus_and_percent_decoding() -> None:
    form = parse_form(FORM, b"a=one+two&b=one%20two&c=1%2B1&d=%C3%A9t%C3%A9&e%5Bx%5D=%26%3D")

    assert form == {"a": "one two", "b": "one two", "c": "1+1", "d": "été", "e[x]": "&="}


def test_utf8_in_raw_bytes() -> None:
    assert parse_form(FORM, "name=café".encode()) == {"name": "café"}
