"""Which addresses a webhook may reach (the spec checks its URL's form: ``shared.models.webhooks``).

A multi-tenant service must not let one tenant make its workers POST into the network they
run in (cloud metadata endpoints, Redis, internal services). Unless ``WEBHOOK_ALLOW_PRIVATE``
is set, only public unicast addresses are allowed: a URL whose host is a literal address (or
``localhost``) is refused at submission, and every other host is resolved at delivery time,
refused if any of its addresses is not public, and then reached at the address that was
checked, so a second DNS answer cannot point the request elsewhere.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """A webhook URL whose host is not allowed, or (``transient``) cannot be resolved now."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a public unicast address (an IPv4-mapped one judged as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
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
