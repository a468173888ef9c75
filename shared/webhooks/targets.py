"""Which addresses a webhook may reach (the spec checks its URL's form: ``shared.models.webhooks``).

A multi-tenant service must not let one tenant make its workers POST into the network they
run in (cloud metadata endpoints, Redis, internal services). Unless ``WEBHOOK_ALLOW_PRIVATE``
is set, only public unicast addresses are allowed: a URL whose host is a literal address (or
``localhost``) is refused at submission, and every other host is resolved at delivery time,
refused if any of its addresses is not public, and then reached at the address that was
checked, so a second DNS answer cannot point the request elsewhere.
"""

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]+|[0-9]+)(?:\.(?:0x[0-9a-f]+|[0-9]+)){0,3}")
"""A host made of one to four numbers, decimal, octal or hex: what ``inet_aton`` reads as IPv4.
A plain dotted quad is read by ``ipaddress`` first, and judged as an address."""


class TargetRefused(Exception):
    """A webhook URL whose host is not allowed, or (``transient``) cannot be resolved now."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


NAT64 = ipaddress.ip_network("64:ff9b::/96")
"""The well-known NAT64 prefix: its addresses reach the IPv4 address in their last 32 bits."""
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries and reaches: IPv4-mapped (``::ffff:a.b.c.d``), NAT64
    (``64:ff9b::a.b.c.d``), 6to4 (``2002:aabb:ccdd::``) or IPv4-compatible (``::a.b.c.d``)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64 or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a public unicast address; an IPv6 address that carries an IPv4 one
    is judged by the IPv4 address too."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = embedded_ipv4(address)
        if carried is not None and not is_public(carried):
            return False
    return address.is_global and not address.is_multicast


def literal_address(host: str) -> IPAddress | None:
    """The host as an IP address, when it is written as one."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def submission_refusal(url: str, allow_private: bool) -> str | None:
    """Why a submitted URL's host is refused before any DNS lookup, or None when it is not."""
    if allow_private:
        return None
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return "the URL names this machine; only public hosts are allowed (WEBHOOK_ALLOW_PRIVATE)"
    address = literal_address(host)
    if address is None and NUMERIC_HOST.fullmatch(host):
        # 2130706433, 0x7f000001, 127.1, 0177.0.0.1: read by the resolver as IPv4 addresses.
        return f"{host} is an address in a numeric form; write it as a dotted IPv4 address or a name"
    if address is not None and not is_public(address):
        return f"{address} is not a public address; only public hosts are allowed (WEBHOOK_ALLOW_PRIVATE)"
    return None


@dataclass(frozen=True)
class Target:
    """A URL pinned to one checked address: where to connect, and the names the server expects."""

    connect_url: str
    host_header: str
    server_name: str


def resolve_target(url: str, allow_private: bool) -> Target:
    """Resolve the URL's host, check every address, and pin the first; ``TargetRefused`` if not allowed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = _addresses(host, port)
    refused = [a for a in addresses if not is_public(a)]
    if refused and not allow_private:
        raise TargetRefused(f"{host} resolves to {refused[0]}, which is not a public address")
    return Target(_with_host(parts, addresses[0], port), parts.netloc, host)


def _addresses(host: str, port: int) -> list[IPAddress]:
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused(f"cannot resolve {host}: {exc}", transient=True) from None
    # Scope ids (fe80::1%eth0) are dropped: such addresses are link-local, refused or allowed alike.
    found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not found:
        raise TargetRefused(f"{host} has no address", transient=True)
    return found


def _with_host(parts: SplitResult, address: IPAddress, port: int) -> str:
    netloc = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
    return parts._replace(netloc=netloc, fragment="").geturl()
