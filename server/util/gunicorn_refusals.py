"""Requests gunicorn refuses itself (a bad request line, a header too long or
malformed, bad chunking), answered in the server's own error form rather
than gunicorn's HTML page, and logged without the client's address: logs
hold no viewers' addresses (the servers' access logs are off for that too).
And the one gunicorn lets through but should not (``codings_refused``): a
transfer coding besides chunked, whose coded bytes it would pass on as the body.

``OwnRefusals`` goes before gunicorn's worker class in a worker's bases; the
worker's ``refusal(status, reason, detail)`` gives the whole HTTP answer.
gunicorn writes its refusals through ``gunicorn.util.write_error``, looked
up at each call: each worker process points it at its own ``refusal``.
"""

from __future__ import annotations

from gunicorn import util as gunicorn_util

NO_ADDRESS = ("-", 0)  # the client address gunicorn is given to log


def raw_answer(status: int, reason: str, content_type: str, body: bytes, headers=()) -> bytes:
    """A whole HTTP/1.1 answer (RFC 9112) that closes the connection, for a
    worker writing to the socket itself."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n{extra}"
            f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n").encode("latin-1") + body


def codings_refused(value: str | None) -> tuple[int, str, str] | None:
    """The answer to a request whose transfer codings are other than
    ``chunked`` alone, or None. RFC 9112 §6.3: chunked not the final coding
    leaves the body's length unknown (400); §6.1: a coding the server does
    not apply (gzip, chunked) is 501, rather than its bytes taken as the body."""
    if value is None:
        return None
    codings = [c.strip().lower() for c in value.split(",")]
    if codings[-1] != "chunked":
        return 400, "Bad Request", "chunked must be the request's final transfer coding (RFC 9112 §6.3)"
    if len(codings) > 1:
        return 501, "Not Implemented", (f"transfer coding {', '.join(codings[:-1])} is not supported: "
                                        "send the body with chunked alone")
    return None


class OwnRefusals:
    """Mixin for a gunicorn worker class (see the module docstring)."""

    def refusal(self, status: int, reason: str, detail: str) -> bytes:
        raise NotImplementedError

    def init_process(self):
        def write_error(sock, status_int: int, reason: str, mesg: str) -> None:
            gunicorn_util.write_nonblock(sock, self.refusal(status_int, reason, mesg or reason))

        gunicorn_util.write_error = write_error
        super().init_process()

    def handle_error(self, req, client, addr, exc):
        super().handle_error(req, client, NO_ADDRESS, exc)  # logged, but not who sent it
