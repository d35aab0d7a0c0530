"""HTML for the demo pages: claims placed as the extension finds them
(docs/protocol.md §2: the ``data-labelcheck-claim`` attribute, claim scripts)."""

from __future__ import annotations

import html
import json

from flask import Response

from labelcheck.util import b64

CLAIM_TYPE = "application/vnd.labelcheck.claim+json"


def attr(envelope: dict) -> str:
    """The data-labelcheck-claim value: base64url of the envelope JSON, unpadded."""
    return b64.urlsafe_encode(json.dumps(envelope, separators=(",", ":")).encode())


def script_json(value) -> str:
    """JSON safe inside a <script> element (no "</" can end it early)."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def claim_script(value, **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{html.escape(v)}"' for k, v in attrs.items())
    return f'<script type="{CLAIM_TYPE}"{extra}>{script_json(value)}</script>'


def media_url(name: str) -> str:
    return f"/demo/media/{name}"


def img(name: str, *, claim: dict | None = None, alt: str = "", **extra: str) -> str:
    attrs = f' data-labelcheck-claim="{attr(claim)}"' if claim else ""
    attrs += "".join(f' {k.replace("_", "-")}="{html.escape(v)}"' for k, v in extra.items())
    return f'<img src="{media_url(name)}" alt="{html.escape(alt)}" width="240" height="160"{attrs}>'


def figure(content: str, caption: str, expect: str) -> str:
    return (f'<figure data-expect="{html.escape(expect)}">{content}'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


STYLE = """
body { font: 15px/1.5 system-ui, "Noto Sans CJK SC", sans-serif; margin: 24px; max-width: 980px; color: #111827; }
figure { display: inline-block; margin: 0 16px 16px 0; vertical-align: top; }
figcaption { font-size: 13px; color: #4b5563; max-width: 260px; }
.grid img { width: 24px; height: 24px; margin: 1px; }
code { background: #f3f4f6; padding: 0 3px; }
"""


def page(title: str, body: str, head: str = "") -> Response:
    doc = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
           f"<style>{STYLE}</style>{head}</head><body><p><a href=\"/demo/\">labelcheck demo</a></p>"
           f"<h1>{html.escape(title)}</h1>{body}</body></html>")
    return Response(doc, mimetype="text/html")
