"""Fetch media by URL without becoming a proxy into private networks.

A verify request may name any media URL, so fetching it is server-side
request forgery waiting to happen. :class:`MediaFetcher` therefore:

- accepts http and https only, without credentials, on ports the Fetch
  Standard does not block (:mod:`labelcheck.fetch.target`);
- resolves the host once and refuses it if any address is non-public
  (:mod:`labelcheck.fetch.netguard`), then talks to exactly that checked
  address, while the Host header, TLS SNI and certificate check keep the
  URL's name, so a DNS-rebinding answer on a second lookup is never used;
  kept-alive connections are reused only for the same checked address
  (:mod:`labelcheck.fetch.pinned`);
- follows redirects itself, checking each target from scratch;
- streams the body into SHA-256 and a spooled file, stopping at the size
  cap, with per-read and connect timeouts and a total deadline (the fetch's
  own, or the request's shared one if that comes first) enforced by an alarm
  that shuts the socket down;
- runs at most ``policy.max_concurrent`` fetches at once;
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
import socket
import threading
import time
from dataclasses import replace
from typing import BinaryIO, Callable, Iterable

import requests
import urllib3.exceptions as u3
import urllib3.util
from urllib3.response import HTTPResponse

from labelcheck.fetch import failures, netguard
from labelcheck.fetch.cache import Entry, ResponseCache, strong_etag
from labelcheck.fetch.pinned import Deadline, PinnedPools
from labelcheck.fetch.policy import REASONS, FetchFailed, FetchPolicy, FetchResult
from labelcheck.fetch.spool import Spool
from labelcheck.fetch.target import Target, numeric_address, parse_target, redirect_target

__all__ = ["REASONS", "FetchPolicy", "FetchResult", "MediaFetcher", "system_resolver"]

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
OK_STATUSES = frozenset({200, 203})
MAX_ADDRESSES_TRIED = 3  # of a multi-address name, before giving up on connecting
SPOOL_IN_MEMORY = 1024 * 1024
CHUNK = 256 * 1024
NO_RETRY = urllib3.util.Retry(total=False)  # each failure is told as it is; redirects are followed here

Resolver = Callable[[str, int], Iterable["str | netguard.IPAddress"]]
Analyzer = Callable[[BinaryIO], object]


def system_resolver(host: str, port: int) -> list[str]:
    """Every address getaddrinfo(3) gives for ``host``, in its order."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


class MediaFetcher:
    """Fetch, hash and optionally analyse media URLs under a :class:`FetchPolicy`.

    ``session_factory`` makes the :class:`requests.Session` whose TLS
    settings (``verify``, ``cert``) and default headers the fetches use;
    the environment's proxies and netrc are ignored. ``resolver(host, port)``
    returns the host's addresses (default: getaddrinfo). One instance is safe
    to share between threads.
    """

    def __init__(self, policy: FetchPolicy = FetchPolicy(), *, cache_size: int = 1024,
                 session_factory: Callable[[], requests.Session] | None = None,
                 resolver: Resolver | None = None):
        self.policy = policy
        self._allow = netguard.Allowlist.parse(policy.allow)
        self._cache = ResponseCache(cache_size)
        self._session = (session_factory or requests.Session)()
        self._session.trust_env = False  # no proxy or netrc from the environment
        self._base_headers = {k: v for k, v in self._session.headers.items() if v is not None}
        self._resolver = resolver or system_resolver
        self._pools = PinnedPools(keep=min(policy.max_concurrent, 8))
        self._slots = threading.BoundedSemaphore(policy.max_concurrent)
        self._lock = threading.Lock()
        self._dns_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._workers: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def cache_len(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        """Close kept-alive connections (the fetcher stays usable)."""
        self._pools.close()

    def fetch(self, url: str, analyze: Analyzer | None = None, *, deadline: float | None = None) -> FetchResult:
        """Fetch ``url``; ``analyze(file)`` reads the body (seeked to 0) when the fetch is ok.

        ``deadline`` (a :func:`time.monotonic` time) ends the fetch early, with
        reason ``deadline``, when it comes before the policy's own limit.
        A cached result is revalidated and reused (``from_cache=True``) when
        the server answers 304, provided it holds an analysis by the same
        ``analyze`` (compared with ==) or none is asked for. Never raises.
        """
        try:
            seconds, reason = self._budget(deadline)
            if not self._slots.acquire(timeout=seconds):
                raise FetchFailed(reason, "the time for fetching ran out before this fetch could start: the server is busy fetching")
            try:
                return self._fetch(url, analyze, Deadline(seconds, reason))
            finally:
                self._slots.release()
        except FetchFailed as exc:
            log.debug("media fetch failed: %s (%s)", exc.reason, exc.detail)
            return FetchResult.failed(url, exc.reason, exc.detail)
        except Exception as exc:  # a bug must not become a 500 for the viewer
            log.exception("media fetch failed unexpectedly")
            return FetchResult.failed(url, "connect_failed", f"unexpected error while fetching ({type(exc).__name__})")

    def executor(self) -> concurrent.futures.ThreadPoolExecutor:
        """Threads for fetching several URLs at once (:mod:`labelcheck.fetch.batch`),
        as many as may fetch at once; made lazily, so a pre-forking server
        starts none in its master."""
        with self._lock:
            if self._workers is None:
                self._workers = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self.policy.max_concurrent, thread_name_prefix="labelcheck-fetch")
            return self._workers

    def _budget(self, deadline: float | None) -> tuple[float, str]:
        seconds, reason = self.policy.total_timeout, "timeout"
        if deadline is not None and deadline - time.monotonic() <= seconds:
            seconds, reason = deadline - time.monotonic(), "deadline"
            if seconds <= 0:
                raise FetchFailed("deadline", "the request's time for fetching media ran out before this one started")
        return seconds, reason

    def _fetch(self, url: str, analyze: Analyzer | None, deadline: Deadline) -> FetchResult:
        target = parse_target(url)
        entry = self._cache.get(url)
        if entry is not None and analyze is not None and entry.analyzer != analyze:
            entry = None  # it lacks the analysis asked for: fetch in full
        redirects = 0
        with deadline:
            while True:
                addresses = self._checked_addresses(target, deadline, redirects)
                revalidating = entry if entry is not None and entry.final_url == target.url else None
                resp = self._send(target, addresses, revalidating, deadline)
                try:
                    if resp.status in REDIRECT_STATUSES:
                        if redirects >= self.policy.max_redirects:
                            raise FetchFailed("too_many_redirects", f"more than {self.policy.max_redirects} redirects")
                        target = redirect_target(target, resp.status, resp.headers.get("Location"))
                        redirects += 1
                        continue
                    if resp.status == 304 and revalidating is not None:
                        return self._reuse(url, revalidating, resp)
                    if resp.status not in OK_STATUSES:
                        raise FetchFailed("http_error", f"{target.host} answered HTTP {resp.status}")
                    return self._download(url, target, resp, analyze, deadline)
                finally:
                    # A body read in full has put its connection back in the
                    # pool already; any other is closed, and its slot freed.
                    resp.close()
                    resp.release_conn()

    # -- addresses --

    def _checked_addresses(self, target: Target, deadline: Deadline, redirects: int) -> list[netguard.IPAddress]:
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
        numeric = numeric_address(host)
        if numeric is not None:
            return [numeric]
        future = self._dns().submit(self._resolver, host, target.port)
        try:
            answer = list(future.result(timeout=failures.left(deadline, f"resolving {host}")))
        except concurrent.futures.TimeoutError:
            raise failures.out_of_time(deadline, f"resolving {host}") if deadline.reason == "deadline" \
                else FetchFailed("timeout", f"resolving {host} took too long") from None
        except FetchFailed:
            raise
        except Exception as exc:  # gaierror, UnicodeError, or a resolver's own
            raise FetchFailed("dns_failed", f"{host} could not be resolved ({exc})") from None
        return _addresses(host, answer)

    def _dns(self) -> concurrent.futures.ThreadPoolExecutor:
        # Lookups run on a small pool so a stuck resolver cannot outlast the deadline.
        with self._lock:
            if self._dns_pool is None:
                self._dns_pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=8, thread_name_prefix="labelcheck-dns")
            return self._dns_pool

    # -- one request --

    def _send(self, target: Target, addresses: list[netguard.IPAddress], revalidating: Entry | None,
              deadline: Deadline) -> HTTPResponse:
        headers = self._headers(target, revalidating)
        failure: FetchFailed | None = None
        for ip in addresses[:MAX_ADDRESSES_TRIED]:
            try:
                return self._send_to(target, headers, ip, deadline)
            except (u3.HTTPError, OSError, ValueError) as exc:
                self._pools.drop(target.scheme, target.host, ip)
                failure = failures.request_failure(exc, target, ip, deadline)
                if not failures.never_connected(exc) or deadline.passed:
                    raise failure from None
        assert failure is not None
        raise failure

    def _send_to(self, target: Target, headers: dict[str, str], ip: netguard.IPAddress,
                 deadline: Deadline) -> HTTPResponse:
        """Send on a kept-alive connection to ``ip`` when there is one; if
        the server had closed it meanwhile, once more on a new connection."""
        pool = self._pools.pool(target.scheme, target.host, ip, target.port, target.url,
                                self._session.verify, self._session.cert)
        for attempt in (1, 2):
            remaining = failures.left(deadline, f"connecting to {target.host}")
            timeout = urllib3.util.Timeout(connect=min(self.policy.connect_timeout, remaining),
                                      read=min(self.policy.read_timeout, remaining))
            deadline.reused = False
            try:
                return pool.urlopen("GET", target.request_target, headers=headers, redirect=False, retries=NO_RETRY,
                                    assert_same_host=False, timeout=timeout, preload_content=False,
                                    decode_content=False)
            except (u3.HTTPError, OSError) as exc:
                if attempt == 2 or not deadline.reused or deadline.passed or not failures.dropped_idle(exc):
                    raise
        raise AssertionError("unreachable")

    def _headers(self, target: Target, revalidating: Entry | None) -> dict[str, str]:
        headers = {
            **self._base_headers,
            "Host": target.authority,
            "User-Agent": self.policy.user_agent,
            "Accept": "*/*",
            "Accept-Encoding": "identity",  # hash the bytes as stored, not a re-encoding
        }
        if revalidating is not None:
            if revalidating.etag:
                headers["If-None-Match"] = revalidating.etag
            if revalidating.last_modified:
                headers["If-Modified-Since"] = revalidating.last_modified
        return headers

    # -- results --

    def _download(self, url: str, target: Target, resp: HTTPResponse, analyze: Analyzer | None,
                  deadline: Deadline) -> FetchResult:
        limit = self.policy.max_bytes
        declared = _content_length(resp)
        if declared is not None and declared > limit:
            raise FetchFailed("too_large", f"Content-Length {declared} exceeds the {limit}-byte limit")
        digest = hashlib.sha256()
        with Spool(SPOOL_IN_MEMORY) as spool:
            try:
                if declared is not None and declared <= SPOOL_IN_MEMORY and _identity(resp):
                    # Small and not encoded: one read of exactly Content-Length
                    # bytes (short is an error), not a chunked stream's copies.
                    body = resp.read(decode_content=False)
                    digest.update(body)
                    spool.write(body)
                else:
                    for chunk in resp.stream(CHUNK, decode_content=True):
                        if spool.size + len(chunk) > limit:
                            raise FetchFailed("too_large", f"the body exceeds the {limit}-byte limit")
                        digest.update(chunk)
                        spool.write(chunk)
            except (u3.HTTPError, OSError) as exc:
                raise failures.body_failure(exc, target, deadline) from None
            if deadline.expired:  # a shut-down socket can look like a clean end of body
                raise failures.out_of_time(deadline, f"reading from {target.host}")
            sha256 = digest.hexdigest()
            analysis, note, analyzed = _run_analysis(analyze, spool, sha256)
            size = spool.size
        result = FetchResult(True, url, target.url, sha256, size, _media_type(resp), None, note, analysis)
        self._remember(url, target, resp, result, analyze if analyzed else None)
        return result

    def _remember(self, url: str, target: Target, resp: HTTPResponse, result: FetchResult,
                  analyzer: Analyzer | None) -> None:
        etag = strong_etag(resp.headers.get("ETag"))
        last_modified = resp.headers.get("Last-Modified")
        no_store = "no-store" in resp.headers.get("Cache-Control", "").lower()
        if no_store or not (etag or last_modified):
            self._cache.discard(url)  # nothing to revalidate with
            return
        self._cache.put(url, Entry(target.url, etag, last_modified, result.sha256, result.size,
                                   result.media_type, result.analysis, analyzer))

    def _reuse(self, url: str, entry: Entry, resp: HTTPResponse) -> FetchResult:
        # RFC 9111 §4.3.4: a 304 may carry updated validators.
        etag = strong_etag(resp.headers.get("ETag")) or entry.etag
        entry = replace(entry, etag=etag, last_modified=resp.headers.get("Last-Modified") or entry.last_modified)
        self._cache.put(url, entry)
        return FetchResult(True, url, entry.final_url, entry.sha256, entry.size, entry.media_type,
                           None, None, entry.analysis, from_cache=True)


def _addresses(host: str, answer: list) -> list[netguard.IPAddress]:
    """A resolver's answer as distinct addresses; dns_failed when empty or invalid."""
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


def _run_analysis(analyze: Analyzer | None, spool: Spool, sha256: str) -> tuple[object, str | None, bool]:
    """``analyze(body)``; an analyzer with ``takes_digest`` set is also handed
    the body's SHA-256 (hex), so it can skip work the digest makes needless."""
    if analyze is None:
        return None, None, False
    body = spool.reader()
    try:
        if getattr(analyze, "takes_digest", False):
            return analyze(body, sha256), None, True
        return analyze(body), None, True
    except Exception as exc:  # the bytes were fetched; a reader's failure is a note
        log.warning("media analysis failed: %s", type(exc).__name__, exc_info=True)
        return None, f"analysis failed ({type(exc).__name__})", False


def _content_length(resp: HTTPResponse) -> int | None:
    try:
        value = int(resp.headers.get("Content-Length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _identity(resp: HTTPResponse) -> bool:
    """True when the body comes as stored: no Content-Encoding, or ``identity``."""
    return resp.headers.get("Content-Encoding", "").strip().lower() in ("", "identity")


def _media_type(resp: HTTPResponse) -> str | None:
    value = resp.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    return value or None
