"""Media URLs as the fetcher accepts them: http(s), no credentials, no
blocked port (Fetch Standard, https://fetch.spec.whatwg.org/#port-blocking),
the host normalised and numeric spellings decoded, and redirects resolved
against the current URL (RFC 9110 §10.2.2)."""

from __future__ import annotations

import functools
import re
import socket
from dataclasses import dataclass
from urllib.parse import urljoin

import urllib3.exceptions as u3
from urllib3.util import parse_url

from labelcheck.fetch import netguard
from labelcheck.fetch.policy import FetchFailed

DEFAULT_PORTS = {"http": 80, "https": 443}
# The Fetch Standard's "bad port" list (#port-blocking): services a crafted
# HTTP request could talk to (SMTP, IRC, ...).
BAD_PORTS = frozenset({
    0, 1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77,
    79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135,
    137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531,
    532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720,
    1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667,
    6668, 6669, 6679, 6697, 10080,
})
MAX_URL_LENGTH = 8192
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


@dataclass(frozen=True)
class Target:
    """A URL that passed the syntactic checks, in the form it is requested."""

    scheme: str
    host: str  # lower-case ASCII name without final dot, or an address without brackets
    port: int
    url: str  # scheme://authority/path?query, rebuilt from the parts (no fragment)
    ip: netguard.IPAddress | None  # when the host is an address literal

    @property
    def request_target(self) -> str:
        """The origin-form request target (RFC 9112 §3.2.1): path and query."""
        return self.url[self.url.index("/", len(self.scheme) + 3):]

    @property
    def authority(self) -> str:
        """The Host header value (RFC 9110 §7.2): the port only when not the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def parse_target(url: object) -> Target:
    """Check a URL's syntax and scheme; raises FetchFailed (bad_url, scheme_refused)."""
    if not isinstance(url, str) or not url:
        raise FetchFailed("bad_url", "the media URL is missing or not text")
    if len(url) > MAX_URL_LENGTH:
        raise FetchFailed("bad_url", f"the URL is longer than {MAX_URL_LENGTH} characters")
    if _CONTROL.search(url):
        raise FetchFailed("bad_url", "the URL contains spaces or control characters")
    try:
        parts = parse_url(url)
    except (u3.LocationParseError, ValueError) as exc:
        raise FetchFailed("bad_url", f"the URL cannot be parsed ({exc})") from None
    scheme = (parts.scheme or "").lower()
    if not scheme:
        raise FetchFailed("bad_url", "the URL has no scheme (expected http: or https:)")
    if scheme not in DEFAULT_PORTS:
        raise FetchFailed("scheme_refused", f"{scheme}: URLs are refused; only http and https are fetched")
    if parts.auth is not None:
        raise FetchFailed("bad_url", "URLs carrying credentials (user@host) are refused")
    if not parts.host:
        raise FetchFailed("bad_url", "the URL has no host")
    port = DEFAULT_PORTS[scheme] if parts.port is None else parts.port
    if not 0 < port < 65536 or port in BAD_PORTS:
        raise FetchFailed("bad_url", f"port {port} is refused (Fetch Standard bad port or out of range)")
    host, ip = _parse_host(parts.host)
    authority = Target(scheme, host, port, "", ip).authority
    query = "" if parts.query is None else f"?{parts.query}"
    return Target(scheme, host, port, f"{scheme}://{authority}{parts.path or '/'}{query}", ip)


@functools.lru_cache(maxsize=1024)  # pure; the same few hosts come back with every fetch
def _parse_host(text: str) -> tuple[str, netguard.IPAddress | None]:
    ip = netguard.parse_ip(text)
    if ip is not None:
        if getattr(ip, "scope_id", None):
            raise FetchFailed("bad_url", "IPv6 zone identifiers are refused")
        return str(ip), ip
    try:
        return netguard.normalize_host(text), None
    except ValueError as exc:
        raise FetchFailed("bad_url", str(exc)) from None


def redirect_target(current: Target, status: int, location: str | None) -> Target:
    """Where a redirect leads, checked like a URL asked for (RFC 9110 §10.2.2)."""
    if not location:
        raise FetchFailed("http_error", f"{current.host} redirected (HTTP {status}) without a Location")
    try:  # http.client decodes header bytes as Latin-1; servers send UTF-8
        location = location.encode("latin-1").decode("utf-8")
    except UnicodeError:
        pass
    try:
        return parse_target(urljoin(current.url, location.strip()))
    except FetchFailed as exc:
        raise FetchFailed(exc.reason, f"redirect refused: {exc.detail}") from None


def numeric_address(host: str) -> netguard.IPAddress | None:
    """The address a numeric host such as ``127.1`` or ``0x7f000001`` stands for.

    inet_aton(3) accepts these forms and so would the connection, so they are
    decoded here, without any lookup, and the decoded address is what gets
    checked.
    """
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return None
    return netguard.parse_ip(infos[0][4][0]) if infos else None
