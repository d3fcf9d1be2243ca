"""Where webhooks may go: ``http``/``https`` URLs whose host resolves only to public
addresses, unless the operator allowed networks (``CARDVAULT_WEBHOOK_ALLOWED_NETWORKS``).

Checked when an endpoint is created and again before every delivery (DNS can change);
the delivery then connects to the address that was checked and follows no redirect.

An IPv6 address that carries an IPv4 address (IPv4-mapped and -compatible, 6to4,
Teredo, NAT64) is judged by the IPv4 address it carries: ``2002:7f00:1::`` reaches
127.0.0.1 through any 6to4 relay. Host names are taken only in one spelling: IPv4 as
four decimal numbers (``http://2130706433/``, ``http://0x7f.1/`` and ``http://127.1/``
are all 127.0.0.1 to a resolver, and are refused), IPv6 without a zone id, names as
DNS labels, and no user information before the host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from cardvault.webhooks.errors import UrlNotAllowed

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_URL = 2048

# RFC 6052 NAT64 prefixes (the well-known one and RFC 8215's local-use one) and the
# deprecated IPv4-compatible form (RFC 4291 §2.5.5.1): the IPv4 address is the low 32 bits.
_LOW_32_BITS = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("::/96"),
)
# Forms whose own IPv6 prefix says nothing about where packets go: judged by what they carry.
_TRANSLATED = (ipaddress.IPv6Network("64:ff9b::/96"),)
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)
_DNS_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address carries: IPv4-mapped, 6to4 (RFC 3056),
    Teredo server and (de-obfuscated) client (RFC 4380), NAT64 (RFC 6052, RFC 8215) and
    IPv4-compatible; empty for any other address."""
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:
        return address.teredo
    if any(address in network for network in _LOW_32_BITS):
        return (ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF),)
    return ()


def _plainly_public(address: IpAddress) -> bool:
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


def is_public(address: IpAddress) -> bool:
    """False for loopback, link-local, private, unique-local, multicast, unspecified and
    reserved addresses, for an IPv6 address with a zone id, and for an IPv6 address
    carrying a non-public IPv4 address. IPv4-mapped, 6to4 and well-known NAT64
    addresses are public when the IPv4 address they carry is."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        carried = embedded_ipv4(address)
        if not all(_plainly_public(v4) for v4 in carried):
            return False
        if carried and (
            address.ipv4_mapped is not None
            or address.sixtofour is not None
            or any(address in network for network in _TRANSLATED)
        ):
            return True
    return _plainly_public(address)


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
        if is_public(address):
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in net for net in self.allowed)

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
    """Scheme, host and port of an absolute ``http``/``https`` URL without credentials;
    the host is an IP address literal or an ASCII DNS name."""
    if len(url) > MAX_URL:
        raise UrlNotAllowed(f"url: longer than {MAX_URL} characters")
    if _FORBIDDEN.search(url):
        raise UrlNotAllowed("url: no spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlNotAllowed("url: not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise UrlNotAllowed("url: only http and https URLs are allowed")
    if not parts.hostname or "@" in parts.netloc:
        raise UrlNotAllowed("url: needs a host and no user information")
    host = _canonical_host(parts.hostname, bracketed="[" in parts.netloc)
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def _canonical_host(host: str, *, bracketed: bool) -> str:
    if bracketed:
        if "%" in host:
            raise UrlNotAllowed("url: IPv6 zone ids are not allowed")
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise UrlNotAllowed("url: not a valid IPv6 address") from None
    try:
        name = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UrlNotAllowed("url: not a valid host name") from None
    labels = name.removesuffix(".").split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):  # WHATWG URL: then the host is IPv4
        try:
            return str(ipaddress.IPv4Address(name))
        except ValueError:
            raise UrlNotAllowed(
                "url: write an IPv4 address as four decimal numbers (a.b.c.d)"
            ) from None
    if len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise UrlNotAllowed("url: not a valid host name")
    return name


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
