"""A bounded time for reading a request, so slow clients cannot hold the
server's threads.

gunicorn's gthread worker hands a connection to a thread as soon as its
first bytes arrive; the thread then reads the request line, the headers and
(through the app) the body with blocking reads and no overall limit, so a
few clients trickling a byte a second hold every thread. Here:

- :class:`GuardedThreadWorker` reads each request into a buffer on the
  worker's event loop, without a thread, until its headers and body are in
  (RFC 9112 §6: Content-Length, or the last chunk); only then does a thread
  take it. A request not in after ``client_read_timeout`` seconds gets 408
  Request Timeout (RFC 9110 §15.5.9) and the connection is closed. As a
  second line, an alarm shuts the socket's read side if a thread still
  waits on a request that long (a pipelined or oversized one);
- :class:`ReadGuard` (WSGI middleware) reads the body before the app runs,
  disarms that alarm, and answers 408 with ``Connection: close`` when the
  body came short. The bytes it read are in the environ under ``BODY`` too,
  so the app need not read them again through its request stream.

A request gunicorn itself refuses is answered as every other error, with an
RFC 9457 problem, and logged without the client's address
(:mod:`labelcheck.util.gunicorn_refusals`).

A buffered request costs memory (up to ``max_body`` and the headers, for
each of ``worker_connections``); a front server that buffers requests
(deploy/nginx.conf) is the real answer for slow clients.
"""

from __future__ import annotations

import collections
import io
import re
import selectors
import socket
import threading
import time
from functools import partial
from typing import Callable, Iterable

from gunicorn.http.errors import ParseException

from labelcheck.fetch import alarm
from labelcheck.web import headers
from labelcheck.web.problems import MEDIA_TYPE, problem_body
from labelcheck.util.gunicorn_refusals import OwnRefusals, codings_refused, raw_answer
from labelcheck.util.gunicorn_stalls import StallTolerantThreadWorker

_local = threading.local()
CHUNK = 64 * 1024
HEAD_LIMIT = 64 * 1024  # headers longer than this go to gunicorn's parser, which refuses them
_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d+)")
_CODINGS = re.compile(rb"\r\ntransfer-encoding[ \t]*:([^\r\n]*)")
_CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]{1,16})(?:[ \t]*;[^\r\n]*)?\r\n")  # RFC 9112 §7.1
SIZE_LINE_LIMIT = 1024  # a chunk-size line (with its extensions) longer than this is refused
# Chunks parsed on the event loop, at most, for one request: a body of more
# (a megabyte of one-byte chunks) goes to a thread as it is, whose reads
# the alarm bounds, rather than hold up every other connection meanwhile.
CHUNKS_ON_LOOP = 4096
BODY = "labelcheck.body"  # environ key: the body as ReadGuard read it
_TIMEOUT = (408, "Request Timeout", "the request was not received in time")


def problem_answer(status: int, title: str, detail: str) -> bytes:
    """A whole HTTP/1.1 answer carrying a problem, closing the connection."""
    return raw_answer(status, title, MEDIA_TYPE, problem_body(status, title, detail),
                      [*headers.ALWAYS.items(), *headers.NOT_A_PAGE.items()])


class GuardedThreadWorker(OwnRefusals, StallTolerantThreadWorker):
    """gthread that gives a thread only requests read in full, and answers
    what gunicorn refuses as problems (see the module docstring)."""

    refusal = staticmethod(problem_answer)

    def init_process(self):
        config = getattr(self.app, "labelcheck_config", None)
        self.read_seconds = _read_seconds(self.app)
        self.max_body = int(getattr(config, "max_body", 1024 * 1024))
        self.reading: collections.deque = collections.deque()  # (deadline, conn), oldest first
        super().init_process()

    def enqueue_req(self, conn):
        if self.cfg.is_ssl or (conn.parser is not None and conn.parser.unreader.buf.getvalue()):
            return super().enqueue_req(conn)  # TLS, or a pipelined request already buffered
        conn.sock.setblocking(False)
        conn.labelcheck_buf = bytearray()
        conn.labelcheck_chunks = [0, 0]  # a chunked body: where its next size line starts, chunks seen
        conn.labelcheck_done = False
        conn.labelcheck_read = token = object()  # this read, not a later one on the same connection
        self.reading.append((time.monotonic() + self.read_seconds, conn, token))
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn, sock):
        try:
            data = sock.recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            return self._drop(conn)
        conn.labelcheck_buf += data
        if _complete(conn.labelcheck_buf, self.max_body, conn.labelcheck_chunks):
            self.poller.unregister(sock)
            conn.labelcheck_done, conn.data_ready = True, True
            super().enqueue_req(conn)

    def _drop(self, conn, answer: bytes = b""):
        if conn.labelcheck_done:
            return
        conn.labelcheck_done = True
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        if answer:
            try:
                conn.sock.send(answer)
            except OSError:
                pass
        self.nr_conns -= 1
        conn.close()

    def murder_keepalived(self, force=False):
        super().murder_keepalived(force)  # kept-alive connections read first after a stall (gunicorn_stalls)
        now = time.monotonic()
        while self.reading:
            deadline, conn, token = self.reading[0]
            current = conn.labelcheck_read is token and not conn.labelcheck_done
            if current and deadline > now and not force:
                break
            self.reading.popleft()
            if current and not force:
                self._read_what_came(conn)
            if current and not conn.labelcheck_done:
                self._drop(conn, problem_answer(*_TIMEOUT) if conn.labelcheck_buf else b"")

    def _read_what_came(self, conn) -> None:
        """Read what is waiting on a connection whose time ran out: the rest
        of a request sent in time is taken; a client still sending is not."""
        while not conn.labelcheck_done:
            had = len(conn.labelcheck_buf)
            self._on_readable(conn, conn.sock)
            if len(conn.labelcheck_buf) == had:
                return

    def handle(self, conn):
        buffered = bytes(getattr(conn, "labelcheck_buf", b""))
        conn.labelcheck_buf = bytearray()
        if buffered:
            conn.init()
            conn.parser.unreader.unread(buffered)
        sock = conn.sock
        _local.alarm = alarm.after(self.read_seconds, lambda: _shut_read(sock))
        try:
            return super().handle(conn)
        finally:
            _local.alarm.cancel()
            _local.alarm = None


def _complete(buf: bytearray, max_body: int, chunks: list[int] | None = None) -> bool:
    """True when ``buf`` holds a whole request (or more than is worth
    buffering). ``chunks``: ``[offset, count]`` kept between calls on one
    request, so a chunked body is parsed once, not from its start at every read."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return len(buf) > HEAD_LIMIT
    head, body = bytes(buf[:end]).lower(), len(buf) - end - 4
    if body > max_body or b"\r\nexpect:" in head:
        return True  # the app refuses it, or the client waits for 100 Continue
    codings = _CODINGS.findall(head)
    if codings:  # chunked when it is the last coding (RFC 9112 §6.1); anything else gunicorn answers
        last = codings[-1].split(b",")[-1].strip()
        if last != b"chunked":
            return True
        chunks = chunks if chunks is not None else [0, 0]
        done, chunks[0], chunks[1] = _chunks_done(buf, max(chunks[0], end + 4), chunks[1])
        return done
    lengths = {int(n) for n in _LENGTH.findall(head)}
    if len(lengths) != 1:  # none, or two that differ (RFC 9112 §6.3): gunicorn's parser answers
        return True
    length = lengths.pop()
    return length > max_body or body >= length


def _chunks_done(buf: bytearray, at: int, seen: int) -> tuple[bool, int, int]:
    """Whether the chunked body (RFC 9112 §7.1) whose chunks go on at ``at``
    came whole, last chunk and trailer section included, or is malformed
    (the parser then refuses it), or has more than CHUNKS_ON_LOOP chunks:
    False only while more of it may come. And where the first chunk not
    yet whole starts, and how many came before it, to go on from next time."""
    while seen < CHUNKS_ON_LOOP:
        size_line = _CHUNK_SIZE.match(buf, at)
        if size_line is None:  # not all there yet, or not a size line at all
            return buf.find(b"\r\n", at) >= 0 or len(buf) - at > SIZE_LINE_LIMIT, at, seen
        size, data = int(size_line.group(1), 16), size_line.end()
        if size == 0:  # trailer fields, then an empty line
            return buf.find(b"\r\n\r\n", data - 2) >= 0, at, seen
        if len(buf) < data + size + 2:
            return False, at, seen
        if buf[data + size:data + size + 2] != b"\r\n":
            return True, at, seen
        at, seen = data + size + 2, seen + 1
    return True, at, seen


def _read_seconds(app) -> float:
    config = getattr(app, "labelcheck_config", None)
    return float(getattr(config, "client_read_timeout", 10.0))


def _shut_read(sock: socket.socket) -> None:
    try:
        socket.socket.shutdown(sock, socket.SHUT_RD)
    except OSError:
        pass  # closed meanwhile


class ReadGuard:
    """WSGI middleware: the body is read (up to ``max_body`` + 1 bytes, so
    the app can still tell an oversized one) before ``app`` runs; a body cut
    short by the read alarm or the client answers 408."""

    def __init__(self, app: Callable, max_body: int):
        self.app, self.max_body = app, max_body

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        armed = getattr(_local, "alarm", None)
        refused = codings_refused(environ.get("HTTP_TRANSFER_ENCODING"))
        if refused is not None:
            if armed is not None:
                armed.cancel()
            return _refuse(start_response, *refused)
        length = _content_length(environ)
        chunked = environ.get("wsgi.input_terminated") and length is None
        if (length or chunked) and (length is None or length <= self.max_body):
            want = self.max_body + 1 if length is None else length
            body = _read(environ["wsgi.input"], want)
            if body is None or (length is not None and len(body) < length):
                return _timeout(start_response)
            environ["wsgi.input"] = io.BytesIO(body)
            environ[BODY] = body
        if armed is not None:
            armed.cancel()
        return self.app(environ, start_response)


def _content_length(environ: dict) -> int | None:
    try:
        value = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return value if value >= 0 else None


def _read(stream, limit: int) -> bytes | None:
    """Up to ``limit`` bytes; None when reading broke off. A malformed body
    (bad chunking) raises gunicorn's error, which it answers with 400."""
    out = bytearray()
    try:
        while len(out) < limit:
            chunk = stream.read(min(CHUNK, limit - len(out)))
            if not chunk:
                break
            out += chunk
    except ParseException:
        raise
    except Exception:  # gunicorn's NoMoreData, OSError after the shutdown
        return None
    return bytes(out)


def _timeout(start_response: Callable) -> list[bytes]:
    return _refuse(start_response, *_TIMEOUT)


def _refuse(start_response: Callable, status: int, title: str, detail: str) -> list[bytes]:
    """An RFC 9457 problem, closing the connection: the rest of the request is not read."""
    body = problem_body(status, title, detail)
    start_response(f"{status} {title}", [("Content-Type", MEDIA_TYPE),
                                         *headers.ALWAYS.items(), *headers.NOT_A_PAGE.items(),
                                         ("Content-Length", str(len(body))), ("Connection", "close")])
    return [body]
