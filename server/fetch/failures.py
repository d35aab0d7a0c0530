"""requests and urllib3 exceptions told as :class:`FetchFailed` reasons.

When a :class:`~labelcheck.fetch.pinned.Deadline` has passed, that is the
reason, whatever error the shut-down (or timed-out) socket produced: ``timeout`` for the
fetch's own limit, ``deadline`` for the request's shared one.
"""

from __future__ import annotations

import socket

import urllib3.exceptions as u3

from labelcheck.fetch import netguard
from labelcheck.fetch.pinned import Deadline
from labelcheck.fetch.policy import FetchFailed
from labelcheck.fetch.target import Target


def out_of_time(deadline: Deadline, what: str) -> FetchFailed:
    """The failure for a passed deadline, naming what was going on."""
    if deadline.reason == "deadline":
        return FetchFailed("deadline", f"the request's time for fetching media ran out ({what})")
    return FetchFailed("timeout", f"the fetch took too long ({what})")


def left(deadline: Deadline, what: str) -> float:
    """Seconds left, or the out-of-time failure naming what ran out of time."""
    remaining = deadline.remaining()
    if deadline.expired or remaining <= 0:
        raise out_of_time(deadline, what)
    return remaining


def never_connected(exc: BaseException) -> bool:
    """True when no connection was made (refused, unreachable, timed out): the next address may do."""
    return any(isinstance(e, (u3.NewConnectionError, u3.ConnectTimeoutError)) for e in _chain(exc))


def dropped_idle(exc: BaseException) -> bool:
    """True when a kept-alive connection turned out closed by the server
    before it answered: the request may be sent again on a new one
    (RFC 9112 §9.3.1, GET is idempotent)."""
    return any(isinstance(e, (ConnectionResetError, BrokenPipeError)) or
               type(e).__name__ == "RemoteDisconnected" for e in _chain(exc))


def _chain(exc: BaseException) -> list[BaseException]:
    """An exception and the ones requests and urllib3 wrapped inside it."""
    found = [exc]
    while len(found) < 8:
        last = found[-1]
        inner = getattr(last, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in last.args if isinstance(a, BaseException)), None)
        if not isinstance(inner, BaseException):
            inner = last.__cause__
        if not isinstance(inner, BaseException) or inner in found:
            break
        found.append(inner)
    return found


def request_failure(exc: Exception, target: Target, ip: netguard.IPAddress, deadline: Deadline) -> FetchFailed:
    """The failure for an exception raised while sending a request and
    reading the response head (urllib3, without retries)."""
    where = target.host if str(ip) == target.host else f"{target.host} ({ip})"
    if deadline.passed:
        return out_of_time(deadline, f"talking to {where}")
    if isinstance(exc, u3.NewConnectionError):  # before ConnectTimeoutError, its base class
        return FetchFailed("connect_failed", f"could not talk to {where} ({_innermost(exc)})")
    if isinstance(exc, u3.ConnectTimeoutError):
        return FetchFailed("timeout", f"connecting to {where} timed out")
    if isinstance(exc, (u3.ReadTimeoutError, TimeoutError, socket.timeout)):
        return FetchFailed("timeout", f"{where} did not answer in time")
    if isinstance(exc, u3.SSLError):
        return FetchFailed("connect_failed", f"TLS with {where} failed ({_innermost(exc)})")
    if isinstance(exc, (u3.LocationValueError, ValueError)):
        return FetchFailed("bad_url", f"the request could not be made ({exc})")
    if isinstance(exc, (u3.HTTPError, OSError)):
        return FetchFailed("connect_failed", f"could not talk to {where} ({_innermost(exc)})")
    return FetchFailed("connect_failed", f"request to {where} failed ({type(exc).__name__})")


def body_failure(exc: Exception, target: Target, deadline: Deadline) -> FetchFailed:
    if deadline.passed:
        return out_of_time(deadline, f"reading from {target.host}")
    if isinstance(exc, (u3.ReadTimeoutError, TimeoutError, socket.timeout)):
        return FetchFailed("timeout", f"{target.host} stopped sending the body")
    if isinstance(exc, u3.SSLError):
        return FetchFailed("connect_failed", f"TLS with {target.host} failed while reading")
    if isinstance(exc, u3.DecodeError):
        return FetchFailed("http_error", f"{target.host} sent a body that cannot be decoded")
    return FetchFailed("http_error", f"the body from {target.host} ended early or broke off ({type(exc).__name__})")


def _innermost(exc: BaseException) -> str:
    """The most specific message in a requests/urllib3 exception chain."""
    inner = _chain(exc)[-1]
    return str(inner) or type(inner).__name__
