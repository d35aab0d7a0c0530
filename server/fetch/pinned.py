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
  a request for ever; when the deadline passes an alarm shuts down every
  socket used under it (opened or taken from the keep-alive pool), which
  wakes the blocked read.
- :class:`PinnedPools` keeps adapters, and so their kept-alive connections,
  per (scheme, host, address) for reuse by later fetches: a connection is
  reused only for the very address that was checked for this fetch.
"""

from __future__ import annotations

import contextvars
import socket
import threading
import time
from collections import OrderedDict
from typing import Any

from requests import PreparedRequest
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from labelcheck.fetch import alarm, netguard

_ACTIVE: contextvars.ContextVar["Deadline | None"] = contextvars.ContextVar(
    "labelcheck_http_deadline", default=None)


class Deadline:
    """A time budget for the connections used inside ``with Deadline(s):``.
    ``reason`` names the limit it stands for when it passes."""

    def __init__(self, seconds: float, reason: str = "timeout"):
        self.end = time.monotonic() + seconds
        self.reason = reason
        self.expired = False
        self.reused = False  # the last request went on a kept-alive connection
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._alarm: alarm.Alarm | None = None

    def remaining(self) -> float:
        return self.end - time.monotonic()

    @property
    def passed(self) -> bool:
        """Whether the time is up: the alarm went off, or its time has come.
        A read's own timeout, set to the time left, can fire before the
        alarm's thread runs (on a busy machine); it is this limit all the same."""
        return self.expired or time.monotonic() >= self.end

    def __enter__(self) -> "Deadline":
        self._token = _ACTIVE.set(self)
        self._alarm = alarm.at(self.end, self._expire)
        return self

    def __exit__(self, *exc: object) -> None:
        self._alarm.cancel()
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


def _note_request(conn: HTTPConnection) -> None:
    """Before a request: a socket that carried an earlier request is a
    kept-alive one, which this deadline must also be able to shut down."""
    deadline = _ACTIVE.get()
    if deadline is not None:
        deadline.reused = conn.sock is not None and conn.sock is getattr(conn, "labelcheck_used", None)
        if deadline.reused:
            deadline.track(conn.sock)


class _DeadlineTracking:
    """Mixed into urllib3's connections: each socket is put under the
    current exchange's deadline, and the socket a request used is noted."""

    def connect(self) -> None:
        super().connect()
        _track(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _note_request(self)
        super().request(*args, **kwargs)
        self.labelcheck_used = self.sock


class _DeadlineHTTPConnection(_DeadlineTracking, HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_DeadlineTracking, HTTPSConnection):
    pass


class _DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


class PinnedAdapter(HTTPAdapter):
    """A requests adapter that sends ``scheme://host`` requests to ``ip`` only.

    Requests for any other scheme or host are refused (ValueError, which
    requests reports as InvalidURL), so a stray URL cannot reuse the pin.
    """

    def __init__(self, scheme: str, host: str, ip: netguard.IPAddress, keep: int = 1):
        self.scheme, self.host, self.ip = scheme, host, ip
        self.tls_name = None if netguard.parse_ip(host) is not None else host
        self.pools_by_key: dict[tuple, HTTPConnectionPool] = {}  # see PinnedPools.pool
        super().__init__(pool_connections=4, pool_maxsize=max(1, keep), max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}

    def pool_for(self, url: str, verify: Any = True, cert: Any = None) -> HTTPConnectionPool:
        """The urllib3 pool (kept-alive connections) for ``url`` on the pinned
        address, with requests' TLS settings; ValueError for another host."""
        request = PreparedRequest()
        request.url = url
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if (host_params["scheme"], host_params["host"]) != (self.scheme, self.host):
            raise ValueError("the request is not for the pinned host")
        host_params["host"] = str(self.ip)
        if self.scheme == "https" and self.tls_name is not None:
            pool_kwargs["server_hostname"] = self.tls_name  # SNI
            pool_kwargs["assert_hostname"] = self.tls_name  # certificate check
        return host_params, pool_kwargs


class PinnedPools:
    """Adapters per (scheme, host, address), least recently used first out,
    each keeping up to ``keep`` idle connections per port. An adapter left
    unused for ``idle`` seconds is closed when next looked at, so sockets
    the servers have long closed do not pile up."""

    def __init__(self, capacity: int = 16, keep: int = 8, idle: float = 30.0):
        self.capacity, self.keep, self.idle = max(1, capacity), keep, idle
        self._items: OrderedDict[tuple, tuple[PinnedAdapter, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, scheme: str, host: str, ip: netguard.IPAddress) -> PinnedAdapter:
        key, now, stale = (scheme, host, str(ip)), time.monotonic(), []
        with self._lock:
            held = self._items.pop(key, None)
            adapter = held[0] if held is not None and now - held[1] < self.idle else None
            if held is not None and adapter is None:
                stale.append(held[0])
            if adapter is None:
                adapter = PinnedAdapter(scheme, host, ip, keep=self.keep)
            self._items[key] = (adapter, now)
            while len(self._items) > self.capacity:
                stale.append(self._items.popitem(last=False)[1][0])
        for old in stale:
            old.close()
        return adapter

    def pool(self, scheme: str, host: str, ip: netguard.IPAddress, port: int, url: str,
             verify: Any = True, cert: Any = None) -> HTTPConnectionPool:
        """The connection pool for one checked (scheme, host, address, port),
        remembered by its adapter so a fetch does not rebuild the pool key."""
        adapter = self.get(scheme, host, ip)
        key = (port, verify if isinstance(verify, (bool, str)) else id(verify), repr(cert))
        pool = adapter.pools_by_key.get(key)
        if pool is None:
            pool = adapter.pools_by_key[key] = adapter.pool_for(url, verify, cert)
        return pool

    def drop(self, scheme: str, host: str, ip: netguard.IPAddress) -> None:
        """Forget (and close) the connections to one address, after a failure."""
        with self._lock:
            held = self._items.pop((scheme, host, str(ip)), None)
        if held is not None:
            held[0].close()

    def close(self) -> None:
        with self._lock:
            items, self._items = list(self._items.values()), OrderedDict()
        for adapter, _ in items:
            adapter.close()
