"""Which addresses webhooks may reach, and which URLs are refused outright."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from cardvault.webhooks.addresses import AddressPolicy, is_public, parse_networks, split_url
from cardvault.webhooks.errors import UrlNotAllowed


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",  # loopback
        "127.8.9.10",
        "::1",
        "10.0.0.1",  # private
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # link-local (cloud metadata)
        "fe80::1",
        "fd12:3456::1",  # unique-local
        "fec0::1",  # site-local
        "224.0.0.1",  # multicast
        "ff02::1",
        "0.0.0.0",  # unspecified  # noqa: S104
        "::",
        "240.0.0.1",  # reserved
        "100.64.0.1",  # shared address space (carrier-grade NAT)
        "192.0.2.10",  # documentation
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:10.0.0.1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_allowed_networks_open_exactly_themselves() -> None:
    policy = AddressPolicy(parse_networks("127.0.0.0/8, 10.1.0.0/16"))
    assert policy.permits(ipaddress.ip_address("127.0.0.1"))
    assert policy.permits(ipaddress.ip_address("10.1.200.3"))
    assert not policy.permits(ipaddress.ip_address("10.2.0.1"))
    assert not policy.permits(ipaddress.ip_address("::1"))


def test_bad_network_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        parse_networks("127.0.0.0/8,not-a-network")
    assert parse_networks("") == ()


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "gopher://example.com/",
        "http:///no-host",
        "http://user:pass@example.com/",
        "http://example.com:99999/",
        "//example.com/x",
        "http://" + "a" * 2100 + ".com/",
    ],
)
def test_urls_refused_before_any_lookup(url: str) -> None:
    with pytest.raises(UrlNotAllowed):
        split_url(url)


def test_split_url_defaults_the_port() -> None:
    assert split_url("https://example.com/hooks") == ("https", "example.com", 443)
    assert split_url("http://[2606:4700::1]:8080/") == ("http", "2606:4700::1", 8080)


def test_check_resolves_names_and_refuses_private_answers() -> None:
    policy = AddressPolicy()
    with pytest.raises(UrlNotAllowed, match="non-public"):
        asyncio.run(policy.check("http://localhost:8080/hooks"))
    with pytest.raises(UrlNotAllowed, match="non-public"):
        asyncio.run(policy.check("http://127.0.0.1/hooks"))
    with pytest.raises(UrlNotAllowed, match="cannot resolve"):
        asyncio.run(policy.check("http://no-such-host.invalid/hooks"))
    allowed = AddressPolicy(parse_networks("127.0.0.0/8,::1/128"))
    target = asyncio.run(allowed.check("http://localhost:8080/hooks"))
    assert target.port == 8080 and target.addresses
