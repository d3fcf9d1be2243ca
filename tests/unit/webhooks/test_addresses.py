"""Which addresses webhooks may reach, and which URLs are refused outright."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cardvault.webhooks.addresses import (
    AddressPolicy,
    embedded_ipv4,
    is_public,
    split_url,
)
from cardvault.webhooks.errors import UrlNotAllowed


def networks(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


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
    policy = AddressPolicy(networks("127.0.0.0/8", "10.1.0.0/16"))
    assert policy.permits(ipaddress.ip_address("127.0.0.1"))
    assert policy.permits(ipaddress.ip_address("10.1.200.3"))
    assert not policy.permits(ipaddress.ip_address("10.2.0.1"))
    assert not policy.permits(ipaddress.ip_address("::1"))


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
    allowed = AddressPolicy(networks("127.0.0.0/8", "::1/128"))
    target = asyncio.run(allowed.check("http://localhost:8080/hooks"))
    assert target.port == 8080 and target.addresses


# --- IPv6 forms that carry an IPv4 address, and other spellings of a host ------------

NON_PUBLIC_V4 = [
    ipaddress.IPv4Network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "0.0.0.0/8",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]


@st.composite
def non_public_v4(draw: st.DrawFn) -> ipaddress.IPv4Address:
    network = draw(st.sampled_from(NON_PUBLIC_V4))
    offset = draw(st.integers(0, network.num_addresses - 1))
    return network[offset]


@st.composite
def public_v4(draw: st.DrawFn) -> ipaddress.IPv4Address:
    low, high = int(ipaddress.IPv4Address("1.0.0.0")), int(ipaddress.IPv4Address("223.255.255.255"))
    address = ipaddress.IPv4Address(draw(st.integers(low, high)))
    assume(address.is_global and not address.is_multicast and not address.is_reserved)
    return address


def mapped(v4: ipaddress.IPv4Address, _rest: int) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(0xFFFF_0000_0000 | int(v4))


def compatible(v4: ipaddress.IPv4Address, _rest: int) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(int(v4))


def sixtofour(v4: ipaddress.IPv4Address, rest: int) -> ipaddress.IPv6Address:
    """2002:V4ADDR::/48 followed by any subnet and interface id."""
    return ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80) | (rest & (2**80 - 1)))


def nat64(v4: ipaddress.IPv4Address, _rest: int) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address((0x0064_FF9B << 96) | int(v4))


def nat64_local(v4: ipaddress.IPv4Address, rest: int) -> ipaddress.IPv6Address:
    """64:ff9b:1::/48 used with a /96 prefix, as DNS64 deployments do."""
    return ipaddress.IPv6Address((0x0064_FF9B_0001 << 80) | ((rest & (2**48 - 1)) << 32) | int(v4))


def teredo_client(v4: ipaddress.IPv4Address, rest: int) -> ipaddress.IPv6Address:
    """2001:0:SERVER:FLAGS:PORT:CLIENT, the client address obfuscated (XOR all ones)."""
    server = int(ipaddress.IPv4Address("65.54.227.120"))
    low = (rest & (2**32 - 1)) << 32  # flags and port
    return ipaddress.IPv6Address(
        (0x2001_0000 << 96) | (server << 64) | low | (int(v4) ^ 0xFFFF_FFFF)
    )


def teredo_server(v4: ipaddress.IPv4Address, rest: int) -> ipaddress.IPv6Address:
    client = int(ipaddress.IPv4Address("8.8.8.8")) ^ 0xFFFF_FFFF
    return ipaddress.IPv6Address((0x2001_0000 << 96) | (int(v4) << 64) | client)


CARRIERS = [mapped, compatible, sixtofour, nat64, nat64_local, teredo_client, teredo_server]


@given(v4=non_public_v4(), form=st.sampled_from(CARRIERS), rest=st.integers(0, 2**80 - 1))
def test_every_non_public_ipv4_is_refused_in_every_ipv6_form(
    v4: ipaddress.IPv4Address, form: Callable[..., ipaddress.IPv6Address], rest: int
) -> None:
    address = form(v4, rest)
    assert v4 in embedded_ipv4(address)
    assert not is_public(address)
    assert not AddressPolicy().permits(address)
    with pytest.raises(UrlNotAllowed, match="non-public"):
        asyncio.run(AddressPolicy().check(f"https://[{address}]/hooks"))


@given(v4=public_v4(), form=st.sampled_from([mapped, sixtofour, nat64]), rest=st.integers(0))
def test_public_ipv4_in_a_routable_ipv6_form_is_accepted(
    v4: ipaddress.IPv4Address, form: Callable[..., ipaddress.IPv6Address], rest: int
) -> None:
    assert is_public(v4)
    assert is_public(form(v4, rest))


@given(v4=public_v4())
def test_random_public_ipv4_urls_are_accepted(v4: ipaddress.IPv4Address) -> None:
    target = asyncio.run(AddressPolicy().check(f"https://{v4}:8443/hooks"))
    assert target.addresses == (v4,) and target.port == 8443


@pytest.mark.parametrize(
    ("address", "carried"),
    [
        ("2002:7f00:1::", "127.0.0.1"),  # 6to4
        ("2002:a00:1:1::1", "10.0.0.1"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),  # Teredo client
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),  # NAT64, cloud metadata
        ("64:ff9b:1::c0a8:101", "192.168.1.1"),
        ("::127.0.0.1", "127.0.0.1"),  # IPv4-compatible
        ("::ffff:10.1.2.3", "10.1.2.3"),
    ],
)
def test_known_carriers_decode_and_are_refused(address: str, carried: str) -> None:
    ip = ipaddress.IPv6Address(address)
    assert ipaddress.IPv4Address(carried) in embedded_ipv4(ip)
    assert not is_public(ip)


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://0x7f000001/",
        "http://0x7f.1/",
        "http://0177.0.0.1/",  # octal
        "http://127.1/",  # short form
        "http://127.0.0.1./",
        "http://0/",
        "http://1.2.3.4.5/",
        "http://[fe80::1%25eth0]/",  # zone id
        "http://[::ffff:8.8.8.8%25lo]/",
        "http://public.example@127.0.0.1/",  # user information
        "http://@127.0.0.1/",
        "http://public.example:x@127.0.0.1/",
        "http://127.0.0.1\\@public.example/",
        "http://public.example\\.127.0.0.1/",
        "http://pub lic.example/",
        "http://public.example\t/",
        "http://exa_mple..com/",
        "http://-bad-.example/",
    ],
)
def test_other_spellings_of_hosts_are_refused_before_any_lookup(url: str) -> None:
    with pytest.raises(UrlNotAllowed):
        split_url(url)


def test_canonical_hosts_pass_and_names_are_lowercased() -> None:
    assert split_url("https://Hooks.Example.COM/x")[1] == "hooks.example.com"
    assert split_url("https://8.8.8.8/x")[1] == "8.8.8.8"
    assert split_url("https://[2606:4700:0:0::1111]/")[1] == "2606:4700::1111"
    assert split_url("https://bücher.example/")[1] == "xn--bcher-kva.example"


def test_a_name_resolving_to_loopback_is_refused() -> None:
    for url in ("https://localhost/hooks", "https://LOCALHOST./hooks", "http://ip6-localhost/"):
        with pytest.raises(UrlNotAllowed):
            asyncio.run(AddressPolicy().check(url))
