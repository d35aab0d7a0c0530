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
a paused VM): gunicorn's arbiter, stopped too, would find every report
stale on waking and restart the workers with the requests they hold.
"""

from __future__ import annotations

import gc
import os
import sys
import time

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from labelcheck.pipeline.config import Config
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
        try:
            StallTolerantArbiter(self).run()
        except RuntimeError as exc:  # as BaseApplication.run reports it
            print(f"\nError: {exc}\n", file=sys.stderr)
            sys.exit(1)

    def load(self):
        app = create_app(self.labelcheck_config)
        app.wsgi_app = ReadGuard(app.wsgi_app, self.labelcheck_config.max_body)
        _tune_gc()
        return app


class StallTolerantArbiter(Arbiter):
    """gunicorn's arbiter, except that time it did not run itself is not held
    against the workers: it checks their reports about once a second, so a
    longer gap (or the first check, after the workers' start) may mean the
    whole server was stopped, workers included, and each then gets a whole
    timeout to report again. A worker stopped or stuck on its own is still
    restarted after ``timeout`` seconds."""

    STALL = 5.0  # seconds between two checks that mean the arbiter itself was stopped

    def murder_workers(self) -> None:
        now = time.monotonic()
        last, self._checked = getattr(self, "_checked", None), now
        if last is None or now - last > self.STALL:
            for worker in list(self.WORKERS.values()):
                try:
                    os.utime(worker.tmp.fileno(), (now, now))  # as the worker's own report (WorkerTmp.notify)
                except (OSError, ValueError):
                    pass  # gone meanwhile
        super().murder_workers()


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
