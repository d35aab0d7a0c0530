"""Slow clients against a real ``labelcheck serve`` with nothing in front:
reading a request has a bounded time, so trickling clients hold the
server's threads for at most ``client_read_timeout`` seconds."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from labelcheck.web.runner import KEEPALIVE
from slowclients import (Trickler, free_port, healthz_latencies, serve, signal_server, stop, wait_healthy,
                         worker_pids)

READ_TIMEOUT = 2.0
MARGIN = 1.5


@pytest.mark.slow
def test_sixteen_trickling_clients_do_not_stall_the_server(tmp_path):
    port = free_port()
    proc = serve(tmp_path / "data", port, "--workers", "1", "--threads", "4",
                 env={"LABELCHECK_CLIENT_READ_TIMEOUT": str(READ_TIMEOUT)})
    base = f"http://127.0.0.1:{port}"
    stop_event = threading.Event()
    try:
        clients = [Trickler(port, stop_event, headers_too=i % 2 == 1) for i in range(16)]
        for c in clients:
            c.start()
        latencies = healthz_latencies(base, 3 * READ_TIMEOUT)
        stop_event.set()
        for c in clients:
            c.join(timeout=10)
        # Without the bound the threads stay held and /healthz waits as long as the tricklers go on.
        assert max(latencies) < READ_TIMEOUT + MARGIN, latencies
        assert all(c.cut_after is not None and c.cut_after < 2 * READ_TIMEOUT + MARGIN for c in clients)
        body_tricklers = [c for c in clients if not c.headers_too]
        assert any(c.answer.startswith(b"HTTP/1.1 408") for c in body_tricklers), [c.answer[:40] for c in clients]
        r = requests.post(base + "/v1/verify", json={"items": []}, timeout=10)
        assert r.status_code == 200
    finally:
        stop_event.set()
        out = stop(proc)
    assert "Traceback" not in out, out


def _exchange(port: int, pieces: list[bytes], pause: float) -> bytes:
    """Send ``pieces`` as separate writes, ``pause`` seconds apart; the answer's bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each piece its own segment
        for i, piece in enumerate(pieces):
            if i and pause:
                time.sleep(pause)
            sock.sendall(piece)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def test_a_request_in_pieces_is_answered_whole(tmp_path):
    """Headers and body in separate writes (as Python's http.client and
    requests send them), back to back or with pauses, a body in several
    writes, and a body over the limit sent straight after its headers:
    each gets the answer it would get in one write."""
    port = free_port()
    proc = serve(tmp_path / "data", port, "--workers", "1", "--threads", "2", env={"LABELCHECK_MAX_BODY": "4096"})
    try:
        body = json.dumps({"items": [{"content_sha256": "ab" * 32}]}).encode()
        head = (b"POST /v1/verify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body))
        for pieces, pause in (([head, body], 0), ([head, body[:9], body[9:20], body[20:]], 0.2),
                              ([head + body[:5], body[5:]], 0.05)):
            answer = _exchange(port, pieces, pause)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            results = json.loads(answer.split(b"\r\n\r\n", 1)[1])["results"]
            assert [r["status"] for r in results] == ["none"] and results[0]["receipt"]["index"] >= 0
        big = b'{"items": [' + b" " * 8000 + b"]}"
        answer = _exchange(port, [head.replace(b"%d" % len(body), b"%d" % len(big)), big], 0)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    finally:
        out = stop(proc)
    assert "Traceback" not in out, out


@pytest.mark.slow
@pytest.mark.parametrize("kept", [3, 0], ids=["kept-alive connections", "the rest of a request"])
def test_requests_that_arrive_while_the_server_is_stalled_are_answered(tmp_path, kept):
    """A server stalled (SIGSTOP, a paused VM) for longer than its keep-alive
    and read timeouts: requests that arrived meanwhile on kept-alive
    connections, and the rest of one half sent before, are answered once it
    runs again, rather than closed as idle or slow (which a front server
    reports as 502 and does not retry for a POST)."""
    port = free_port()
    proc = serve(tmp_path / "data", port, "--workers", "1", "--threads", "2",
                 env={"LABELCHECK_CLIENT_READ_TIMEOUT": str(READ_TIMEOUT)})
    body = json.dumps({"items": [{"content_sha256": "ab" * 32}]}).encode()
    head = (b"POST /v1/verify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body))
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(kept)]
    try:
        for conn in conns:
            conn.request("GET", "/healthz")
            answer = conn.getresponse()
            answer.read()
            assert answer.status == 200 and not answer.will_close
        half = socket.create_connection(("127.0.0.1", port), timeout=30)
        half.sendall(head + body[:10])
        time.sleep(0.5)  # the worker is reading it
        signal_server(proc, signal.SIGSTOP)
        try:
            for conn in conns:
                conn.request("POST", "/v1/verify", body=body, headers={"Content-Type": "application/json"})
            half.sendall(body[10:])
            time.sleep((KEEPALIVE if kept else READ_TIMEOUT) + 1.5)
        finally:
            signal_server(proc, signal.SIGCONT)
        for conn in conns:
            answer = conn.getresponse()
            results = json.loads(answer.read())["results"]
            assert answer.status == 200 and results[0]["receipt"]["index"] >= 0
        out = b""
        while chunk := half.recv(65536):
            out += chunk
        assert out.startswith(b"HTTP/1.1 200"), out[:200]
        half.close()
    finally:
        for conn in conns:
            conn.close()
        out = stop(proc)
    assert "Traceback" not in out, out


# ``labelcheck serve`` with a worker timeout of a few seconds (production: 60).
SHORT_TIMEOUT_SERVE = """
import sys
from labelcheck.pipeline.config import Config
from labelcheck.pipeline.services import validate
from labelcheck.web.app import prepare
from labelcheck.web.runner import run
cfg = Config.load({"host": "127.0.0.1", "port": int(sys.argv[1]), "data_dir": sys.argv[2], "workers": 2,
                   "threads": 2})
validate(cfg)
prepare(cfg)
run(cfg, timeout=int(sys.argv[3]))
"""


@pytest.mark.slow
def test_a_whole_server_stopped_past_the_worker_timeout_keeps_its_workers_and_a_stuck_worker_is_restarted(tmp_path):
    """The whole server stopped (a paused VM) for longer than the worker
    timeout: on waking, its workers are not taken for stuck (gunicorn's
    arbiter, stopped too, would find their reports stale and restart them
    with the requests they hold); every request sent meanwhile is answered.
    One worker stopped on its own is still restarted after the timeout."""
    timeout, port = 3, free_port()
    proc = subprocess.Popen([sys.executable, "-c", SHORT_TIMEOUT_SERVE, str(port), str(tmp_path / "data"),
                             str(timeout)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    body = json.dumps({"items": [{"content_sha256": "ab" * 32}]}).encode()
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(4)]
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        time.sleep(1.0)
        workers = worker_pids(proc)
        assert len(workers) == 2
        for conn in conns:
            conn.request("GET", "/healthz")
            conn.getresponse().read()
        signal_server(proc, signal.SIGSTOP)
        try:
            for conn in conns:
                conn.request("POST", "/v1/verify", body=body, headers={"Content-Type": "application/json"})
            time.sleep(2 * timeout)
        finally:
            signal_server(proc, signal.SIGCONT)
        for conn in conns:
            answer = conn.getresponse()
            assert answer.status == 200 and json.loads(answer.read())["results"][0]["receipt"]
        time.sleep(timeout + 1.0)
        assert worker_pids(proc) == workers
        stuck = min(workers)
        os.kill(stuck, signal.SIGSTOP)
        deadline = time.monotonic() + 4 * timeout
        while stuck in worker_pids(proc):
            assert time.monotonic() < deadline, "a stopped worker was not restarted"
            time.sleep(0.2)
        assert len(worker_pids(proc)) == 2
    finally:
        for conn in conns:
            conn.close()
        out = stop(proc)
    assert out.count("WORKER TIMEOUT") == 1, out
