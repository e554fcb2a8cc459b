"""Sender allow-list: which source addresses may feed the pipeline (pure, cached).

Built from ``ALERTIK_ALLOW_FROM`` (``IngestConfig.allow_from``): IPv4 and IPv6
addresses and CIDR ranges. An empty list allows every sender, as the C original
did. The check runs for every datagram and every TCP connection, so answers
are cached per address string in a dict that can never grow past CACHE_MAX.

Address forms accepted by ``allows``:

* plain IPv4 and IPv6 (``192.0.2.1``, ``2001:db8::1``);
* IPv4-mapped IPv6, as a dual-stack socket reports IPv4 peers
  (``::ffff:192.0.2.1`` is checked as ``192.0.2.1``);
* a zone/scope suffix (``fe80::1%eth0``): the zone is ignored, because a range
  in the list names addresses, not interfaces;
* square brackets (``[2001:db8::1]``).

Anything that is not an address is refused (when the list is not empty).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Distinct sender addresses remembered. Real deployments have a handful of
# routers; the cap only matters under a spoofed-source flood, where clearing
# the whole cache costs one rebuild per CACHE_MAX new addresses.
CACHE_MAX = 4096

# ::ffff:0:0/96, where IPv4 addresses live inside IPv6 (RFC 4291 2.5.5.2).
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _plain(text: str) -> str:
    """Strip brackets and a zone suffix from an address or range."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        close = text.index("]")
        text = text[1:close] + text[close + 1 :]
    if "%" in text:
        zone_start = text.index("%")
        slash = text.find("/", zone_start)
        text = text[:zone_start] + (text[slash:] if slash >= 0 else "")
    return text


def parse_network(item: str) -> IPNetwork:
    """One allow-list item as a network; IPv4-mapped IPv6 ranges become IPv4."""
    net = ipaddress.ip_network(_plain(item), strict=False)
    if (
        isinstance(net, ipaddress.IPv6Network)
        and net.prefixlen >= 96
        and net.subnet_of(_MAPPED)
    ):
        mapped = net.network_address.ipv4_mapped
        assert mapped is not None
        return ipaddress.IPv4Network((mapped, net.prefixlen - 96))
    return net


def parse_address(addr: str) -> IPAddress | None:
    """A sender address as an IP address (IPv4-mapped folded to IPv4), or None."""
    try:
        ip = ipaddress.ip_address(_plain(addr))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class AllowList:
    """Answers whether a sender address is allowed; empty means everyone is."""

    def __init__(self, items: Iterable[str] = ()) -> None:
        nets = [parse_network(item) for item in items]
        self._v4 = tuple(n for n in nets if isinstance(n, ipaddress.IPv4Network))
        self._v6 = tuple(n for n in nets if isinstance(n, ipaddress.IPv6Network))
        self.items = tuple(str(n) for n in nets)
        self._cache: dict[str, bool] = {}

    @property
    def open(self) -> bool:
        """True when the list is empty, so every sender is allowed."""
        return not self.items

    def allows(self, addr: str) -> bool:
        """True if addr may send; cached per address string."""
        if not self.items:
            return True
        known = self._cache.get(addr)
        if known is not None:
            return known
        answer = self._check(addr)
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[addr] = answer
        return answer

    __call__ = allows

    def _check(self, addr: str) -> bool:
        ip = parse_address(addr)
        if ip is None:
            return False
        if isinstance(ip, ipaddress.IPv4Address):
            return any(ip in net for net in self._v4)
        return any(ip in net for net in self._v6)

    def __repr__(self) -> str:
        return f"AllowList({self.items!r})"
