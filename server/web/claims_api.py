"""``POST /v1/claims``: the public claim registry (docs/protocol.md §12).

The body is one claim envelope or ``{"claims": [...]}`` (at most
``max_items``). No token: a valid signature by a registered, unrevoked
producer is the authentication. Each client address has its own token
bucket (``verify_rate``, ``verify_burst``), apart from the verify one.
Answers ``{"claims": [{"claim_id", "claim_digest", "receipt"}]}``: 201 when
any claim was new, 200 when all were registered already (the same body).
Refusals are problem+json (RFC 9457) with a ``claims`` member listing each
refused claim (``index``, ``claim_id``, ``reasons``, ``detail``): 403 when a
claim is not authentically a registered, unrevoked producer's, 422 when it
is malformed (a bad ``content.pdq`` included), 409 when its id is taken by
another envelope. Nothing is written unless the whole batch is accepted.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from labelcheck.pipeline.claim_registry import ClaimConflict, ClaimRefused, parse_claims_body, publish
from labelcheck.web.api import _json_body, services
from labelcheck.web.problems import Problem
from labelcheck.web.ratelimit import ClientRateLimiter

bp = Blueprint("v1_claims", __name__, url_prefix="/v1")
LIMITER_KEY = "labelcheck.claims_rate"


def _limiter() -> ClientRateLimiter:
    limiter = current_app.extensions.get(LIMITER_KEY)
    if limiter is None:
        cfg = services().config
        limiter = current_app.extensions.setdefault(
            LIMITER_KEY, ClientRateLimiter(cfg.verify_rate, cfg.verify_burst, trusted_proxies=cfg.trusted_proxies))
    return limiter


@bp.post("/claims")
def publish_claims() -> tuple[Response, int]:
    """Register claims (see the module docstring)."""
    svc = services()
    wait = _limiter().take(request.remote_addr, request.headers)
    if wait:
        seconds = max(1, int(wait + 0.999))
        raise Problem(429, f"too many requests from your address; retry in {seconds} s",
                      headers={"Retry-After": str(seconds)})
    envelopes = parse_claims_body(_json_body(), max_items=svc.config.max_items)
    try:
        created, answers = publish(envelopes, svc)
    except ClaimRefused as exc:
        raise Problem(403 if exc.forged else 422, str(exc), claims=exc.problems) from None
    except ClaimConflict as exc:
        raise Problem(409, str(exc), claims=exc.problems) from None
    return jsonify({"claims": answers}), 201 if created else 200
