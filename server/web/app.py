"""The Flask application factory (``create_app``), after Flask's own pattern:
each gunicorn worker builds its app after the fork; the per-process services
(:class:`labelcheck.pipeline.services.Services`) hang off ``app.extensions``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import Flask, Response, current_app, jsonify, redirect
from flask_cors import CORS

from labelcheck.demo import site as demo_site
from labelcheck.ledger import LedgerDamaged, LedgerError
from labelcheck.pipeline.config import EXTENSION_ORIGINS, Config
from labelcheck.pipeline.services import Services, validate
from labelcheck.pipeline.verify import server_version
from labelcheck.web import api, claims_api, headers, openapi, problems, tiles, tokens
from labelcheck.web.json_provider import FastJSONProvider
from labelcheck.web.ratelimit import ClientRateLimiter

EXTENSION_KEY = "labelcheck"


@dataclass
class WebState:
    """What the HTTP layer keeps beside the services: bearer tokens and the
    verify rate limit."""

    services: Services
    admin_token: str
    regulator_token: str
    bucket: ClientRateLimiter


def create_app(config: dict | Config | None = None) -> Flask:
    """Build the labelcheck server.

    ``config``: a Config, or a dict of Config fields layered over the
    ``LABELCHECK_*`` environment, or None for the environment alone.
    """
    cfg = config if isinstance(config, Config) else Config.load(config or {})
    validate(cfg)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    svc = Services(cfg)
    svc.registry  # a damaged trust.json stops the start, not every request
    svc.witnessing.start()
    try:
        svc.ledger  # opened now, so its background re-hash starts with the process
    except LedgerDamaged:
        pass  # every request touching the ledger, and /healthz, answers 503 saying why

    app = Flask("labelcheck")
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body
    app.json = FastJSONProvider(app)
    app.extensions[EXTENSION_KEY] = WebState(
        services=svc,
        admin_token=tokens.ensure_token(cfg.admin_token_path),
        regulator_token=tokens.ensure_token(cfg.regulator_token_path),
        bucket=ClientRateLimiter(cfg.verify_rate, cfg.verify_burst, trusted_proxies=cfg.trusted_proxies))
    problems.register(app)
    headers.register(app)
    app.register_error_handler(LedgerDamaged, _ledger_damaged)
    app.register_error_handler(LedgerError, _ledger_unavailable)
    CORS(app, origins=cors_patterns(cfg.cors_origins), allow_headers=["Content-Type", "Authorization"],
         methods=["GET", "POST", "OPTIONS"], max_age=600, vary_header=True)

    app.register_blueprint(api.bp)
    app.register_blueprint(claims_api.bp)
    app.register_blueprint(tiles.bp)
    app.add_url_rule("/healthz", "healthz", _healthz)
    app.add_url_rule("/openapi.json", "openapi", openapi.view(cfg))
    app.add_url_rule("/", "index", _index)
    if cfg.demo:
        demo_site.register(app, svc)
    return app


def prepare(cfg: Config) -> str:
    """Before forking workers: data dir, tokens, ledger key and (with demo)
    the demo producer. Returns the ledger's verifier key. The ledger is
    closed again so no SQLite handle is inherited by the workers."""
    validate(cfg)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    tokens.ensure_token(cfg.admin_token_path)
    tokens.ensure_token(cfg.regulator_token_path)
    svc = Services(cfg)
    try:
        vkey = svc.ledger.verifier_key
        if cfg.demo:
            demo_site.ensure_demo_producer(svc)
    finally:
        svc.close()
    return vkey


def state(app: Flask | None = None) -> WebState:
    """The web state of ``app`` (default: the current app)."""
    return (app or current_app).extensions[EXTENSION_KEY]


def _healthz() -> Response:
    """200 while the ledger can take entries; 503 saying why once it cannot
    (damage found at start-up or by the background re-hash, docs/protocol.md §4;
    a PostgreSQL database this process cannot reach, §11)."""
    try:
        ledger = state().services.ledger
        damage = ledger.damage or (ledger.unreachable and "the ledger database cannot be reached")  # where: the log
    except LedgerError as exc:
        damage = str(exc)
    if damage is not None:
        return jsonify({"status": "failing", "ledger": damage}), 503
    return jsonify({"status": "ok"})


def _index() -> Response:
    """Where a visitor of ``/`` can go: the demo pages when they are served
    (a browser is sent there), else the API's own description and entry points."""
    if state().services.config.demo:
        return redirect("/demo/", 302)
    return jsonify({"service": "labelcheck", "version": server_version(), "openapi": "/openapi.json",
                    "health": "/healthz", "checkpoint": "/v1/checkpoint", "keys": "/v1/keys",
                    "tiles": "/tlog/checkpoint"})


def _ledger_damaged(exc: LedgerDamaged) -> Response:
    return problems.problem_response(503, str(exc))


def _ledger_unavailable(exc: LedgerError) -> Response:
    """A read or an append that failed for the database (unreachable, a
    full disk): nothing was acknowledged (a commit cut off may have landed,
    unanswered); the client may retry."""
    current_app.logger.warning("ledger unavailable: %s", exc)
    return problems.problem_response(503, "the ledger is unavailable right now; nothing was acknowledged, retry shortly",
                                     {"Retry-After": "5"})


def cors_patterns(extra: tuple[str, ...]) -> list[re.Pattern]:
    """Allowed CORS origins as anchored regexes; ``*`` is one DNS label or
    extension id (letters, digits, dashes), so it never spans a dot or a slash."""
    out = []
    for pattern in (*EXTENSION_ORIGINS, *extra):
        parts = [re.escape(p) for p in pattern.split("*")]
        out.append(re.compile("^" + "[A-Za-z0-9-]+".join(parts) + "$"))
    return out
