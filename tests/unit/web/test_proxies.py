"""The caller's address behind trusted proxies: believed only as far as they go."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardvault.settings import parse_networks
from cardvault.web.proxies import MAX_HOPS, caller_address

BALANCER = "10.0.0.5"
TRUSTED = parse_networks("10.0.0.0/8, ::1/128")


def _headers(**fields: str) -> list[tuple[bytes, bytes]]:
    return [(name.replace("_", "-").encode(), value.encode()) for name, value in fields.items()]


@pytest.mark.parametrize(
    ("peer", "headers", "caller"),
    [
        # A trusted balancer names the caller.
        (BALANCER, _headers(x_forwarded_for="203.0.113.7"), "203.0.113.7"),
        # Two trusted hops: the first address that is not a proxy.
        (BALANCER, _headers(x_forwarded_for="198.51.100.1, 10.9.9.9"), "198.51.100.1"),
        # A client that sends the header itself cannot pose as another: the balancer
        # appended the address it saw, and that is the caller.
        (BALANCER, _headers(x_forwarded_for="1.2.3.4, 198.51.100.1"), "198.51.100.1"),
        # Not from a trusted proxy: the header is anyone's, so it is ignored.
        ("198.51.100.9", _headers(x_forwarded_for="203.0.113.7"), "198.51.100.9"),
        # No header: the proxy itself.
        (BALANCER, [], BALANCER),
        # RFC 7239, with ports, quotes, IPv6 and several elements.
        (BALANCER, _headers(forwarded='for="[2001:db8::1]:4711";proto=https'), "2001:db8::1"),
        (BALANCER, _headers(forwarded="for=192.0.2.60:8080, for=10.1.1.1"), "192.0.2.60"),
        # Forwarded wins over X-Forwarded-For when a proxy sends both.
        (
            BALANCER,
            _headers(forwarded="for=192.0.2.60", x_forwarded_for="203.0.113.7"),
            "192.0.2.60",
        ),
        # What is not an address stops the walk at the proxy that wrote it.
        (BALANCER, _headers(forwarded="for=_hidden"), BALANCER),
        (BALANCER, _headers(x_forwarded_for="unknown"), BALANCER),
        (BALANCER, _headers(x_forwarded_for="203.0.113.7, not-an-ip"), BALANCER),
        # An IPv6 loopback proxy, and an IPv4-mapped peer.
        ("::1", _headers(x_forwarded_for="203.0.113.7"), "203.0.113.7"),
        ("::ffff:10.0.0.5", _headers(x_forwarded_for="203.0.113.7"), "203.0.113.7"),
    ],
)
def test_the_caller_is_the_first_address_that_is_not_a_trusted_proxy(
    peer: str, headers: list[tuple[bytes, bytes]], caller: str
) -> None:
    assert caller_address(peer, headers, TRUSTED) == caller


def test_nobody_is_trusted_by_default() -> None:
    headers = _headers(x_forwarded_for="203.0.113.7")
    assert caller_address(BALANCER, headers, parse_networks("")) == BALANCER


def test_a_long_chain_of_trusted_hops_is_read_only_so_far() -> None:
    hops = ["203.0.113.7", *[f"10.0.0.{n}" for n in range(MAX_HOPS + 5)]]
    headers = _headers(x_forwarded_for=", ".join(hops))
    # The walk stops after MAX_HOPS addresses, at a proxy: never further left.
    assert caller_address(BALANCER, headers, TRUSTED) == hops[-MAX_HOPS]


@given(
    peer=st.one_of(st.ip_addresses().map(str), st.text(max_size=40)),
    values=st.lists(st.binary(max_size=200), max_size=4),
    names=st.lists(st.sampled_from([b"forwarded", b"x-forwarded-for", b"x-other"]), max_size=4),
)
def test_any_header_gives_an_address_and_never_an_error(
    peer: str, values: list[bytes], names: list[bytes]
) -> None:
    headers = list(zip(names, values, strict=False))
    caller = caller_address(peer, headers, TRUSTED)
    if caller != peer:  # only ever an address a trusted hop vouched for
        ipaddress.ip_address(caller)
