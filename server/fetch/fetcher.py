"""Fetch media by URL without becoming a proxy into private networks.

A verify request may name any media URL, so fetching it is server-side
request forgery waiting to happen. :class:`MediaFetcher` therefore:

- accepts http and https only, without credentials, on ports the Fetch
  Standard does not block (https://fetch.spec.whatwg.org/#port-blocking);
- resolves the host once and refuses it if any address is non-public
  (:mod:`server.netguard`), then connects to exactly that checked address,
  while the Host header, TLS SNI and certificate check keep the URL's name,
  so a DNS-rebinding answer on a second lookup can never be used;
- follows redirects itself, checking each target from scratch;
- streams the body into SHA-256 and a spooled file, stopping at the size
  cap, with per-read and connect timeouts and a total deadline enforced by a
  timer that shuts the socket down;
- remembers results per URL with their validators and revalidates them with
  conditional requests (RFC 9110 §13.1.1-13.1.3, RFC 9111 §4.3).

:meth:`MediaFetcher.fetch` never raises: failures come back as a
:class:`FetchResult` with a machine ``reason`` and a human ``detail``.
Logs name hosts, never full URLs.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import ipaddress
import logging
import math
import socket
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import BinaryIO, Callable, Iterable
from urllib.parse import urljoin

import requests
import urllib3.exceptions as u3
from urllib3.util import parse_url

from labelcheck.fetch import netguard
from labelcheck.fetch.pinned import Deadline, PinnedAdapter

log = logging.getLogger(__name__)

REASONS = frozenset({
    "scheme_refused", "address_refused", "dns_failed", "too_many_redirects",
    "too_large", "timeout", "http_error", "connect_failed", "bad_url",
})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
OK_STATUSES = frozenset({200, 203})
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
MAX_ADDRESSES_TRIED = 3  # of a multi-address name, before giving up on connecting
SPOOL_IN_MEMORY = 1024 * 1024
CHUNK = 64 * 1024

Resolver = Callable[[str, int], Iterable["str | netguard.IPAddress"]]


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one fetch. ``allow`` lists host names or CIDRs that may be
    reached although :mod:`server.netguard` refuses them (``--fetch-allow``)."""

    max_bytes: int = 50 * 1024 * 1024
    max_redirects: int = 5
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 30.0  # the whole fetch: DNS, redirects and body
    allow: tuple[str, ...] = ()
    user_agent: str = "labelcheck/0.1 (+media verification)"

    def __post_init__(self) -> None:
        allow = (self.allow,) if isinstance(self.allow, str) else tuple(self.allow)
        object.__setattr__(self, "allow", allow)
        if not isinstance(self.max_bytes, int) or self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be a positive integer, not {self.max_bytes!r}")
        if not isinstance(self.max_redirects, int) or self.max_redirects < 0:
            raise ValueError(f"max_redirects must be a non-negative integer, not {self.max_redirects!r}")
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        netguard.Allowlist.parse(allow)  # a typo in --fetch-allow fails at start-up


@dataclass
class FetchResult:
    ok: bool
    url: str  # as asked
    final_url: str | None
    sha256: str | None  # lowercase hex of the body bytes
    size: int | None
    media_type: str | None  # Content-Type without parameters
    reason: str | None  # one of REASONS when not ok
    detail: str | None  # human text; when ok, a note such as a failed analysis
    analysis: object = None  # what analyze() returned
    from_cache: bool = False


class FetchFailed(Exception):
    """A fetch stopped; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, detail: str):
        assert reason in REASONS, reason
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def system_resolver(host: str, port: int) -> list[str]:
    """Every address getaddrinfo(3) gives for ``host``, in its order."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


# --- URLs ---------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A URL that passed the syntactic checks, in the form it is requested."""

    scheme: str
    host: str  # lower-case ASCII name without final dot, or an address without brackets
    port: int
    url: str  # scheme://authority/path?query, rebuilt from the parts (no fragment)
    ip: netguard.IPAddress | None  # when the host is an address literal

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
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
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


# --- the cache ----------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    final_url: str
    etag: str | None
    last_modified: str | None
    sha256: str
    size: int
    media_type: str | None
    analysis: object
    analyzer: Callable[[BinaryIO], object] | None  # None: no analysis held


class _LRU:
    """A bounded, thread-safe least-recently-used map."""

    def __init__(self, capacity: int):
        self.capacity = max(0, int(capacity))
        self._items: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, key: str) -> _Entry | None:
        with self._lock:
            entry = self._items.get(key)
            if entry is not None:
                self._items.move_to_end(key)
            return entry

    def put(self, key: str, entry: _Entry) -> None:
        if self.capacity == 0:
            return
        with self._lock:
            self._items[key] = entry
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def discard(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


# --- the fetcher --------------------------------------------------------


class MediaFetcher:
    """Fetch, hash and optionally analyse media URLs under a :class:`FetchPolicy`.

    ``session_factory`` makes the :class:`requests.Session` each fetch uses
    for its TLS settings (``verify``, ``cert``) and default headers; the
    environment's proxies and netrc are ignored. ``resolver(host, port)``
    returns the host's addresses (default: getaddrinfo). One instance is safe
    to share between threads.
    """

    def __init__(self, policy: FetchPolicy = FetchPolicy(), *, cache_size: int = 1024,
                 session_factory: Callable[[], requests.Session] | None = None,
                 resolver: Resolver | None = None):
        self.policy = policy
        self._allow = netguard.Allowlist.parse(policy.allow)
        self._cache = _LRU(cache_size)
        self._session_factory = session_factory or requests.Session
        self._resolver = resolver or system_resolver
        self._dns_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._dns_lock = threading.Lock()

    @property
    def cache_len(self) -> int:
        return len(self._cache)

    def fetch(self, url: str, analyze: Callable[[BinaryIO], object] | None = None) -> FetchResult:
        """Fetch ``url``; ``analyze(file)`` reads the body (seeked to 0) when the fetch is ok.

        A cached result is revalidated and reused (``from_cache=True``) when
        the server answers 304, provided it holds an analysis by the same
        ``analyze`` (compared with ==) or none is asked for. Never raises.
        """
        asked = url if isinstance(url, str) else repr(url)
        try:
            return self._fetch(url, analyze)
        except FetchFailed as exc:
            log.debug("media fetch failed: %s (%s)", exc.reason, exc.detail)
            return FetchResult(False, asked, None, None, None, None, exc.reason, exc.detail)
        except Exception as exc:  # a bug must not become a 500 for the viewer
            log.exception("media fetch failed unexpectedly")
            return FetchResult(False, asked, None, None, None, None, "connect_failed",
                               f"unexpected error while fetching ({type(exc).__name__})")

    def _fetch(self, url: str, analyze: Callable[[BinaryIO], object] | None) -> FetchResult:
        target = parse_target(url)
        entry = self._cache.get(url)
        if entry is not None and analyze is not None and entry.analyzer != analyze:
            entry = None  # it lacks the analysis asked for: fetch in full
        session = self._session_factory()
        session.trust_env = False  # no proxy or netrc from the environment
        redirects = 0
        try:
            with Deadline(self.policy.total_timeout) as deadline:
                while True:
                    addresses = self._checked_addresses(target, deadline, redirects)
                    revalidating = entry if entry is not None and entry.final_url == target.url else None
                    resp, adapter = self._send(session, target, addresses, revalidating, deadline)
                    try:
                        if resp.status_code in REDIRECT_STATUSES:
                            if redirects >= self.policy.max_redirects:
                                raise FetchFailed("too_many_redirects",
                                                  f"more than {self.policy.max_redirects} redirects")
                            target = _redirect_target(target, resp)
                            redirects += 1
                            continue
                        if resp.status_code == 304 and revalidating is not None:
                            return self._reuse(url, revalidating, resp)
                        if resp.status_code not in OK_STATUSES:
                            raise FetchFailed("http_error", f"{target.host} answered HTTP {resp.status_code}")
                        return self._download(url, target, resp, analyze, deadline)
                    finally:
                        resp.close()
                        adapter.close()
        finally:
            session.close()

    # -- addresses --

    def _checked_addresses(self, target: Target, deadline: Deadline,
                           redirects: int) -> list[netguard.IPAddress]:
        addresses = self._resolve(target, deadline)
        try:
            netguard.check_addresses(target.host, addresses, self._allow)
        except netguard.AddressRefused as exc:
            where = f"redirected to {target.host}: " if redirects else ""
            raise FetchFailed("address_refused", f"{where}{exc}") from None
        return addresses

    def _resolve(self, target: Target, deadline: Deadline) -> list[netguard.IPAddress]:
        if target.ip is not None:
            return [target.ip]
        host = target.host
        if host == "localhost" or host.endswith(".localhost"):
            # RFC 6761 §6.3: localhost names are loopback, whatever DNS says.
            return [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
        numeric = _numeric_address(host)
        if numeric is not None:
            return [numeric]
        future = self._dns().submit(self._resolver, host, target.port)
        try:
            answer = list(future.result(timeout=_left(deadline, f"resolving {host}")))
        except concurrent.futures.TimeoutError:
            raise FetchFailed("timeout", f"resolving {host} took too long") from None
        except FetchFailed:
            raise
        except Exception as exc:  # gaierror, UnicodeError, or a resolver's own
            raise FetchFailed("dns_failed", f"{host} could not be resolved ({exc})") from None
        addresses: list[netguard.IPAddress] = []
        for item in answer:
            ip = item if isinstance(item, (ipaddress.IPv4Address, ipaddress.IPv6Address)) \
                else netguard.parse_ip(str(item))
            if ip is None:
                raise FetchFailed("dns_failed", f"resolving {host} gave an invalid address {item!r}")
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise FetchFailed("dns_failed", f"{host} has no addresses")
        return addresses

    def _dns(self) -> concurrent.futures.ThreadPoolExecutor:
        # Lookups run on a small pool so a stuck resolver cannot outlast the
        # deadline; made lazily so a pre-forking server starts none in its master.
        with self._dns_lock:
            if self._dns_pool is None:
                self._dns_pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=8, thread_name_prefix="labelcheck-dns")
            return self._dns_pool

    # -- one request --

    def _send(self, session: requests.Session, target: Target, addresses: list[netguard.IPAddress],
              revalidating: _Entry | None, deadline: Deadline) -> tuple[requests.Response, PinnedAdapter]:
        headers = {
            "Host": target.authority,
            "User-Agent": self.policy.user_agent,
            "Accept": "*/*",
            "Accept-Encoding": "identity",  # hash the bytes as stored, not a re-encoding
            "Connection": "close",
        }
        if revalidating is not None:
            if revalidating.etag:
                headers["If-None-Match"] = revalidating.etag
            if revalidating.last_modified:
                headers["If-Modified-Since"] = revalidating.last_modified
        prepared = session.prepare_request(requests.Request("GET", target.url, headers=headers))
        failure: FetchFailed | None = None
        for ip in addresses[:MAX_ADDRESSES_TRIED]:
            remaining = _left(deadline, f"connecting to {target.host}")
            adapter = PinnedAdapter(target.scheme, target.host, ip)
            timeout = (min(self.policy.connect_timeout, remaining), min(self.policy.read_timeout, remaining))
            try:
                # adapter.send, not session.send: with allow_redirects=False a
                # Session still reads a redirect's whole body into memory.
                resp = adapter.send(prepared, stream=True, timeout=timeout, verify=session.verify,
                                    cert=session.cert, proxies={})
                return resp, adapter
            except requests.RequestException as exc:
                adapter.close()
                failure = _request_failure(exc, target, ip, deadline)
                if not _never_connected(exc) or deadline.expired:
                    raise failure from None
        assert failure is not None
        raise failure

    # -- results --

    def _download(self, url: str, target: Target, resp: requests.Response,
                  analyze: Callable[[BinaryIO], object] | None, deadline: Deadline) -> FetchResult:
        limit = self.policy.max_bytes
        declared = _content_length(resp)
        if declared is not None and declared > limit:
            raise FetchFailed("too_large", f"Content-Length {declared} exceeds the {limit}-byte limit")
        digest, size = hashlib.sha256(), 0
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            try:
                for chunk in resp.raw.stream(CHUNK, decode_content=True):
                    size += len(chunk)
                    if size > limit:
                        raise FetchFailed("too_large", f"the body exceeds the {limit}-byte limit")
                    digest.update(chunk)
                    spool.write(chunk)
            except (u3.HTTPError, OSError) as exc:
                raise _body_failure(exc, target, deadline) from None
            if deadline.expired:  # a shut-down socket can look like a clean end of body
                raise FetchFailed("timeout", f"the fetch took too long (reading from {target.host})")
            analysis, note, analyzed = _run_analysis(analyze, spool)
        media_type = _media_type(resp)
        result = FetchResult(True, url, target.url, digest.hexdigest(), size, media_type, None, note, analysis)
        self._remember(url, target, resp, result, analyze if analyzed else None)
        return result

    def _remember(self, url: str, target: Target, resp: requests.Response, result: FetchResult,
                  analyzer: Callable[[BinaryIO], object] | None) -> None:
        etag = _strong_etag(resp.headers.get("ETag"))
        last_modified = resp.headers.get("Last-Modified")
        no_store = "no-store" in resp.headers.get("Cache-Control", "").lower()
        if no_store or not (etag or last_modified):
            self._cache.discard(url)  # nothing to revalidate with
            return
        self._cache.put(url, _Entry(target.url, etag, last_modified, result.sha256, result.size,
                                    result.media_type, result.analysis, analyzer))

    def _reuse(self, url: str, entry: _Entry, resp: requests.Response) -> FetchResult:
        # RFC 9111 §4.3.4: a 304 may carry updated validators.
        etag = _strong_etag(resp.headers.get("ETag")) or entry.etag
        entry = replace(entry, etag=etag, last_modified=resp.headers.get("Last-Modified") or entry.last_modified)
        self._cache.put(url, entry)
        return FetchResult(True, url, entry.final_url, entry.sha256, entry.size, entry.media_type,
                           None, None, entry.analysis, from_cache=True)


def _left(deadline: Deadline, what: str) -> float:
    """Seconds left, or FetchFailed(timeout) naming what ran out of time."""
    remaining = deadline.remaining()
    if deadline.expired or remaining <= 0:
        raise FetchFailed("timeout", f"the fetch took too long ({what})")
    return remaining


def _never_connected(exc: BaseException) -> bool:
    """True when no connection was made (refused, unreachable, timed out): the next address may do."""
    return any(isinstance(e, u3.NewConnectionError) or isinstance(e, u3.ConnectTimeoutError)
               for e in _chain(exc))


def _chain(exc: BaseException) -> list[BaseException]:
    """An exception and the ones requests and urllib3 wrapped inside it."""
    found = [exc]
    while len(found) < 8:
        last = found[-1]
        inner = getattr(last, "reason", None)
        if not isinstance(inner, BaseException) and last.args and isinstance(last.args[0], BaseException):
            inner = last.args[0]
        if not isinstance(inner, BaseException):
            inner = last.__cause__
        if not isinstance(inner, BaseException) or inner in found:
            break
        found.append(inner)
    return found


def _request_failure(exc: requests.RequestException, target: Target, ip: netguard.IPAddress,
                     deadline: Deadline) -> FetchFailed:
    where = target.host if str(ip) == target.host else f"{target.host} ({ip})"
    if deadline.expired:
        return FetchFailed("timeout", f"the fetch took too long (talking to {where})")
    if isinstance(exc, requests.ConnectTimeout):
        return FetchFailed("timeout", f"connecting to {where} timed out")
    if isinstance(exc, requests.ReadTimeout):
        return FetchFailed("timeout", f"{where} did not answer in time")
    if isinstance(exc, requests.exceptions.SSLError):
        return FetchFailed("connect_failed", f"TLS with {where} failed ({_innermost(exc)})")
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader)):
        return FetchFailed("bad_url", f"the request could not be made ({exc})")
    if isinstance(exc, requests.ConnectionError):
        return FetchFailed("connect_failed", f"could not talk to {where} ({_innermost(exc)})")
    return FetchFailed("connect_failed", f"request to {where} failed ({type(exc).__name__})")


def _body_failure(exc: Exception, target: Target, deadline: Deadline) -> FetchFailed:
    if deadline.expired:
        return FetchFailed("timeout", f"the fetch took too long (reading from {target.host})")
    if isinstance(exc, (u3.ReadTimeoutError, TimeoutError, socket.timeout)):
        return FetchFailed("timeout", f"{target.host} stopped sending the body")
    if isinstance(exc, u3.SSLError):
        return FetchFailed("connect_failed", f"TLS with {target.host} failed while reading")
    if isinstance(exc, u3.DecodeError):
        return FetchFailed("http_error", f"{target.host} sent a body that cannot be decoded")
    return FetchFailed("http_error", f"the body from {target.host} ended early or broke off ({type(exc).__name__})")


def _innermost(exc: BaseException) -> str:
    """The most specific message in a requests/urllib3 exception chain."""
    inner = _chain(exc)[-1]
    return str(inner) or type(inner).__name__


def _redirect_target(current: Target, resp: requests.Response) -> Target:
    location = resp.headers.get("Location")
    if not location:
        raise FetchFailed("http_error", f"{current.host} redirected (HTTP {resp.status_code}) without a Location")
    try:  # http.client decodes header bytes as Latin-1; servers send UTF-8
        location = location.encode("latin-1").decode("utf-8")
    except UnicodeError:
        pass
    try:
        return parse_target(urljoin(current.url, location.strip()))  # RFC 9110 §10.2.2
    except FetchFailed as exc:
        raise FetchFailed(exc.reason, f"redirect refused: {exc.detail}") from None


def _numeric_address(host: str) -> netguard.IPAddress | None:
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


def _run_analysis(analyze: Callable[[BinaryIO], object] | None,
                  spool: BinaryIO) -> tuple[object, str | None, bool]:
    if analyze is None:
        return None, None, False
    spool.seek(0)
    try:
        return analyze(spool), None, True
    except Exception as exc:  # the bytes were fetched; a reader's failure is a note
        log.warning("media analysis failed: %s", type(exc).__name__, exc_info=True)
        return None, f"analysis failed ({type(exc).__name__})", False


def _content_length(resp: requests.Response) -> int | None:
    try:
        value = int(resp.headers.get("Content-Length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _media_type(resp: requests.Response) -> str | None:
    value = resp.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    return value or None


def _strong_etag(value: str | None) -> str | None:
    """The ETag when strong: a weak one (W/) does not promise identical bytes (RFC 9110 §8.8.1)."""
    if not value or value.startswith("W/"):
        return None
    return value
