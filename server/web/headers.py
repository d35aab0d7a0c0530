"""Headers every answer carries, as security and privacy defaults.

* ``X-Content-Type-Options: nosniff`` (Fetch Standard, its section on that
  header): a browser takes each answer for the type it is served as.
  Entries, tiles and checkpoints hold text that claims and viewers chose;
  none may be sniffed into HTML or script.
* ``Referrer-Policy: no-referrer`` (W3C Referrer Policy §3.1): nothing of a
  server page's URL goes to a site it links to or loads from.
* ``Content-Security-Policy: default-src 'none'; frame-ancestors 'none'``
  (CSP Level 3 §6.1.3, §6.4.2) on every answer that is not an HTML page:
  an API answer opened as a document runs nothing, loads nothing and is
  framed by no one (the demo pages, which run their own script, go without).
"""

from __future__ import annotations

from flask import Flask, Response

ALWAYS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
NOT_A_PAGE = {"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"}


def register(app: Flask) -> None:
    """Add the headers to every answer of ``app``, errors included."""
    app.after_request(_add)


def _add(response: Response) -> Response:
    headers = response.headers
    headers.update(ALWAYS)
    if response.mimetype != "text/html":
        headers.update(NOT_A_PAGE)
    return response
