"""Slow clients against a real ``labelcheck serve`` with nothing in front:
reading a request has a bounded time, so trickling clients hold the
server's threads for at most ``client_read_timeout`` seconds."""

from __future__ import annotations

import threading

import pytest
import requests

from slowclients import Trickler, free_port, healthz_latencies, serve, stop

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
