"""Requests gunicorn itself refuses, on a real ``labelcheck serve``: they are
answered as every other error is, with an RFC 9457 problem, not gunicorn's
HTML page, and the server's log names no client address."""

from __future__ import annotations

import json
import socket
import time

import pytest

from slowclients import free_port, serve, stop


def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes, float]:
    """Send ``raw``; (status, headers, body, seconds to the answer) of what comes back."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(raw)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    took = time.monotonic() - start
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body, took


REFUSED = [
    ("a header field over the size limit", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    ("too many header fields", b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-H%d: a\r\n" % i for i in range(150)) + b"\r\n", 431),
    ("a NUL in a header value", b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \x00\r\n\r\n", 400),
    ("no request line", b"GARBAGE\r\n\r\n", 400),
    ("two Content-Lengths that differ", b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
     b"Content-Length: 10\r\nContent-Length: 20\r\n\r\n{}", 400),
    ("a chunk size that is not hex", b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
     b"Transfer-Encoding: chunked\r\n\r\nZZ\r\n", 400),
]

# Refused by the server itself (readguard), as nginx refuses them (tests/test_front.py).
CODINGS = [
    ("a transfer coding besides chunked", b"gzip, chunked", 501),
    ("two header lines, gzip then chunked", b"gzip\r\nTransfer-Encoding: chunked", 501),
    ("a transfer coding without chunked", b"gzip", 400),
    ("chunked not the final coding", b"chunked, gzip", 400),
]


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    port = free_port()
    proc = serve(tmp_path_factory.mktemp("refusals") / "data", port, "--workers", "1", "--threads", "2")
    yield port
    stop(proc)


@pytest.mark.parametrize("what, raw, status", REFUSED, ids=[r[0] for r in REFUSED])
def test_a_refused_request_gets_a_problem(port, what, raw, status):
    got, headers, body, took = exchange(port, raw)
    assert got == status, (what, body[:200])
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close" and headers["x-content-type-options"] == "nosniff"
    problem = json.loads(body)
    assert problem["status"] == status and problem["title"] and problem["detail"]
    assert took < 5  # at once, not after the read timeout (10 s)


@pytest.mark.parametrize("what, codings, status", CODINGS, ids=[c[0] for c in CODINGS])
def test_transfer_codings_other_than_chunked_alone_are_refused(port, what, codings, status):
    # RFC 9112 §6.1 and §6.3: never the coded bytes taken as the JSON body.
    body = b'{"items": []}'
    raw = (b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: %s\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (codings, len(body), body))
    got, headers, answer, took = exchange(port, raw)
    assert got == status, (what, answer[:300])
    assert headers["content-type"] == "application/problem+json" and headers["connection"] == "close"
    assert json.loads(answer)["status"] == status and took < 5


def test_a_chunked_body_with_a_trailer_is_taken_at_once(port):
    body = b'{"items": []}'
    raw = (b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (len(body), body))
    got, _, answer, took = exchange(port, raw)
    assert got == 200 and json.loads(answer.split(b"\r\n")[1] if b"\r\n" in answer else answer)["results"] == []
    assert took < 5


def test_a_body_of_very_many_chunks_is_still_read(port):
    """More chunks than the event loop follows: the request goes to a thread
    early, which reads the rest (tests/test_readguard.py)."""
    body = b'{"items": []}' + b" " * 6000
    chunked = b"".join(b"1\r\n%c\r\n" % c for c in body) + b"0\r\n\r\n"
    raw = (b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
    got, _, answer, took = exchange(port, raw)
    assert got == 200 and b'"results"' in answer and took < 5


def test_the_log_names_no_client_address(tmp_path):
    port = free_port()
    proc = serve(tmp_path / "data", port, "--workers", "1", "--threads", "2")
    try:
        for _, raw, _ in REFUSED:
            exchange(port, raw)
    finally:
        log = stop(proc)
    refusals = [line for line in log.splitlines() if "Invalid request" in line]
    assert len(refusals) == len(REFUSED), log  # each is logged ...
    assert not [line for line in refusals if "127.0.0.1" in line], refusals  # ... but not who sent it
