"""Run the labelcheck app under gunicorn, programmatically.

gthread workers (a few threads each) so that concurrent verifications in one
worker can share a ledger group commit; the app is built in each worker after
the fork (no preload), so no SQLite connection crosses a fork. With one
worker per CPU, each is pinned to its own (:mod:`labelcheck.web.cpus`). No
access log: it would hold viewers' IP addresses.

Slow clients: reading a request (headers and body) has ``client_read_timeout``
seconds (:mod:`labelcheck.web.readguard`), idle kept-alive connections are
closed after ``keepalive`` seconds, and request lines and headers have
gunicorn's size limits. Deployments put a buffering front in front
(deploy/nginx.conf).

Stalls: a worker whose main loop stops reporting for ``WORKER_TIMEOUT``
seconds is restarted, but not after the whole server was stopped (SIGSTOP,
a paused VM), and requests that came meanwhile are answered
(:mod:`labelcheck.util.gunicorn_stalls`).
"""

from __future__ import annotations

import gc

from gunicorn.app.base import BaseApplication

from labelcheck.pipeline.config import Config
from labelcheck.util import gunicorn_stalls
from labelcheck.web import cpus
from labelcheck.web.app import EXTENSION_KEY, create_app
from labelcheck.web.readguard import ReadGuard


# Seconds an idle kept-alive connection stays open. A front server must
# close its idle upstream connections sooner (deploy/nginx.conf
# keepalive_timeout): a request it sends on one as the server closes it is lost.
KEEPALIVE = 5
WORKER_TIMEOUT = 60  # seconds a worker's main loop may go without reporting before it is restarted


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class LabelcheckApplication(BaseApplication):
    def __init__(self, config: Config, **options) -> None:
        self.labelcheck_config = config
        self.options = {
            "bind": bind_address(config.host, config.port),
            "workers": max(1, config.workers),
            "worker_class": "labelcheck.web.readguard.GuardedThreadWorker",
            "threads": max(1, config.threads),
            "preload_app": False,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "info",
            "timeout": WORKER_TIMEOUT,
            "keepalive": KEEPALIVE,
            "limit_request_line": 8190,
            "limit_request_fields": 100,
            "limit_request_field_size": 8190,
            "graceful_timeout": 10,
            "proc_name": "labelcheck",
            "worker_exit": _worker_exit,
            **cpus.hooks(cpus.plan(max(1, config.workers), config.pin_workers)),
            # One shared ~/.gunicorn/gunicorn.ctl would let two servers collide.
            "control_socket_disable": True,
            **options,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def run(self) -> None:
        gunicorn_stalls.serve(self)

    def load(self):
        app = create_app(self.labelcheck_config)
        app.wsgi_app = ReadGuard(app.wsgi_app, self.labelcheck_config.max_body)
        _tune_gc()
        return app


def _tune_gc() -> None:
    """Fewer cyclic collections in a worker: what the app built at start
    lives as long as the process, so it leaves the collector's view
    (gc.freeze), and requests allocate many short-lived containers that
    reference counting frees, so the youngest generation is collected after
    50,000 allocations rather than 700 (each request would otherwise run
    several collections)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _worker_exit(server, worker) -> None:
    """Close this worker's ledger so its last checkpoint and commits are flushed."""
    app = getattr(worker, "wsgi", None)
    ext = getattr(app, "extensions", {}) if app is not None else {}
    state = ext.get(EXTENSION_KEY)
    if state is not None:
        state.services.close()


def run(config: Config, **options) -> None:
    LabelcheckApplication(config, **options).run()
