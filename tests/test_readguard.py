"""The pieces that bound reading a request: when a buffered request is
complete, the 408 middleware, and the process's alarm thread."""

from __future__ import annotations

import io
import threading
import time

import pytest
from gunicorn.http.errors import InvalidChunkSize

from labelcheck.fetch import alarm
from labelcheck.web.readguard import BODY, CHUNKS_ON_LOOP, ReadGuard, _complete


@pytest.mark.parametrize("raw, done", [
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", False),  # headers not over
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", True),
    (b"POST /v1/verify HTTP/1.1\r\nContent-Length: 5\r\n\r\n{}", False),
    (b"POST /v1/verify HTTP/1.1\r\ncontent-length : 5\r\n\r\n{\"a\"}", True),
    (b"POST /v1/verify HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", True),  # over max_body: the app says 413
    (b"POST /v1/verify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n", False),
    (b"POST /v1/verify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", True),
    (b"POST /v1/verify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-T: 1\r\n\r\n", True),  # a trailer
    (b"POST /v1/verify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-T: 1\r\n", False),
    (b"POST /v1/verify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\n{}\r\n0\r\n\r\n", True),
    (b"POST /v1/verify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n0\r\n\r\n", False),  # data, not the end
    (b"POST /v1/verify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1", False),  # a size line on its way
    (b"POST /v1/verify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n", True),  # malformed: refused at once
    (b"POST /v1/verify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 2000, True),
    (b"POST /v1/verify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX", True),  # no CRLF after the data
    (b"POST /v1/verify HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", True),  # not chunked: the parser answers
    (b"POST /v1/verify HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", True),
    (b"GET /" + b"a" * 70000, True),  # no end of headers in 64 KiB: the parser refuses it
    (b"POST /v1/verify HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n{}", False),  # the same twice
    (b"POST /v1/verify HTTP/1.1\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n{}", True),  # they differ: refused
])
def test_a_request_is_handed_over_when_complete(raw, done):
    assert _complete(bytearray(raw), 1024 * 1024) is done


def test_a_chunked_body_read_piece_by_piece_is_parsed_once():
    """A trickled chunked request is complete at its last byte and not
    before; the parse goes on where it stopped (a body of many small chunks
    costs each chunk once, not once per read)."""
    head = b"POST /v1/verify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (b"{", b'"items"', b":", b"[]}"))
    raw = head + chunks + b"0\r\nX-Trailer: 1\r\n\r\n"
    buf, state = bytearray(), [0, 0]
    for i, byte in enumerate(raw):
        buf.append(byte)
        assert _complete(buf, 1024 * 1024, state) is (i == len(raw) - 1)
    assert state == [len(head) + len(chunks), 4]  # at the last chunk, every earlier one passed once


def test_a_body_of_very_many_chunks_is_handed_to_a_thread_unparsed():
    head = b"POST /v1/verify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    many = head + b"1\r\nx\r\n" * (CHUNKS_ON_LOOP + 10)  # not over yet, but too many to follow here
    assert _complete(bytearray(many), 1024 * 1024) is True
    assert _complete(bytearray(head + b"1\r\nx\r\n" * (CHUNKS_ON_LOOP - 10)), 1024 * 1024) is False


class Broken(io.RawIOBase):
    """A body stream cut off after a few bytes, as a shut-down socket is."""

    def __init__(self):
        self.sent = False

    def read(self, n=-1):
        if self.sent:
            raise OSError("shut down")
        self.sent = True
        return b"{"


def call(guard, environ):
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(guard(environ, start_response))
    return seen, body


def test_a_body_cut_short_answers_408_and_the_app_never_runs():
    ran = []
    guard = ReadGuard(lambda env, sr: ran.append(1) or [], max_body=1000)
    seen, body = call(guard, {"CONTENT_LENGTH": "10", "wsgi.input": Broken()})
    assert seen["status"].startswith("408") and seen["headers"]["Connection"] == "close"
    assert b'"status": 408' in body and seen["headers"]["Content-Type"] == "application/problem+json"
    assert ran == []
    seen, _ = call(guard, {"CONTENT_LENGTH": "10", "wsgi.input": io.BytesIO(b"{}")})  # short, then EOF
    assert seen["status"].startswith("408")


def test_a_malformed_body_is_left_to_gunicorn_to_refuse():
    class BadChunks(io.RawIOBase):
        def read(self, n=-1):
            raise InvalidChunkSize(b"ZZ")

    ran = []
    guard = ReadGuard(lambda env, sr: ran.append(1) or [], max_body=1000)
    with pytest.raises(InvalidChunkSize):  # gunicorn answers it with 400, not this guard with 408
        call(guard, {"wsgi.input_terminated": True, "wsgi.input": BadChunks()})
    assert ran == []


def test_a_whole_body_reaches_the_app():
    def app(environ, start_response):
        start_response("200 OK", [])
        got = environ["wsgi.input"].read()
        assert environ[BODY] == got  # the bytes read, handed over as they are
        return [got]

    guard = ReadGuard(app, max_body=1000)
    seen, body = call(guard, {"CONTENT_LENGTH": "7", "wsgi.input": io.BytesIO(b'{"a":1}')})
    assert seen["status"] == "200 OK" and body == b'{"a":1}'
    # Chunked (no length): read up to max_body + 1, so the app can still refuse an oversized one.
    seen, body = call(ReadGuard(app, max_body=4), {"wsgi.input_terminated": True,
                                                   "wsgi.input": io.BytesIO(b"0123456789")})
    assert body == b"01234"


def test_alarms_fire_in_order_and_cancelled_ones_do_not():
    fired, done = [], threading.Event()
    late = alarm.after(0.2, lambda: (fired.append("late"), done.set()))
    alarm.after(0.05, lambda: fired.append("early"))
    alarm.after(0.1, lambda: fired.append("cancelled")).cancel()
    assert late is not None and done.wait(5)
    assert fired == ["early", "late"]


def test_many_cancelled_alarms_do_not_pile_up():
    for _ in range(5000):
        alarm.after(3600, lambda: None).cancel()
    assert len(alarm._heap) < 2100


def test_a_failing_alarm_does_not_stop_the_others():
    done = threading.Event()
    alarm.after(0.01, lambda: 1 / 0)
    alarm.after(0.05, done.set)
    start = time.monotonic()
    assert done.wait(5) and time.monotonic() - start < 2
