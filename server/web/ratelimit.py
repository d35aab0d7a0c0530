"""Request rate limits per client address, kept in memory only: nothing
about a client is logged or stored, and the table forgets the least
recently seen address once it is full.

The client address is the TCP peer, unless the peer is a trusted proxy
(the front server, loopback by default): then it is the last address in
``X-Forwarded-For`` that is not itself a trusted proxy (RFC 7239 §5.2 for
the forwarded chain, here in its de facto header), or ``X-Real-IP``.
IPv6 clients are counted per /64, the block one host usually holds.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from typing import Iterable, Mapping

from labelcheck.pipeline.config import ConfigError

IPV6_PREFIX = 64


class ClientRateLimiter:
    """A token bucket (``rate`` per second, ``burst``) per client address,
    for at most ``capacity`` addresses at once. ``rate`` 0 turns it off."""

    def __init__(self, rate: float, burst: int, *, trusted_proxies: Iterable[str] = ("127.0.0.1", "::1"),
                 capacity: int = 16384) -> None:
        self.rate, self.burst, self.capacity = rate, max(1, burst), max(1, capacity)
        self.trusted = parse_networks(trusted_proxies)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, peer: str | None, headers: Mapping[str, str]) -> float:
        """0 when the client may go on (a token was taken), else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        key = client_key(self.client(peer, headers))
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self._buckets[key] = (tokens - 1 if tokens >= 1 else tokens, now)
            while len(self._buckets) > self.capacity:
                self._buckets.popitem(last=False)
        return wait

    def client(self, peer: str | None, headers: Mapping[str, str]) -> str:
        """The client's address: the peer's, or the one a trusted proxy forwarded."""
        ip = _ip(peer)
        if ip is None or not self._is_trusted(ip):
            return peer or "unknown"
        for hop in reversed([h.strip() for h in headers.get("X-Forwarded-For", "").split(",") if h.strip()]):
            hop_ip = _ip(hop)
            if hop_ip is None:
                break  # a garbled chain: trust nothing further left
            if not self._is_trusted(hop_ip):
                return str(hop_ip)
        real = _ip(headers.get("X-Real-IP", "").strip())
        return str(real) if real is not None else str(ip)

    def _is_trusted(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.trusted)


def parse_networks(entries: Iterable[str]) -> tuple:
    """Addresses or CIDRs (``trusted_proxies``); ConfigError naming a bad one."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip().strip("[]"), strict=False))
        except ValueError:
            raise ConfigError(f"trusted_proxies: {entry!r} is not an address or CIDR") from None
    return tuple(networks)


def client_key(address: str) -> str:
    """The bucket an address counts against: itself, or its /64 for IPv6."""
    ip = _ip(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> (128 - IPV6_PREFIX) << (128 - IPV6_PREFIX), IPV6_PREFIX)))
    return str(ip) if ip is not None else address


def _ip(text: str | None):
    if not text:
        return None
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
