"""gunicorn through a stall: the whole server stopped (SIGSTOP, a paused VM,
a host swapping) and run again, its clients' requests waiting meanwhile.

Two things gunicorn does on waking would lose those requests:

- a gthread worker's first wait for events returns none (an ``epoll_wait``
  interrupted by the stop, past its timeout), and its sweep then closes the
  kept-alive connections whose idle time ran out during the stop, requests
  on them unread: the client gets a reset, and a front server does not
  retry a POST it had sent (``StallTolerantThreadWorker`` reads first);
- the arbiter, stopped too, finds every worker's report stale and restarts
  them with the requests they hold (``StallTolerantArbiter`` gives them a
  whole timeout again).

``serve(application)`` runs a gunicorn application with that arbiter;
workers take ``StallTolerantThreadWorker`` (or a subclass) as their class.
"""

from __future__ import annotations

import os
import sys
import time

from gunicorn.arbiter import Arbiter
from gunicorn.workers.gthread import ThreadWorker


class StallTolerantThreadWorker(ThreadWorker):
    """gunicorn's gthread worker, except that a connection whose time ran out
    is closed only once what arrived on it was read (see the module docstring)."""

    def murder_keepalived(self, force=False):
        now = time.monotonic()
        kept, pending = self.keepalived_conns, getattr(self, "pending_conns", None)
        if not force and ((kept and kept[0].timeout <= now) or (pending and pending[0].timeout <= now)):
            self.wait_for_and_dispatch_events(timeout=0)  # a request waiting takes its connection off the sweep
        super().murder_keepalived(force)


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


def serve(application) -> None:
    """``application.run()`` (gunicorn's BaseApplication) with StallTolerantArbiter."""
    try:
        StallTolerantArbiter(application).run()
    except RuntimeError as exc:  # as BaseApplication.run reports it
        print(f"\nError: {exc}\n", file=sys.stderr)
        sys.exit(1)
