"""deploy/nginx.conf in front of a real ``labelcheck serve``: a real nginx,
from a temporary prefix on 127.0.0.1, with 16 clients trickling request
bodies; /healthz and a verify are not delayed by them."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from labelcheck.pipeline.config import Config
from slowclients import Trickler, free_port, serve, stop, wait_healthy

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                        if os.access(p, os.X_OK)), None)
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (scripts/test installs "
                                                        "Debian's nginx when run as root)")


def site_config(listen: int, upstream: int, log: Path) -> str:
    """deploy/nginx.conf with only the ports and the log path changed."""
    text = SITE.read_text()
    text = re.sub(r"listen 80;", f"listen 127.0.0.1:{listen};", text)
    text = re.sub(r"\n\s*listen \[::\]:80;", "", text)
    text = text.replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream};")
    text = text.replace("/var/log/nginx/labelcheck.access.log", str(log))
    assert f"127.0.0.1:{listen}" in text and f"127.0.0.1:{upstream}" in text and str(log) in text
    return text


def main_config(prefix: Path, site: Path) -> str:
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    temps = "".join(f"    {kind}_temp_path {prefix / kind};\n"
                    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"{user}worker_processes 1;\ndaemon off;\npid {prefix / 'nginx.pid'};\n"
            f"error_log {prefix / 'error.log'} warn;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n{temps}    include {site};\n}}\n")


@pytest.fixture
def front(tmp_path):
    upstream, listen = free_port(), free_port()
    server = serve(tmp_path / "data", upstream, "--workers", "1", "--threads", "4")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    site = prefix / "labelcheck.conf"
    site.write_text(site_config(listen, upstream, prefix / "access.log"))
    conf = prefix / "nginx.conf"
    conf.write_text(main_config(prefix, site))
    check = subprocess.run([NGINX, "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    nginx = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        wait_healthy(f"http://127.0.0.1:{listen}", nginx)
        yield listen, prefix
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
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
