"""One deadline for all fetches of a request, bounded concurrency, and
kept-alive connections reused only for the checked address. Slow servers
are real threads on 127.0.0.1."""

from __future__ import annotations

import http.server
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from labelcheck.fetch import FetchPolicy, MediaFetcher, alarm, fetch_all
from labelcheck.fetch.batch import GRACE
from labelcheck.pipeline.config import ConfigError
from labelcheck.web.app import create_app

MARGIN = 0.75  # seconds on top of the deadline and its grace, for a busy 2-core machine


class SlowSite:
    """/slow sends its headers, then one byte every 0.1 s for ``drip`` seconds;
    /stall its headers, then nothing for as long; /fast answers at once. Counts connections and the most served at once."""

    def __init__(self, drip: float = 30.0):
        self.active = self.peak = 0
        self.peers: set = set()
        self.lock = threading.Lock()
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with site.lock:
                    site.active += 1
                    site.peak = max(site.peak, site.active)
                    site.peers.add(self.client_address)
                try:
                    if self.path.startswith("/stall"):  # the headers, then nothing
                        self.send_response(200)
                        self.send_header("Content-Length", "1000")
                        self.end_headers()
                        self.wfile.flush()
                        time.sleep(drip)
                        return
                    if self.path.startswith("/fast"):
                        body = b"fast body"
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                    self.send_response(200)
                    self.send_header("Content-Length", "1000000")
                    self.end_headers()
                    end = time.monotonic() + drip
                    while time.monotonic() < end:
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.1)
                except OSError:
                    self.close_connection = True
                finally:
                    with site.lock:
                        site.active -= 1

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow():
    s = SlowSite()
    yield s
    s.close()


def fetcher(**policy) -> MediaFetcher:
    policy.setdefault("allow", ("127.0.0.1",))
    policy.setdefault("read_timeout", 5.0)
    return MediaFetcher(FetchPolicy(**policy))


@pytest.mark.parametrize("n", [9, 100])
def test_slow_urls_share_one_deadline(slow, n):
    f = fetcher()
    start = time.monotonic()
    results = fetch_all(f, [slow.url(f"/slow?{i}") for i in range(n)], seconds=1.0)
    took = time.monotonic() - start
    assert took < 1.0 + GRACE + MARGIN, took
    assert [r.reason for r in results] == ["deadline"] * n
    assert all(not r.ok and "ran out" in r.detail for r in results)


def test_fast_urls_finish_while_slow_ones_hit_the_deadline(slow):
    urls = [slow.url("/slow?a"), slow.url("/fast?b"), slow.url("/slow?c"), slow.url("/fast?d")]
    results = fetch_all(fetcher(), urls, seconds=1.0)
    assert [r.ok for r in results] == [False, True, False, True]
    assert [r.reason for r in results] == ["deadline", None, "deadline", None]


def test_the_fetch_own_limit_is_timeout_not_deadline(slow):
    result = fetch_all(fetcher(total_timeout=0.5), [slow.url("/slow")], seconds=5.0)[0]
    assert result.reason == "timeout"


@pytest.mark.parametrize("seconds, policy, reason", [(0.5, {}, "deadline"), (5.0, {"total_timeout": 0.5}, "timeout")])
def test_a_read_timing_out_as_time_runs_out_names_the_limit_that_ran_out(slow, monkeypatch, seconds, policy, reason):
    # On a busy machine the alarm that shuts a deadline's sockets can run
    # late, and a read's own timeout (set to the time left) fire first: the
    # failure still names the limit whose time it was, not a slow server.
    monkeypatch.setattr(alarm, "at", lambda when, callback: _NeverRings())
    result = fetch_all(fetcher(**policy), [slow.url("/stall")], seconds=seconds)[0]
    assert (result.reason, "ran out" in result.detail) == (reason, reason == "deadline"), result.detail


class _NeverRings:
    def cancel(self) -> None:
        pass


def test_per_request_concurrency_is_bounded(slow):
    fetch_all(fetcher(), [slow.url(f"/slow?{i}") for i in range(12)], seconds=1.0, per_request=3)
    assert slow.peak == 3


def test_process_wide_concurrency_is_bounded(slow):
    f = fetcher(max_concurrent=4)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(fetch_all, f, [slow.url(f"/slow?a{i}") for i in range(6)], seconds=2.0)
        wait_until(lambda: slow.active == 4)
        second = fetch_all(f, [slow.url(f"/slow?b{i}") for i in range(3)], seconds=0.5)
        assert slow.peak == 4 and len(slow.peers) == 4  # the second request opened nothing
        assert [r.reason for r in second] == ["deadline"] * 3
        assert all("ran out" in r.detail for r in second)
        assert {r.reason for r in first.result()} == {"deadline"}


def wait_until(condition, seconds=5.0):
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.01)


def test_kept_alive_connections_are_reused(slow):
    f = fetcher()
    for i in range(5):
        assert f.fetch(slow.url(f"/fast?{i}")).ok
    assert len(slow.peers) == 1


def test_a_deadline_also_cuts_a_reused_connection(slow):
    f = fetcher()
    assert f.fetch(slow.url("/fast")).ok
    start = time.monotonic()
    result = f.fetch(slow.url("/slow"), deadline=time.monotonic() + 0.5)
    assert result.reason == "deadline" and time.monotonic() - start < 0.5 + MARGIN
    assert len(slow.peers) == 1  # the slow body came over the kept-alive connection


def test_verify_answers_fetch_failed_deadline_promptly(slow, tmp_path):
    app = create_app({"data_dir": tmp_path / "data", "verify_rate": 0,
                      "fetch_allow": "127.0.0.1", "fetch_deadline": 1.0})
    items = [{"media_url": slow.url("/fast")}] + [{"media_url": slow.url(f"/slow?{i}")} for i in range(9)]
    start = time.monotonic()
    r = app.test_client().post("/v1/verify", json={"items": items})
    took = time.monotonic() - start
    assert r.status_code == 200 and took < 1.0 + GRACE + MARGIN, took
    results = r.get_json()["results"]
    for res in results[1:]:
        assert res["status"] == "unverified" and "fetch_failed" in res["reasons"]
        assert res["fetch"]["reason"] == "deadline" and res["fetch"]["detail"]
    assert results[0]["fetch"]["ok"] and results[0]["binding"] == "fetched"


def test_fetch_deadline_must_be_positive(tmp_path):
    for bad in (0, -1, "nan"):
        with pytest.raises(ConfigError, match="fetch_deadline"):
            create_app({"data_dir": tmp_path / "d", "fetch_deadline": bad})
