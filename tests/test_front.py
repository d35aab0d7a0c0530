"""deploy/nginx.conf in front of a real ``labelcheck serve``: a real nginx,
from a temporary prefix on 127.0.0.1, with 16 clients trickling request
bodies; /healthz and a verify are not delayed by them."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from labelcheck.pipeline.config import Config
from labelcheck.web.runner import KEEPALIVE
from slowclients import Trickler, free_port, serve, signal_server, stop, wait_healthy

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                        if os.access(p, os.X_OK)), None)
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (scripts/test installs "
                                                        "Debian's nginx when run as root)")


def site_config(listen: int, upstreams: list[int], log: Path) -> str:
    """deploy/nginx.conf with only the ports (a server line per upstream) and the log path changed."""
    text = SITE.read_text()
    text = re.sub(r"listen 80;", f"listen 127.0.0.1:{listen};", text)
    text = re.sub(r"\n\s*listen \[::\]:80;", "", text)
    text = text.replace("server 127.0.0.1:8080;", "\n    ".join(f"server 127.0.0.1:{u};" for u in upstreams))
    text = text.replace("/var/log/nginx/labelcheck.access.log", str(log))
    assert f"127.0.0.1:{listen}" in text and all(f"127.0.0.1:{u}" in text for u in upstreams) and str(log) in text
    return text


def main_config(prefix: Path, site: Path) -> str:
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    temps = "".join(f"    {kind}_temp_path {prefix / kind};\n"
                    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"{user}worker_processes 1;\ndaemon off;\npid {prefix / 'nginx.pid'};\n"
            f"error_log {prefix / 'error.log'} warn;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n{temps}    include {site};\n}}\n")


@contextlib.contextmanager
def nginx_before(prefix: Path, upstreams: list[int], *, healthy: bool = True):
    """A real nginx from deploy/nginx.conf in ``prefix`` in front of
    ``upstreams`` (up, unless ``healthy`` is false); yields the port it listens on."""
    listen = free_port()
    prefix.mkdir()
    site = prefix / "labelcheck.conf"
    site.write_text(site_config(listen, upstreams, prefix / "access.log"))
    conf = prefix / "nginx.conf"
    conf.write_text(main_config(prefix, site))
    check = subprocess.run([NGINX, "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    nginx = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        if healthy:
            wait_healthy(f"http://127.0.0.1:{listen}", nginx)
        else:
            _wait_listening(listen, nginx)
        yield listen
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise AssertionError(f"nginx is not listening on {port}")


@pytest.fixture
def front(tmp_path):
    upstream = free_port()
    server = serve(tmp_path / "data", upstream, "--workers", "1", "--threads", "4")
    try:
        with nginx_before(tmp_path / "nginx", [upstream]) as listen:
            yield listen, tmp_path / "nginx"
    finally:
        stop(server)


def timed(fn) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


@needs_nginx
@pytest.mark.slow
def test_slow_clients_do_not_delay_health_or_verify(front):
    port, prefix = front
    base = f"http://127.0.0.1:{port}"
    item = {"content_sha256": "ab" * 32, "page_url": "https://news.example/a"}

    def health():
        assert requests.get(base + "/healthz", timeout=10).status_code == 200

    def verify():
        r = requests.post(base + "/v1/verify", json={"items": [item]}, timeout=10)
        assert r.status_code == 200 and r.json()["results"][0]["receipt"]

    stop_event = threading.Event()
    clients = [Trickler(port, stop_event, headers_too=i % 2 == 1) for i in range(16)]
    try:
        for c in clients:
            c.start()
        time.sleep(1.0)  # all 16 connected and trickling
        slow = [timed(health) for _ in range(10)] + [timed(verify) for _ in range(5)]
        still = sum(c.is_alive() for c in clients)
    finally:
        stop_event.set()
        for c in clients:
            c.join(timeout=10)
    assert max(slow) < 1.0, slow
    assert still == 16  # nginx is still holding every trickler, not the server
    access = (prefix / "access.log").read_text()
    assert "/healthz" in access and "/v1/verify" in access
    assert "127.0.0.1" not in access  # no client addresses kept


@needs_nginx
@pytest.mark.slow
def test_the_body_limit_matches_the_server(front):
    port, _ = front
    limit = re.search(r"client_max_body_size (\d+)m;", SITE.read_text())
    assert limit and int(limit.group(1)) * 1024 * 1024 == Config().max_body
    r = requests.post(f"http://127.0.0.1:{port}/v1/verify", data=b"x" * (Config().max_body + 1),
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 413


def test_nginx_closes_idle_upstream_connections_before_the_server_does():
    """A request nginx sends on a kept-alive connection just as the server
    closes it for idleness is lost (a reset, and a POST is not retried): the
    upstream's keepalive_timeout must be shorter than the server's."""
    upstream = SITE.read_text().split("upstream labelcheck {", 1)[1].split("}", 1)[0]
    found = re.search(r"\n\s*keepalive_timeout (\d+)s;", upstream)
    assert found and int(found.group(1)) < KEEPALIVE


@needs_nginx
@pytest.mark.slow
def test_a_node_that_hangs_keeps_its_requests_and_the_other_answers(tmp_path):
    """deploy/nginx.conf in front of two nodes, one stopped (SIGSTOP, as a
    hung or paused host) for 8 s under load from 6 clients: the other
    answers the new requests meanwhile (least_conn: the stopped node holds
    the requests it has, and gets no more), the requests it held are
    answered once it continues, and no client sees an error."""
    stall = 8.0
    ports = [free_port(), free_port()]
    nodes = [serve(tmp_path / f"node{i}", port, "--workers", "1", "--threads", "4",
                   env={"LABELCHECK_VERIFY_RATE": "0"}) for i, port in enumerate(ports)]
    answers: list[tuple[float, float, object]] = []  # (sent at, took, status or error)
    done = threading.Event()

    def client():
        with requests.Session() as session:
            while not done.is_set():
                start = time.monotonic()
                try:
                    status = session.post(base + "/v1/verify", json={"items": [{"content_sha256": "ab" * 32}]},
                                          timeout=60).status_code
                except requests.RequestException as exc:
                    status = repr(exc)
                answers.append((start, time.monotonic() - start, status))

    try:
        with nginx_before(tmp_path / "nginx", ports) as listen:
            base = f"http://127.0.0.1:{listen}"
            clients = [threading.Thread(target=client) for _ in range(6)]
            for c in clients:
                c.start()
            time.sleep(2.0)
            stopped = time.monotonic()
            signal_server(nodes[1], signal.SIGSTOP)
            try:
                time.sleep(stall)
            finally:
                signal_server(nodes[1], signal.SIGCONT)
            time.sleep(1.0)
            done.set()
            for c in clients:
                c.join(timeout=60)
    finally:
        for node in nodes:
            stop(node)
    assert [a for a in answers if a[2] != 200] == []
    before = sum(1 for at, took, _ in answers if at + took < stopped) / 2.0
    during = sum(1 for at, took, _ in answers if stopped + 1 < at + took < stopped + stall) / (stall - 1)
    held = [took for at, took, _ in answers if at < stopped + 1 and at + took > stopped + stall]
    assert during > 0.3 * before, (before, during)  # answers a second, before and while one node is stopped
    assert 1 <= len(held) < 6  # the stopped node's requests, answered after it continued


@needs_nginx
def test_nginx_refusals_are_problems_too(tmp_path):
    """nginx's own answers (a body over the limit, a header too large, no
    server up) are RFC 9457 problems like the server's, not HTML; a request
    that is not HTTP, or whose line is too long, keeps its status (an error
    page for it would make it 500)."""
    down = free_port()  # nothing listens there: every proxied request is 502
    with nginx_before(tmp_path / "nginx", [down], healthy=False) as port:
        base = f"http://127.0.0.1:{port}"
        answers = {
            413: requests.post(base + "/v1/verify", data=b"x" * (Config().max_body + 1),
                               headers={"Content-Type": "application/json"}, timeout=10),
            431: requests.get(base + "/healthz", headers={"X-Big": "a" * 20000}, timeout=10),
            502: requests.post(base + "/v1/verify", json={"items": []}, timeout=10),
        }
        too_long = requests.get(base + "/v1/entries?x=" + "a" * 20000, timeout=10)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:  # a coding besides chunked: 501
            s.sendall(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
                      b"Connection: close\r\n\r\n0\r\n\r\n")
            coded = b""
            while chunk := s.recv(65536):
                coded += chunk
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GARBAGE\r\n\r\n")
            raw = b""
            while chunk := s.recv(65536):
                raw += chunk
    for status, r in answers.items():
        assert r.status_code == status and r.headers["Content-Type"] == "application/problem+json", r.text
        assert r.json()["status"] == status and r.json()["detail"]
    assert raw.startswith(b"HTTP/1.1 400 ") and too_long.status_code == 414
    head, _, body = coded.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 501 ") and b"Content-Type: application/problem+json" in head
    assert b'"status":501' in body
