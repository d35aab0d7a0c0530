"""Helpers for the slow-client tests: a real ``labelcheck serve`` on
127.0.0.1 and clients that trickle their requests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

LABELCHECK = str(Path(sys.executable).with_name("labelcheck"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(data: Path, port: int, *args: str, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen([LABELCHECK, "serve", "--port", str(port), "--data-dir", str(data), *args],
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    wait_healthy(f"http://127.0.0.1:{port}", proc)
    return proc


def wait_healthy(base: str, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base} did not become healthy")


def worker_pids(proc: subprocess.Popen) -> set[int]:
    """The server's worker processes (its children)."""
    return {int(p) for p in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                           text=True).stdout.split()}


def signal_server(proc: subprocess.Popen, sig: int) -> None:
    """``sig`` to the server and its workers: SIGSTOP, SIGCONT as a paused host."""
    for pid in [proc.pid, *worker_pids(proc)]:
        os.kill(pid, sig)


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


class Trickler(threading.Thread):
    """Sends a request one byte every ``every`` seconds (the body, or the
    headers too with ``headers_too``) until ``stop`` is set or the server
    hangs up; ``answer`` keeps what the server sent back."""

    def __init__(self, port: int, stop: threading.Event, *, headers_too: bool = False, every: float = 0.3):
        super().__init__(daemon=True)
        self.port, self.stop_event, self.headers_too, self.every = port, stop, headers_too, every
        self.answer = b""
        self.cut_after: float | None = None

    def run(self) -> None:
        head = (b"POST /v1/verify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n")
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as sock:
            try:
                if self.headers_too:
                    sock.sendall(head[:5])
                    rest = head[5:] + b"{" * 100000
                else:
                    sock.sendall(head)
                    rest = b"{" * 100000
                sock.settimeout(self.every)
                for byte in rest:
                    if self.stop_event.is_set():
                        return
                    sock.sendall(bytes([byte]))
                    try:
                        got = sock.recv(4096)
                    except (TimeoutError, socket.timeout):
                        continue
                    self.answer += got
                    break  # an answer or a hang-up: the server stopped waiting for us
            except OSError:
                pass
            self.cut_after = time.monotonic() - start


def healthz_latencies(base: str, seconds: float) -> list[float]:
    """Latencies of GET /healthz, one after another, for ``seconds``."""
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.monotonic()
        try:
            requests.get(base + "/healthz", timeout=30).raise_for_status()
        except requests.RequestException:
            out.append(float("inf"))
            continue
        out.append(time.monotonic() - start)
        time.sleep(0.05)
    return out
