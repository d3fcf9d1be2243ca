"""Where webhooks may go: ``http``/``https`` URLs whose host resolves only to public
addresses, unless the operator allowed networks (``CARDVAULT_WEBHOOK_ALLOWED_NETWORKS``).

Checked when an endpoint is created and again before every delivery (DNS can change);
the delivery then connects to the address that was checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from cardvault.webhooks.errors import UrlNotAllowed

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_URL = 2048


def parse_networks(value: str) -> tuple[IpNetwork, ...]:
    """``"127.0.0.0/8, ::1"`` → networks; raises ValueError on a bad entry."""
    items = [item.strip() for item in value.split(",") if item.strip()]
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def is_public(address: IpAddress) -> bool:
    """False for loopback, link-local, private, unique-local, multicast, unspecified and
    reserved addresses (IPv4-mapped IPv6 addresses are judged as their IPv4 form)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
        or not address.is_global
    )


@dataclass(frozen=True)
class Target:
    """A checked URL: its parts and the addresses it may be reached at."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IpAddress, ...]


@dataclass(frozen=True)
class AddressPolicy:
    allowed: Sequence[IpNetwork] = ()

    def permits(self, address: IpAddress) -> bool:
        return is_public(address) or any(address in net for net in self.allowed)

    async def check(self, url: str) -> Target:
        """Resolve ``url``'s host; raises :class:`UrlNotAllowed` unless every address
        it resolves to is permitted."""
        scheme, host, port = split_url(url)
        addresses = await _resolve(host, port)
        refused = [a for a in addresses if not self.permits(a)]
        if refused:
            raise UrlNotAllowed(f"url: {host} resolves to a non-public address")
        return Target(url, scheme, host, port, addresses)


def split_url(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of an absolute ``http``/``https`` URL without credentials."""
    if len(url) > MAX_URL:
        raise UrlNotAllowed(f"url: longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlNotAllowed("url: not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise UrlNotAllowed("url: only http and https URLs are allowed")
    if not parts.hostname or parts.username or parts.password:
        raise UrlNotAllowed("url: needs a host and no user information")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def _resolve(host: str, port: int) -> tuple[IpAddress, ...]:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return (literal,)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UrlNotAllowed(f"url: cannot resolve {host}") from None
    found = {ipaddress.ip_address(info[4][0]) for info in infos}
    if not found:
        raise UrlNotAllowed(f"url: cannot resolve {host}")
    return tuple(sorted(found, key=str))
