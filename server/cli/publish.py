"""Posting signed claims to a labelcheck server's registry: ``labelcheck sign
--publish BASE_URL`` sends the envelope to ``BASE_URL/v1/claims``
(docs/protocol.md §12). Errors are one line (CliError), with the server's
problem+json ``detail`` (RFC 9457 §3.1.4) when it gave one."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

from labelcheck.cli.common import CliError

TIMEOUT = 30  # seconds to connect and to wait for the answer


def claims_url(base_url: str) -> str:
    """``BASE_URL/v1/claims``; CliError unless BASE_URL is an http(s) URL
    without a query or fragment."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise CliError(f"--publish takes the server's base URL, such as http://127.0.0.1:8080, not {base_url!r}")
    return base_url.strip().rstrip("/") + "/v1/claims"


def publish_claims(base_url: str, envelopes: list[dict], session=None) -> list[dict]:
    """Register ``envelopes`` (one request); the server's answer per claim."""
    url = claims_url(base_url)
    body = envelopes[0] if len(envelopes) == 1 else {"claims": envelopes}
    try:
        resp = (session or requests).post(url, json=body, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise CliError(f"cannot publish to {url}: {type(exc).__name__}: {exc}", exit_code=1) from None
    if resp.status_code in (200, 201):
        try:
            return resp.json()["claims"]
        except (ValueError, KeyError, TypeError):
            raise CliError(f"{url} answered {resp.status_code} without a claims list", exit_code=1) from None
    detail = resp.text[:300]
    try:
        detail = resp.json().get("detail") or detail
    except (ValueError, AttributeError):
        pass
    raise CliError(f"{url} refused the claim ({resp.status_code}): {detail}", exit_code=1)
