"""The caller's address behind load balancers and reverse proxies.

A request that arrives from a trusted proxy (``CARDVAULT_TRUSTED_PROXIES``) carries
the address of whoever the proxy talked to in ``Forwarded`` (RFC 7239) or
``X-Forwarded-For``. The chain is read from the right, the end the proxies wrote:
each address is believed only while the hop that wrote it is itself trusted, so a
client cannot pose as another by sending the header itself. The first address that
is not a trusted proxy is the caller; the throttles, the audit log and the metrics'
network check all see it, because the HTTP layer puts it in the request's scope once,
before any of them runs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from cardvault.settings import IpNetwork, in_networks

__all__ = ["MAX_HOPS", "caller_address"]

MAX_HOPS = 16  # addresses read from a chain; a longer one is cut at the left


def caller_address(
    peer: str, headers: Sequence[tuple[bytes, bytes]], trusted: Sequence[IpNetwork]
) -> str:
    """The caller's address: ``peer`` (the socket's), or the address the trusted
    proxies in front of it forwarded."""
    if not in_networks(peer, trusted):
        return peer
    chain = _forwarded_chain(headers)
    caller = peer
    for hop in reversed(chain[-MAX_HOPS:]):
        address = _address(hop)
        if address is None:  # not an address (obfuscated, "unknown", garbage): stop
            break
        caller = address
        if not in_networks(address, trusted):
            break
    return caller


def _forwarded_chain(headers: Sequence[tuple[bytes, bytes]]) -> list[str]:
    """The addresses of ``Forwarded``'s ``for=`` (if the proxies sent it), else of
    ``X-Forwarded-For``, left to right; several header lines are one list."""
    forwarded: list[str] = []
    x_forwarded: list[str] = []
    for name, value in headers:
        if name == b"forwarded":
            forwarded.extend(_for_of(value.decode("latin-1")))
        elif name == b"x-forwarded-for":
            x_forwarded.extend(part.strip() for part in value.decode("latin-1").split(","))
    return forwarded or x_forwarded


def _for_of(value: str) -> list[str]:
    found = []
    for element in value.split(","):
        for pair in element.split(";"):
            name, _, node = pair.strip().partition("=")
            if name.strip().lower() == "for":
                found.append(node.strip().strip('"'))
    return found


def _address(node: str) -> str | None:
    """The IP address of a node (``192.0.2.1``, ``192.0.2.1:4711``, ``[2001:db8::1]``
    or ``[2001:db8::1]:4711``), None if it is none."""
    if node.startswith("["):
        node = node[1 : node.find("]")] if "]" in node else ""
    elif node.count(":") == 1:
        node = node.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(node))
    except ValueError:
        return None
