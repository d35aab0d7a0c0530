"""HTTP connections made to an address chosen in advance, within a deadline.

Two pieces the media fetcher needs and requests does not offer:

- :class:`PinnedAdapter` sends a request to one address that was checked
  before, never looking the host name up again (a DNS-rebinding answer is
  never used), while TLS still sends SNI and verifies the certificate for the
  URL's host name. It uses urllib3 2.x's documented pool options: the pool's
  host is the address, ``server_hostname`` and ``assert_hostname`` carry the
  name (the Host header is the caller's).
- :class:`Deadline` bounds a whole exchange. Socket timeouts bound each
  read, but a server dripping a byte just inside the read timeout could hold
  a request for ever; when the deadline passes a timer shuts down every
  socket opened under it, which wakes the blocked read.
"""

from __future__ import annotations

import contextvars
import socket
import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from labelcheck.fetch import netguard

_ACTIVE: contextvars.ContextVar["Deadline | None"] = contextvars.ContextVar(
    "labelcheck_http_deadline", default=None)


class Deadline:
    """A time budget for the connections opened inside ``with Deadline(s):``."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def __enter__(self) -> "Deadline":
        self._token = _ACTIVE.set(self)
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _ACTIVE.reset(self._token)

    def track(self, sock: socket.socket) -> None:
        # The socket itself, not the connection: http.client drops
        # ``conn.sock`` once a response will close, while the response keeps
        # reading from the same socket.
        with self._lock:
            self._socks.append(sock)
            expired = self.expired
        if expired:
            _shut_down(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            socks = list(self._socks)
        for sock in socks:
            _shut_down(sock)


def _shut_down(sock: socket.socket) -> None:
    try:
        # The plain-socket method: SSLSocket.shutdown would first drop its
        # TLS state under the feet of the thread still reading.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


def _track(conn: HTTPConnection) -> None:
    deadline = _ACTIVE.get()
    if deadline is not None and conn.sock is not None:
        deadline.track(conn.sock)


class _DeadlineHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _track(self)


class _DeadlineHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _track(self)


class _DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


class PinnedAdapter(HTTPAdapter):
    """A requests adapter that sends ``scheme://host`` requests to ``ip`` only.

    Requests for any other scheme or host are refused (ValueError, which
    requests reports as InvalidURL), so a stray URL cannot reuse the pin.
    """

    def __init__(self, scheme: str, host: str, ip: netguard.IPAddress):
        self.scheme, self.host, self.ip = scheme, host, ip
        self.tls_name = None if netguard.parse_ip(host) is not None else host
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if (host_params["scheme"], host_params["host"]) != (self.scheme, self.host):
            raise ValueError("the request is not for the pinned host")
        host_params["host"] = str(self.ip)
        if self.scheme == "https" and self.tls_name is not None:
            pool_kwargs["server_hostname"] = self.tls_name  # SNI
            pool_kwargs["assert_hostname"] = self.tls_name  # certificate check
        return host_params, pool_kwargs
