"""The media fetcher against real servers on 127.0.0.1, and refusals before any connection.

Every test runs with ``socket.socket.connect`` wrapped: each attempt is
recorded, and one to a non-loopback address fails the test instead of
leaving the machine. Names other than literals are answered by injected
resolvers, so no real DNS lookup is made either.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import http.server
import ipaddress
import logging
import os
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from hypothesis import HealthCheck, given, settings, strategies as st

from labelcheck.fetch.fetcher import REASONS, FetchPolicy, FetchResult, MediaFetcher
from labelcheck.fetch.pinned import PinnedAdapter

LOCAL = ("127.0.0.1",)


# --- fixtures -----------------------------------------------------------


@pytest.fixture(autouse=True)
def connects(monkeypatch):
    """Every address a socket connects to; non-loopback ones are stopped."""
    attempts: list[str] = []
    real_connect = socket.socket.connect

    def recording_connect(sock, address):
        host = address[0] if isinstance(address, tuple) else str(address)
        attempts.append(host)
        if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
            raise AssertionError(f"a test tried to reach {address!r}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", recording_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", lambda sock, address: recording_connect(sock, address) or 0)
    return attempts


@pytest.fixture(autouse=True)
def lookups(monkeypatch):
    """Hosts getaddrinfo was asked to resolve (numeric-only parses aside); a name would be real DNS."""
    names: list[str] = []
    real = socket.getaddrinfo

    def recording_getaddrinfo(host, *args, **kwargs):
        flags = kwargs.get("flags", args[3] if len(args) > 3 else 0)
        text = host.decode() if isinstance(host, bytes) else host
        if text is not None and not flags & socket.AI_NUMERICHOST:
            names.append(text)
            try:
                ipaddress.ip_address(text.split("%")[0])
            except ValueError:
                raise AssertionError(f"a test looked up {host!r} in DNS") from None
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording_getaddrinfo)
    return names


def send(handler, status=200, body=b"", headers=None, length=True):
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    if length:
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class Site:
    """A threaded HTTP/1.1 server on 127.0.0.1 with per-test routes."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.routes: dict = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                site.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = site.routes.get(self.path.split("?")[0])
                try:
                    if route is None:
                        send(self, 404, b"not here")
                    else:
                        route(self)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass  # the fetcher hung up, as it should when it stops early
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.seen]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site():
    s = Site()
    yield s
    s.close()


def fetcher(resolver=None, **policy) -> MediaFetcher:
    policy.setdefault("allow", LOCAL)
    policy.setdefault("connect_timeout", 2.0)
    policy.setdefault("read_timeout", 2.0)
    policy.setdefault("total_timeout", 5.0)
    cache_size = policy.pop("cache_size", 16)
    session_factory = policy.pop("session_factory", None)
    return MediaFetcher(FetchPolicy(**policy), cache_size=cache_size, resolver=resolver,
                        session_factory=session_factory)


def refuses_every_name(host, port):
    raise AssertionError(f"the resolver was asked for {host!r}")


def table_resolver(table: dict[str, list[str]]):
    calls: list[str] = []

    def resolve(host, port):
        calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    resolve.calls = calls
    return resolve


def assert_failed(result: FetchResult, reason: str):
    assert isinstance(result, FetchResult)
    assert (result.ok, result.reason) == (False, reason), result
    assert result.sha256 is None and result.size is None and result.detail


# --- URLs refused before any lookup or connection -----------------------


@pytest.mark.parametrize("url, reason", [
    ("ftp://127.0.0.1/a.png", "scheme_refused"),
    ("file:///etc/passwd", "scheme_refused"),
    ("gopher://127.0.0.1:70/", "scheme_refused"),
    ("javascript:alert(1)", "scheme_refused"),
    ("data:image/png;base64,AAAA", "scheme_refused"),
    ("http://user:secret@127.0.0.1/a.png", "bad_url"),
    ("http://user@127.0.0.1/a.png", "bad_url"),
    ("http:///a.png", "bad_url"),
    ("http://127.0.0.1:99999/", "bad_url"),
    ("http://127.0.0.1:0/", "bad_url"),
    ("http://127.0.0.1:25/", "bad_url"),
    ("https://127.0.0.1:6667/", "bad_url"),
    ("example.com/a.png", "bad_url"),
    ("//example.com/a.png", "bad_url"),
    ("", "bad_url"),
    (None, "bad_url"),
    (42, "bad_url"),
    ("http://a b/", "bad_url"),
    ("http://example.com/a\nb", "bad_url"),
    ("http://example.com/" + "a" * 9000, "bad_url"),
    ("http://[fe80::1%25eth0]/", "bad_url"),
    ("http://bad_host!/", "bad_url"),
])
def test_bad_and_foreign_urls_are_refused_up_front(url, reason, connects):
    result = fetcher(resolver=refuses_every_name).fetch(url)
    assert_failed(result, reason)
    assert connects == []


# --- addresses refused before any connection ----------------------------


NAMES = {
    "metadata.example": ["169.254.169.254"],
    "intranet.example": ["10.0.0.7"],
    "mixed.example": ["93.184.215.14", "10.0.0.1"],
    "v6meta.example": ["fd00:ec2::254"],
    "mapped.example": ["::ffff:192.168.0.1"],
    "cgnat.example": ["100.64.0.1"],
}


@pytest.mark.parametrize("host", [
    "127.0.0.1", "localhost", "LOCALHOST.", "api.localhost", "127.1", "0x7f000001", "2130706433",
    "017700000001", "127.0.0.1.", "[::1]", "[::ffff:127.0.0.1]", "[0:0:0:0:0:ffff:7f00:1]",
    "10.0.0.1", "10.255.0.9", "172.16.0.1", "172.31.9.9", "192.168.1.1", "169.254.169.254",
    "[fd00:ec2::254]", "100.64.0.1", "100.100.100.200", "0.0.0.0", "0", "224.0.0.1", "[ff02::1]",
    "[fe80::1]", "[::]", "[64:ff9b::a9fe:a9fe]", "[2002:a00:1::]",
    *NAMES,
])
def test_non_public_destinations_are_refused_without_connecting(host, connects):
    f = fetcher(resolver=table_resolver(NAMES), allow=())
    result = f.fetch(f"http://{host}:8080/media.png?sig=1")
    assert_failed(result, "address_refused")
    assert connects == []


def test_refusal_detail_says_what_the_name_resolved_to():
    f = fetcher(resolver=table_resolver(NAMES), allow=())
    assert "10.1.2.3 is a private address (RFC 1918)" == f.fetch("http://10.1.2.3/x.png").detail
    detail = f.fetch("https://metadata.example/latest/meta-data/").detail
    assert detail.startswith("metadata.example resolves to 169.254.169.254, which is a cloud metadata address")


def test_without_the_allowlist_the_local_server_is_refused(site, connects):
    site.routes["/a.png"] = lambda h: send(h, body=b"x")
    assert_failed(fetcher(allow=()).fetch(site.url("/a.png")), "address_refused")
    assert connects == [] and site.seen == []


def test_allowlist_for_another_address_does_not_open_loopback(site, connects):
    site.routes["/a.png"] = lambda h: send(h, body=b"x")
    assert_failed(fetcher(allow=("127.0.0.2", "10.0.0.0/8")).fetch(site.url("/a.png")), "address_refused")
    assert connects == []


# --- the connection goes to the checked address -------------------------


def test_connection_is_pinned_to_the_checked_address(site, connects, lookups):
    site.routes["/a.png"] = lambda h: send(h, body=b"pinned", headers={"Content-Type": "image/png"})
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])  # a rebinding name: the second answer is private
    calls = []

    def rebinding(host, port):
        calls.append((host, port))
        return next(answers)

    result = fetcher(resolver=rebinding, allow=("media.test",)).fetch(site.url("/a.png", host="media.test"))
    assert result.ok, result
    assert calls == [("media.test", site.port)]  # one lookup, the checked one
    assert connects == ["127.0.0.1"]
    assert "media.test" not in lookups  # urllib3 did not look the name up again
    assert site.seen[0][1]["host"] == f"media.test:{site.port}"
    assert result.final_url == site.url("/a.png", host="media.test")


def test_a_name_allowed_by_cidr_connects_to_its_address(site, connects):
    site.routes["/a.png"] = lambda h: send(h, body=b"cidr")
    f = fetcher(resolver=table_resolver({"media.test": ["127.0.0.1"]}), allow=("127.0.0.0/8",))
    assert f.fetch(site.url("/a.png", host="media.test")).ok
    assert connects == ["127.0.0.1"]


def test_next_address_is_tried_when_one_refuses_the_connection(site, connects):
    site.routes["/a.png"] = lambda h: send(h, body=b"second")
    resolver = table_resolver({"media.test": ["127.0.0.2", "127.0.0.1"]})
    result = fetcher(resolver=resolver, allow=("127.0.0.0/8",)).fetch(site.url("/a.png", host="media.test"))
    assert result.ok, result
    assert connects == ["127.0.0.2", "127.0.0.1"]


def test_the_pinned_adapter_serves_only_its_host(site, connects):
    site.routes["/a.png"] = lambda h: send(h, body=b"x")
    adapter = PinnedAdapter("http", "media.test", ipaddress.ip_address("127.0.0.1"))
    with requests.Session() as session:
        session.mount("http://", adapter)
        ok = session.get(site.url("/a.png", host="media.test"), headers={"Host": "media.test"})
        assert ok.content == b"x"
        with pytest.raises(requests.exceptions.InvalidURL):
            session.get(site.url("/a.png", host="elsewhere.test"))
    assert connects == ["127.0.0.1"]


def test_connection_refused_is_connect_failed():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        result = fetcher().fetch(f"http://127.0.0.1:{port}/a.png")
    assert_failed(result, "connect_failed")
    assert "refused" in result.detail.lower()


# --- bodies, hashes, analysis -------------------------------------------


def test_fetch_hashes_the_body_and_reports_its_type(site):
    body = os.urandom(300_000)
    site.routes["/img.png"] = lambda h: send(h, body=body, headers={"Content-Type": "Image/PNG; charset=binary"})
    result = fetcher().fetch(site.url("/img.png?w=1"))
    assert result == FetchResult(True, site.url("/img.png?w=1"), site.url("/img.png?w=1"),
                                 hashlib.sha256(body).hexdigest(), len(body), "image/png", None, None)
    headers = site.seen[0][1]
    assert headers["user-agent"] == FetchPolicy().user_agent
    assert headers["accept-encoding"] == "identity"
    assert "cookie" not in headers and "authorization" not in headers


def test_analyze_reads_the_whole_body_with_seeks(site):
    body = os.urandom(1_500_000)  # more than is kept in memory: spooled to disk
    site.routes["/big.jpg"] = lambda h: send(h, body=body, headers={"Content-Type": "image/jpeg"})

    def analyze(f):
        head = f.read(4)
        f.seek(-8, os.SEEK_END)
        tail = f.read()
        f.seek(0)
        return {"head": head, "tail": tail, "sha": hashlib.sha256(f.read()).hexdigest()}

    result = fetcher().fetch(site.url("/big.jpg"), analyze)
    assert result.ok and result.size == len(body)
    assert result.analysis == {"head": body[:4], "tail": body[-8:], "sha": result.sha256}


def test_analyze_is_not_called_when_the_fetch_fails(site):
    calls = []
    result = fetcher().fetch(site.url("/missing.png"), lambda f: calls.append(f))
    assert_failed(result, "http_error")
    assert calls == []


def test_a_failing_analysis_keeps_the_hash_and_says_so(site):
    site.routes["/odd.png"] = lambda h: send(h, body=b"not really a png")

    def broken(f):
        raise ValueError("no labels here")

    result = fetcher().fetch(site.url("/odd.png"), broken)
    assert result.ok and result.sha256 == hashlib.sha256(b"not really a png").hexdigest()
    assert result.analysis is None and result.detail == "analysis failed (ValueError)"


@pytest.mark.parametrize("status", [404, 410, 500, 503, 204, 206])
def test_error_statuses_are_http_error(site, status):
    site.routes["/x"] = lambda h: send(h, status, b"" if status == 204 else b"oops")
    result = fetcher().fetch(site.url("/x"))
    assert_failed(result, "http_error")
    assert str(status) in result.detail


# --- size cap -----------------------------------------------------------


def test_declared_length_over_the_cap_is_refused_before_reading(site):
    site.routes["/huge"] = lambda h: send(h, headers={"Content-Length": str(10**12)}, length=False)
    result = fetcher(max_bytes=1000).fetch(site.url("/huge"))
    assert_failed(result, "too_large")
    assert "Content-Length 1000000000000" in result.detail


def test_exactly_the_cap_is_fine_one_more_is_not(site):
    site.routes["/1000"] = lambda h: send(h, body=b"a" * 1000)
    site.routes["/1001"] = lambda h: send(h, body=b"a" * 1001)
    f = fetcher(max_bytes=1000)
    assert f.fetch(site.url("/1000")).size == 1000
    assert_failed(f.fetch(site.url("/1001")), "too_large")


def chunked(handler, chunks, delay=0.0):
    handler.send_response(200)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    for chunk in chunks:
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        handler.wfile.flush()
        time.sleep(delay)
    handler.wfile.write(b"0\r\n\r\n")


def test_chunked_body_is_cut_off_at_the_cap(site):
    sent = []

    def endless(h):
        for _ in range(10_000):  # 40 MB if nobody stops it
            sent.append(1)
            h.wfile.write(b"1000\r\n" + b"z" * 4096 + b"\r\n")
        h.wfile.write(b"0\r\n\r\n")

    site.routes["/stream"] = lambda h: (h.send_response(200), h.send_header("Transfer-Encoding", "chunked"),
                                        h.end_headers(), endless(h))
    result = fetcher(max_bytes=50_000).fetch(site.url("/stream"))
    assert_failed(result, "too_large")
    assert len(sent) < 10_000


def test_chunked_body_under_the_cap_is_hashed(site):
    parts = [b"one", b"two", b"three" * 1000]
    site.routes["/chunks"] = lambda h: chunked(h, parts)
    result = fetcher().fetch(site.url("/chunks"))
    assert result.ok and result.sha256 == hashlib.sha256(b"".join(parts)).hexdigest()


def test_body_without_length_until_close_is_capped(site):
    def until_close(h):
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        for _ in range(1000):
            h.wfile.write(b"q" * 4096)

    site.routes["/eof"] = until_close
    assert_failed(fetcher(max_bytes=10_000).fetch(site.url("/eof")), "too_large")


def test_compressed_body_is_capped_after_decoding(site):
    bomb = gzip.compress(b"\0" * 5_000_000)  # ~5 KB on the wire
    site.routes["/bomb"] = lambda h: send(h, body=bomb, headers={"Content-Encoding": "gzip"})
    result = fetcher(max_bytes=100_000).fetch(site.url("/bomb"))
    assert_failed(result, "too_large")


def test_truncated_body_is_an_error(site):
    def short(h):
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.end_headers()
        h.wfile.write(b"only this")

    site.routes["/short"] = short
    assert_failed(fetcher().fetch(site.url("/short")), "http_error")


# --- time limits ----------------------------------------------------------


def test_a_stalled_read_times_out(site):
    def stall(h):
        h.send_response(200)
        h.send_header("Content-Length", "10")
        h.end_headers()
        h.wfile.write(b"12345")
        h.wfile.flush()
        time.sleep(3)

    site.routes["/stall"] = stall
    start = time.monotonic()
    result = fetcher(read_timeout=0.3).fetch(site.url("/stall"))
    assert_failed(result, "timeout")
    assert time.monotonic() - start < 2


def test_slow_headers_time_out(site):
    site.routes["/late"] = lambda h: (time.sleep(3), send(h, body=b"late"))
    start = time.monotonic()
    assert_failed(fetcher(read_timeout=0.3).fetch(site.url("/late")), "timeout")
    assert time.monotonic() - start < 2


def test_a_drip_feed_is_stopped_by_the_total_deadline(site):
    # Each byte comes well within the read timeout; only the total deadline stops it.
    site.routes["/drip"] = lambda h: chunked(h, [b"d"] * 200, delay=0.02)
    start = time.monotonic()
    result = fetcher(read_timeout=1.0, total_timeout=0.5).fetch(site.url("/drip"))
    assert_failed(result, "timeout")
    assert 0.4 < time.monotonic() - start < 2


def test_a_drip_feed_without_framing_is_not_mistaken_for_a_whole_body(site):
    def drip(h):
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        for _ in range(200):
            h.wfile.write(b"d")
            h.wfile.flush()
            time.sleep(0.02)

    site.routes["/drip"] = drip
    start = time.monotonic()
    assert_failed(fetcher(read_timeout=1.0, total_timeout=0.5).fetch(site.url("/drip")), "timeout")
    assert time.monotonic() - start < 2


def test_a_slow_resolver_counts_against_the_deadline():
    def slow(host, port):
        time.sleep(2)
        return ["127.0.0.1"]

    start = time.monotonic()
    result = fetcher(resolver=slow, total_timeout=0.3).fetch("http://slow.test/a.png")
    assert_failed(result, "timeout")
    assert time.monotonic() - start < 1.5


@pytest.mark.parametrize("answer, detail", [
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "could not be resolved"),
    ([], "has no addresses"),
    (["not-an-address"], "invalid address"),
])
def test_resolution_failures_are_dns_failed(answer, detail, connects):
    def resolver(host, port):
        if isinstance(answer, Exception):
            raise answer
        return answer

    result = fetcher(resolver=resolver).fetch("http://nowhere.test/a.png")
    assert_failed(result, "dns_failed")
    assert detail in result.detail and connects == []


# --- redirects ------------------------------------------------------------


def redirect(to, status=302):
    return lambda h: send(h, status, headers={"Location": to})


def test_redirects_are_followed_and_relative_locations_resolved(site):
    site.routes["/a/start"] = redirect("next?x=1", 301)
    site.routes["/a/next"] = redirect("/b/../c/abs", 303)
    site.routes["/c/abs"] = redirect(f"//127.0.0.1:{site.port}/final", 307)
    site.routes["/final"] = lambda h: send(h, body=b"landed")
    result = fetcher(max_redirects=3).fetch(site.url("/a/start"))
    assert result.ok and result.final_url == site.url("/final")
    assert result.url == site.url("/a/start")
    assert site.paths() == ["/a/start", "/a/next?x=1", "/c/abs", "/final"]


def test_too_many_redirects(site):
    for i in range(10):
        site.routes[f"/hop{i}"] = redirect(f"/hop{i + 1}", 308)
    result = fetcher(max_redirects=3).fetch(site.url("/hop0"))
    assert_failed(result, "too_many_redirects")
    assert site.paths() == ["/hop0", "/hop1", "/hop2", "/hop3"]


def test_a_redirect_loop_ends(site):
    site.routes["/loop"] = redirect("/loop")
    assert_failed(fetcher().fetch(site.url("/loop")), "too_many_redirects")
    assert len(site.seen) == 6  # the first request and five redirects


def test_redirect_body_is_not_read(site):
    def heavy_redirect(h):
        h.send_response(302)
        h.send_header("Location", "/final")
        h.send_header("Content-Length", str(10**10))
        h.end_headers()
        h.wfile.write(b"r" * 65536)  # and then nothing: reading it all would hang

    site.routes["/r"] = heavy_redirect
    site.routes["/final"] = lambda h: send(h, body=b"ok")
    start = time.monotonic()
    assert fetcher(max_bytes=1000).fetch(site.url("/r")).ok
    assert time.monotonic() - start < 1.5


@pytest.mark.parametrize("location", [
    "http://10.0.0.1/internal.png",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[fd00:ec2::254]/latest/",
    "http://metadata.example/computeMetadata/v1/",
    "http://0x0a000001/",
    "http://localhost:{port}/final",
])
def test_redirect_to_a_refused_address_is_not_followed(site, connects, location):
    site.routes["/go"] = redirect(location.format(port=site.port))
    site.routes["/final"] = lambda h: send(h, body=b"never")
    f = fetcher(resolver=table_resolver(NAMES))
    result = f.fetch(site.url("/go"))
    assert_failed(result, "address_refused")
    assert result.detail.startswith("redirected to ")
    assert connects == ["127.0.0.1"] and site.paths() == ["/go"]


@pytest.mark.parametrize("location, reason", [
    ("file:///etc/passwd", "scheme_refused"),
    ("ftp://127.0.0.1/a.png", "scheme_refused"),
    ("gopher://127.0.0.1:70/_", "scheme_refused"),
    ("http://user:pw@127.0.0.1/", "bad_url"),
    ("http://127.0.0.1:25/", "bad_url"),
])
def test_redirect_to_another_scheme_or_bad_url_is_refused(site, connects, location, reason):
    site.routes["/go"] = redirect(location)
    result = fetcher().fetch(site.url("/go"))
    assert_failed(result, reason)
    assert result.detail.startswith("redirect refused: ")
    assert connects == ["127.0.0.1"]


def test_redirect_without_location_is_an_error(site):
    site.routes["/nowhere"] = lambda h: send(h, 302)
    assert_failed(fetcher().fetch(site.url("/nowhere")), "http_error")


# --- cache and revalidation ------------------------------------------------


class Resource:
    """A route answering conditional requests the way static servers do."""

    def __init__(self, body: bytes, etag: str | None = '"v1"', last_modified: str | None = None):
        self.body, self.etag, self.last_modified = body, etag, last_modified

    def __call__(self, h):
        validators = {k: v for k, v in (("ETag", self.etag), ("Last-Modified", self.last_modified)) if v}
        inm, ims = h.headers.get("If-None-Match"), h.headers.get("If-Modified-Since")
        if (inm and inm == self.etag) or (ims and not inm and ims == self.last_modified):
            send(h, 304, headers=validators, length=False)
        else:
            send(h, body=self.body, headers={"Content-Type": "image/webp", **validators})


def test_etag_revalidation_reuses_the_cached_result(site):
    resource = Resource(b"first version")
    site.routes["/r.webp"] = resource
    analyses = []

    def analyze(f):
        analyses.append(1)
        return {"bytes": f.read()}

    f = fetcher()
    first = f.fetch(site.url("/r.webp"), analyze)
    second = f.fetch(site.url("/r.webp"), analyze)
    assert first.ok and not first.from_cache
    assert second.ok and second.from_cache
    assert (second.sha256, second.size, second.media_type, second.analysis) == \
        (first.sha256, first.size, "image/webp", {"bytes": b"first version"})
    assert len(analyses) == 1
    assert site.seen[1][1]["if-none-match"] == '"v1"'

    resource.body, resource.etag = b"second version", '"v2"'
    third = f.fetch(site.url("/r.webp"), analyze)
    assert not third.from_cache and third.sha256 == hashlib.sha256(b"second version").hexdigest()
    assert third.analysis == {"bytes": b"second version"} and len(analyses) == 2
    assert f.fetch(site.url("/r.webp"), analyze).from_cache
    assert site.seen[-1][1]["if-none-match"] == '"v2"'


def test_last_modified_revalidation(site):
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"
    resource = Resource(b"dated", etag=None, last_modified=stamp)
    site.routes["/d.png"] = resource
    f = fetcher()
    assert not f.fetch(site.url("/d.png")).from_cache
    again = f.fetch(site.url("/d.png"))
    assert again.from_cache and again.sha256 == hashlib.sha256(b"dated").hexdigest()
    assert site.seen[1][1]["if-modified-since"] == stamp
    resource.body, resource.last_modified = b"redated", "Thu, 22 Oct 2015 07:28:00 GMT"
    changed = f.fetch(site.url("/d.png"))
    assert not changed.from_cache and changed.sha256 == hashlib.sha256(b"redated").hexdigest()


def test_revalidation_follows_the_same_redirects(site):
    site.routes["/short"] = redirect("/long/r.webp")
    site.routes["/long/r.webp"] = Resource(b"behind a redirect")
    f = fetcher()
    assert not f.fetch(site.url("/short")).from_cache
    again = f.fetch(site.url("/short"))
    assert again.from_cache and again.final_url == site.url("/long/r.webp")
    assert "if-none-match" not in site.seen[2][1]  # the redirect hop is asked plainly
    assert site.seen[3][1]["if-none-match"] == '"v1"'


def test_weak_etags_and_no_store_are_not_used_for_revalidation(site):
    site.routes["/weak"] = Resource(b"weak", etag='W/"w1"')
    site.routes["/nostore"] = lambda h: send(h, body=b"private", headers={"ETag": '"n1"', "Cache-Control": "no-store"})
    f = fetcher()
    for path in ("/weak", "/nostore"):
        f.fetch(site.url(path))
        assert not f.fetch(site.url(path)).from_cache
    assert not any("if-none-match" in headers for _, headers in site.seen)
    assert f.cache_len == 0


def test_a_304_nobody_asked_for_is_an_error(site):
    site.routes["/cheeky"] = lambda h: send(h, 304, length=False)
    assert_failed(fetcher().fetch(site.url("/cheeky")), "http_error")


def test_a_new_analyzer_or_a_missing_analysis_fetches_in_full(site):
    site.routes["/a.png"] = Resource(b"pixels")
    f = fetcher()
    assert f.fetch(site.url("/a.png")).analysis is None
    with_analysis = f.fetch(site.url("/a.png"), lambda fp: len(fp.read()))
    assert not with_analysis.from_cache and with_analysis.analysis == 6
    assert "if-none-match" not in site.seen[1][1]


def test_the_cache_is_bounded_and_least_recently_used(site):
    for name in "abc":
        site.routes[f"/{name}"] = Resource(name.encode() * 10, etag=f'"{name}"')
    f = fetcher(cache_size=2)
    for name in "abc":
        f.fetch(site.url(f"/{name}"))
    assert f.cache_len == 2
    assert f.fetch(site.url("/c")).from_cache
    assert f.fetch(site.url("/b")).from_cache
    assert not f.fetch(site.url("/a")).from_cache  # evicted first, now fetched in full
    assert f.cache_len == 2
    assert not f.fetch(site.url("/c")).from_cache  # "/a" pushed out the least recent, "/c"


def test_concurrent_fetches_share_one_fetcher(site):
    bodies = {f"/m{i}": os.urandom(20_000) for i in range(6)}
    for path, body in bodies.items():
        site.routes[path] = Resource(body, etag=f'"{path}"')
    f = fetcher(cache_size=3)
    jobs = [path for path in bodies for _ in range(4)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda p: (p, f.fetch(site.url(p))), jobs))
    for path, result in results:
        assert result.ok and result.sha256 == hashlib.sha256(bodies[path]).hexdigest(), result
    assert f.cache_len == 3


# --- TLS: certificate checked for the URL's name, not the pinned address ------


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labelcheck test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "media.test")]))
            .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("media.test")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    d = tmp_path_factory.mktemp("pki")
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (d / "leaf.key").write_bytes(leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return d


@pytest.fixture
def tls_site(pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "leaf.pem", pki / "leaf.key")
    sni: list[str | None] = []
    ctx.sni_callback = lambda sock, name, context: sni.append(name)
    s = Site(tls=ctx)
    s.sni = sni
    s.routes["/a.png"] = lambda h: send(h, body=b"over tls")
    yield s
    s.close()


def trusting(pki):
    def factory():
        session = requests.Session()
        session.verify = str(pki / "ca.pem")
        return session
    return factory


def test_https_keeps_the_name_for_sni_and_the_certificate(tls_site, pki, connects):
    resolver = table_resolver({"media.test": ["127.0.0.1"]})
    f = fetcher(resolver=resolver, allow=("media.test",), session_factory=trusting(pki))
    result = f.fetch(tls_site.url("/a.png", host="media.test"))
    assert result.ok, result
    assert result.sha256 == hashlib.sha256(b"over tls").hexdigest()
    assert tls_site.sni == ["media.test"] and connects == ["127.0.0.1"]
    assert tls_site.seen[0][1]["host"] == f"media.test:{tls_site.port}"


def test_https_certificate_for_another_name_is_refused(tls_site, pki):
    resolver = table_resolver({"other.test": ["127.0.0.1"]})
    f = fetcher(resolver=resolver, allow=("other.test",), session_factory=trusting(pki))
    result = f.fetch(tls_site.url("/a.png", host="other.test"))
    assert_failed(result, "connect_failed")
    assert "other.test" in result.detail and tls_site.seen == []


def test_https_certificates_are_verified_by_default(tls_site):
    resolver = table_resolver({"media.test": ["127.0.0.1"]})
    result = fetcher(resolver=resolver, allow=("media.test",)).fetch(tls_site.url("/a.png", host="media.test"))
    assert_failed(result, "connect_failed")
    assert "certificate" in result.detail.lower() and tls_site.seen == []


# --- the API's promises ----------------------------------------------------


def test_policy_errors_are_reported_at_construction():
    with pytest.raises(ValueError, match="'10.0.0.0/33'"):
        FetchPolicy(allow=("127.0.0.1", "10.0.0.0/33"))
    for bad in ({"max_bytes": 0}, {"max_redirects": -1}, {"read_timeout": 0}, {"total_timeout": float("nan")}):
        with pytest.raises(ValueError):
            FetchPolicy(**bad)
    assert FetchPolicy(allow="127.0.0.1").allow == ("127.0.0.1",)


def test_logs_never_hold_the_query_string(site, caplog):
    site.routes["/p.png"] = lambda h: send(h, body=b"x")
    caplog.set_level(logging.INFO)  # urllib3 logs request lines at DEBUG only
    caplog.set_level(logging.DEBUG, logger="labelcheck.fetch.fetcher")
    f = fetcher(resolver=table_resolver(NAMES))
    f.fetch(site.url("/p.png?token=s3cr3t"))
    f.fetch(site.url("/missing?token=s3cr3t"))
    f.fetch("http://intranet.example/x?token=s3cr3t")

    def unreadable(fp):
        raise ValueError("no labels")

    f.fetch(site.url("/p.png?token=s3cr3t"), unreadable)
    assert caplog.records and "s3cr3t" not in caplog.text


hosts = st.sampled_from([
    "127.0.0.1", "localhost", "127.1", "0x7f000001", "[::1]", "10.0.0.1", "169.254.169.254",
    "metadata.example", "intranet.example", "unknown.example", "", "[::ffff:10.0.0.1]", "0",
])
urls = st.one_of(
    st.text(max_size=80),
    st.builds("{}://{}{}/{}".format,  # the slash keeps random text out of the host
              st.sampled_from(["http", "https", "HTTP", "ftp", "file", "", "javascript"]),
              hosts,
              st.sampled_from(["", ":80", ":0", ":25", ":65536", ":-1", ":8080", ":x"]),
              st.text(max_size=40)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(url=urls)
def test_fetch_never_raises_and_never_connects_to_a_refused_host(url, connects):
    result = fetcher(resolver=table_resolver(NAMES), allow=()).fetch(url)
    assert isinstance(result, FetchResult) and not result.ok
    assert result.reason in REASONS and result.detail
    assert connects == []
