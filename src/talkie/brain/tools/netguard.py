"""The SSRF guard: which addresses a server-side webhook call may connect to.

Used by ``WebhookCaller`` (see ``webhook.py``), kept apart so the policy reads in one place.
Everything works on parsed addresses, never on strings, so "0x7f.1", "2130706433",
"::ffff:127.0.0.1" and "127.0.0.1" are the same thing here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from talkie.errors import InvalidInputError

__all__ = [
    "IPAddress",
    "NetworkPolicy",
    "Resolver",
    "classify_address",
    "is_loopback_name",
    "parse_host",
    "system_resolve",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``await resolve(host, port)`` -> the host's IP addresses as text (all A and AAAA records).
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Address ranges refused by default, with the reason given. Checked before the generic
# ``is_global`` fallback so that refusals name what the address is.
_BLOCKED: tuple[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network], ...] = tuple(
    (label, ipaddress.ip_network(net))
    for label, net in (
        ("cloud metadata", "169.254.169.254/32"),
        ("cloud metadata", "100.100.100.200/32"),  # Alibaba Cloud
        ("cloud metadata", "fd00:ec2::254/128"),  # AWS over IPv6
        ("unspecified", "0.0.0.0/8"),
        ("loopback", "127.0.0.0/8"),
        ("private", "10.0.0.0/8"),
        ("private", "172.16.0.0/12"),
        ("private", "192.168.0.0/16"),
        ("link-local", "169.254.0.0/16"),
        ("shared (CGNAT)", "100.64.0.0/10"),
        ("multicast", "224.0.0.0/4"),
        ("reserved", "240.0.0.0/4"),  # includes the broadcast address
        ("reserved", "192.0.0.0/24"),
        ("reserved", "192.0.2.0/24"),
        ("reserved", "198.18.0.0/15"),
        ("reserved", "198.51.100.0/24"),
        ("reserved", "203.0.113.0/24"),
        ("unspecified", "::/128"),
        ("loopback", "::1/128"),
        ("private", "fc00::/7"),
        ("link-local", "fe80::/10"),
        ("private", "fec0::/10"),  # deprecated site-local
        ("multicast", "ff00::/8"),
        ("reserved", "2001:db8::/32"),
        ("reserved", "100::/64"),
        ("reserved", "::/8"),  # includes the deprecated IPv4-compatible ::a.b.c.d
    )
)
# What ``allow_private_networks`` unlocks. Metadata, unspecified, multicast and reserved stay
# refused: a deployment that needs them lists the exact network in ``allowed_networks``.
_PRIVATE_KINDS = frozenset({"loopback", "private", "link-local", "shared (CGNAT)"})
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# Names every resolver maps to loopback (RFC 6761): answered here, not asked of DNS.
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_INSIDE = " (inside an IPv6 address)"


@dataclass(frozen=True, kw_only=True)
class NetworkPolicy:
    """What a deployment allows beyond the public internet (nothing, by default)."""

    #: Allow loopback, RFC 1918/ULA private, link-local and CGNAT addresses (an on-premises
    #: deployment calling its own services). Metadata/multicast/reserved stay refused.
    allow_private_networks: bool = False
    #: CIDRs always allowed, whatever they are (``"10.1.2.0/24"``, ``"127.0.0.1/32"``).
    allowed_networks: tuple[str, ...] = ()
    #: Host names trusted to resolve anywhere (``"crm.internal"``, ``"*.corp.example"``).
    #: Their addresses are still resolved once and pinned.
    allowed_hosts: tuple[str, ...] = ()
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        # Parse once, and fail at start-up (not at the first call) on a typo'd CIDR.
        try:
            nets = tuple(
                ipaddress.ip_network(n.strip(), strict=False) for n in self.allowed_networks
            )
        except ValueError as exc:
            raise InvalidInputError(f"webhook allowed_networks: {exc}") from None
        object.__setattr__(self, "_networks", nets)

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` is refused (``None``: allowed), e.g. ``"loopback"``."""
        embedded = _embedded_ipv4(address)
        for net in self._networks:
            if address in net or (embedded is not None and embedded in net):
                return None
        kind = classify_address(address)
        if kind is None:
            return None
        if self.allow_private_networks and kind.removesuffix(_INSIDE) in _PRIVATE_KINDS:
            return None
        return kind

    def trusts_host(self, host: str) -> bool:
        """Whether ``host`` (a normalised name) is in ``allowed_hosts``."""
        for entry in self.allowed_hosts:
            entry = entry.strip().lower().rstrip(".")
            if entry.startswith("*."):
                if host.endswith(entry[1:]):
                    return True
            elif host == entry:
                return True
        return False


def is_loopback_name(host: str) -> bool:
    """``localhost`` and friends: answered as loopback here, never asked of DNS."""
    return host in _LOOPBACK_NAMES or host.endswith(".localhost")


async def system_resolve(host: str, port: int) -> list[str]:
    """All addresses of ``host`` (A and AAAA) from the system resolver, off the event loop."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_host(host: str) -> tuple[str, IPAddress | None]:
    """Normalise a URL host: ``(name, address)``. ``address`` is set when the host is an IP
    literal in any form a resolver would accept (IPv6, dotted, or the inet_aton shorthand:
    decimal ``2130706433``, hex ``0x7f.1``, octal ``017700000001``), so that none of them
    reaches DNS. Raises ``ValueError`` for a malformed host (a numeric-looking one that does not
    parse: browsers refuse those too)."""
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if not name:
        raise ValueError("empty host")
    if ":" in name:
        if "%" in name:
            raise ValueError("IPv6 zone identifiers are not allowed")
        return name, ipaddress.IPv6Address(name)
    labels = name.split(".")
    if not _NUMERIC_LABEL.match(labels[-1]):
        return name, None
    # The last label is a number: this is an IPv4 address or nothing (WHATWG URL rules).
    if len(labels) > 4:
        raise ValueError("malformed numeric address")
    numbers = [_ipv4_number(label) for label in labels]
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError("malformed numeric address")
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n << (8 * (3 - i))
    return name, ipaddress.IPv4Address(value)


def _ipv4_number(label: str) -> int:
    if label.startswith("0x"):
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8)  # ValueError for 8 or 9, as inet_aton refuses them
    if not label.isdigit():
        raise ValueError("malformed numeric address")
    return int(label)


def classify_address(address: IPAddress) -> str | None:
    """What kind of non-public address this is (``"loopback"``, ``"private"``, ``"cloud
    metadata"``, ``"loopback (inside an IPv6 address)"``...), or ``None`` for a public one."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        inner = classify_address(embedded)
        if inner is not None:
            return inner + _INSIDE
        return None
    for label, net in _BLOCKED:
        if address.version == net.version and address in net:
            return label
    # Anything else IANA does not call globally reachable (new special ranges, Teredo...).
    return None if address.is_global else "reserved"


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped ::ffff:a.b.c.d, NAT64, 6to4)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
