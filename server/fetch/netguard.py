"""Which network addresses the media fetcher may connect to.

The server fetches URLs that anyone can put in a verify request, so every
address a host name resolves to is checked before a connection is made
(server-side request forgery defence). Only public unicast addresses pass:
loopback, private, shared, link-local, multicast, unspecified, documentation,
reserved and cloud-metadata addresses are refused, and so are IPv6 forms that
embed such an IPv4 address (IPv4-mapped, IPv4-compatible, SIIT, 6to4, NAT64).

The tables follow the IANA IPv4 and IPv6 Special-Purpose Address Registries
(RFC 6890) with the RFCs named beside each entry. Python's ``ipaddress``
flags are used only as a backstop: they differ between Python versions and,
for instance, call 224.0.0.1 "global".

An operator can open holes with an :class:`Allowlist` of host names and
CIDRs (``labelcheck serve --fetch-allow``); tests use it for 127.0.0.1.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import Iterable, Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class AddressRefused(ValueError):
    """An address (or a name resolving to it) may not be fetched from."""


def _table(rows: Iterable[tuple[str, str]]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(net), why) for net, why in rows)


# Cloud instance-metadata and platform endpoints. Some sit in public space
# (Azure's WireServer), so they are listed by address, not only by range.
METADATA = {
    ipaddress.ip_address("169.254.169.254"): "a cloud metadata address (AWS, GCP, Azure, OpenStack, Oracle)",
    ipaddress.ip_address("169.254.170.2"): "a cloud metadata address (AWS ECS task metadata)",
    ipaddress.ip_address("100.100.100.200"): "a cloud metadata address (Alibaba Cloud)",
    ipaddress.ip_address("168.63.129.16"): "a cloud platform address (Azure WireServer)",
    ipaddress.ip_address("fd00:ec2::254"): "a cloud metadata address (AWS, IPv6)",
}

# IANA IPv4 Special-Purpose Address Registry entries that are not globally
# reachable, plus multicast and the reserved class E block.
IPV4_REFUSED = _table([
    ("0.0.0.0/8", "an unspecified (\"this network\") address (RFC 1122 §3.2.1.3)"),
    ("10.0.0.0/8", "a private address (RFC 1918)"),
    ("100.64.0.0/10", "a shared carrier-grade NAT address (RFC 6598)"),
    ("127.0.0.0/8", "a loopback address (RFC 1122 §3.2.1.3)"),
    ("169.254.0.0/16", "a link-local address (RFC 3927)"),
    ("172.16.0.0/12", "a private address (RFC 1918)"),
    ("192.0.0.0/24", "an IETF protocol assignment (RFC 6890)"),
    ("192.0.2.0/24", "a documentation address (RFC 5737)"),
    ("192.88.99.0/24", "a 6to4 relay anycast address (RFC 7526)"),
    ("192.168.0.0/16", "a private address (RFC 1918)"),
    ("198.18.0.0/15", "a benchmarking address (RFC 2544)"),
    ("198.51.100.0/24", "a documentation address (RFC 5737)"),
    ("203.0.113.0/24", "a documentation address (RFC 5737)"),
    ("224.0.0.0/4", "a multicast address (RFC 5771)"),
    ("240.0.0.0/4", "a reserved address (RFC 1112 §4; includes broadcast, RFC 919)"),
])

# IPv6 ranges refused outright. Forms embedding IPv4 are handled separately,
# and anything outside 2000::/3 (global unicast, RFC 4291 §2.4) is refused.
IPV6_REFUSED = _table([
    ("::/128", "the unspecified address (RFC 4291 §2.5.2)"),
    ("::1/128", "the loopback address (RFC 4291 §2.5.3)"),
    ("64:ff9b:1::/48", "a local-use NAT64 address (RFC 8215)"),
    ("100::/64", "a discard-only address (RFC 6666)"),
    ("2001::/23", "an IETF protocol assignment (RFC 6890; includes Teredo, RFC 4380)"),
    ("2001:db8::/32", "a documentation address (RFC 3849)"),
    ("3fff::/20", "a documentation address (RFC 9637)"),
    ("fc00::/7", "a unique local (private) address (RFC 4193)"),
    ("fe80::/10", "a link-local address (RFC 4291 §2.5.6)"),
    ("fec0::/10", "a site-local address (deprecated, RFC 3879)"),
    ("ff00::/8", "a multicast address (RFC 4291 §2.7)"),
])

GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 §2.1
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # RFC 4291 §2.5.5.1 (deprecated)
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 2765 (SIIT)


def parse_ip(text: str) -> IPAddress | None:
    """The address written in ``text`` (brackets and an IPv6 zone allowed), or None.

    Only canonical dotted-quad and RFC 4291 text forms are recognised; odd
    IPv4 spellings such as ``127.1`` or ``0x7f000001`` are left to the
    resolver, and what it returns is what gets checked.
    """
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address carries, with the name of the form."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in NAT64_WELL_KNOWN:
        return low32, "NAT64"
    if ip in IPV4_TRANSLATED:
        return low32, "IPv4-translated"
    if ip in IPV4_COMPATIBLE and int(ip) > 1:
        return low32, "IPv4-compatible"
    return None


def _ipv4_refusal(ip: ipaddress.IPv4Address) -> str | None:
    for net, why in IPV4_REFUSED:
        if ip in net:
            return why
    if not ip.is_global:
        return "not a globally reachable address"
    return None


def _ipv6_refusal(ip: ipaddress.IPv6Address) -> str | None:
    plain = ipaddress.IPv6Address(int(ip))  # without any zone
    for net, why in IPV6_REFUSED:
        if plain in net:
            return why
    inner = embedded_ipv4(plain)
    if inner is not None:
        v4, form = inner
        if form == "IPv4-compatible":
            return f"a deprecated IPv4-compatible address (RFC 4291 §2.5.5.1) for {v4}"
        why = METADATA.get(v4) or _ipv4_refusal(v4)
        return f"an {form} form of {v4}, {why}" if why else None
    if plain not in GLOBAL_UNICAST_V6:
        return "a reserved address, outside global unicast 2000::/3 (RFC 4291 §2.4)"
    if not plain.is_global:
        return "not a globally reachable address"
    return None


@functools.lru_cache(maxsize=4096)  # a pure function of the address, asked once per fetch
def refusal(ip: IPAddress) -> str | None:
    """Why the fetcher may not connect to ``ip``, or None for a public address.

    >>> refusal(ipaddress.ip_address("10.1.2.3"))
    'a private address (RFC 1918)'
    """
    if ip in METADATA:
        return METADATA[ip]
    if isinstance(ip, ipaddress.IPv4Address):
        return _ipv4_refusal(ip)
    return _ipv6_refusal(ip)


_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


def normalize_host(name: str) -> str:
    """A host name in the form it is compared in: lower case, ASCII, no final dot.

    Raises ValueError for names that are not syntactically valid DNS names
    (RFC 1123 §2.1, with underscores tolerated as DNS allows them).
    """
    name = name.strip().rstrip(".").lower()
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"{name!r} is not a valid host name") from exc
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(p) for p in name.split(".")):
        raise ValueError(f"{name!r} is not a valid host name")
    return name


@dataclass(frozen=True)
class Allowlist:
    """Host names and networks the fetcher may reach although :func:`refusal` objects.

    A host name entry admits whatever that exact name resolves to; a CIDR or
    address entry admits addresses inside it. Metadata addresses are special:
    only an entry naming that exact address admits one, so neither a broad
    range like 169.254.0.0/16 nor a host name that (re)binds to it does.
    """

    names: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> "Allowlist":
        """Parse ``--fetch-allow`` values; raises ValueError naming a bad entry."""
        names, networks = set(), []
        for entry in entries:
            if not isinstance(entry, str) or not entry.strip():
                raise ValueError(f"fetch allowlist entry {entry!r} is empty or not text")
            text = entry.strip()
            if text.startswith("[") and text.endswith("]"):
                text = text[1:-1]
            try:
                networks.append(ipaddress.ip_network(text, strict=True))
                continue
            except ValueError as exc:
                if "/" in text or ":" in text:
                    raise ValueError(f"fetch allowlist entry {entry!r}: {exc}") from exc
            try:
                names.add(normalize_host(text))
            except ValueError as exc:
                raise ValueError(f"fetch allowlist entry {entry!r} is neither a host name nor a CIDR") from exc
        return cls(frozenset(names), tuple(networks))

    def admits(self, host: str, ip: IPAddress) -> bool:
        """True when ``ip``, reached as ``host``, is opened up by this list."""
        candidates = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            ip = ipaddress.IPv6Address(int(ip))
            inner = embedded_ipv4(ip)
            candidates = [ip] + ([inner[0]] if inner else [])
        if any(c in METADATA for c in candidates):
            return any(net.num_addresses == 1 and c in net for net in self.networks for c in candidates)
        if host in self.names:
            return True
        return any(c in net for net in self.networks for c in candidates)


def check_addresses(host: str, addresses: Iterable[IPAddress], allow: Allowlist) -> None:
    """Raise AddressRefused unless every address ``host`` resolved to may be used.

    All addresses must pass, not just the one connected to: a name that
    mixes a public and a private answer is refused as a whole.
    """
    for ip in addresses:
        why = refusal(ip)
        if why is not None and not allow.admits(host, ip):
            shown = ip if str(ip) == host else f"{host} resolves to {ip}, which"
            raise AddressRefused(f"{shown} is {why}")
