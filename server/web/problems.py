"""RFC 9457 problem details: every error the server gives is
``application/problem+json`` with ``type``, ``title``, ``status`` and ``detail``.

``type`` is ``about:blank`` (RFC 9457 §4.2.1): the status code says what kind of
problem it is, the ``title`` is the status phrase and ``detail`` says what to fix.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from flask import Flask, Response, current_app
from werkzeug.exceptions import HTTPException

from labelcheck.pipeline.errors import InvalidRequest, NotFound, PipelineError, RegistryConflict, TooManyItems

MEDIA_TYPE = "application/problem+json"

# The one place domain errors become HTTP statuses.
STATUS_OF = {InvalidRequest: 422, TooManyItems: 413, NotFound: 404, RegistryConflict: 409}


class Problem(HTTPException):
    """An HTTP error raised by the API, with optional extension members."""

    def __init__(self, status: int, detail: str, *, headers: dict | None = None, **extensions):
        super().__init__(description=detail)
        self.code = status
        self.extra_headers = headers or {}
        self.extensions = extensions


def problem_body(status: int, title: str, detail: str, **extensions) -> bytes:
    """The problem document (RFC 9457 §3), as every answer writes it."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extensions}
    return (json.dumps(body, sort_keys=True) + "\n").encode()


def problem_response(status: int, detail: str, headers=None, **extensions) -> Response:
    """A problem+json response (RFC 9457 §3)."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    response = Response(problem_body(status, title, detail, **extensions), status=status, mimetype=MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _from_http_exception(exc: HTTPException) -> Response:
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    headers.update(getattr(exc, "extra_headers", {}))
    challenge = getattr(exc, "challenge", None)
    if challenge:
        headers["WWW-Authenticate"] = challenge
    detail = exc.description or HTTPStatus(exc.code or 500).description
    return problem_response(exc.code or 500, detail, headers, **getattr(exc, "extensions", {}))


def _from_domain_error(exc: PipelineError) -> Response:
    status = next((s for cls, s in STATUS_OF.items() if isinstance(exc, cls)), 400)
    return problem_response(status, str(exc))


def _from_exception(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _from_http_exception(exc)
    if isinstance(exc, PipelineError):
        return _from_domain_error(exc)
    current_app.logger.exception("unhandled error")
    return problem_response(500, "the server failed to answer this request; it has been logged")


def register(app: Flask) -> None:
    """Answer every error of ``app`` as problem+json."""
    app.register_error_handler(HTTPException, _from_http_exception)
    app.register_error_handler(PipelineError, _from_domain_error)
    app.register_error_handler(Exception, _from_exception)
