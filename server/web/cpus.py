"""A CPU of its own for each gunicorn worker, when there are as many
workers as CPUs (``labelcheck serve``'s default: one worker per core).

A worker's threads take turns holding the GIL; left to the scheduler they
move between cores, and each move starts on cold caches, which a
verification (JSON, Ed25519, SQLite, hashing) feels more than a trivial
request. Pinned with ``sched_setaffinity``, each worker keeps one core's
caches, and its threads hand the GIL over without waking a thread on the
other core. ``scripts/bench server``, pinned against not, alternating, 3
runs each: single-item requests 0.475-0.481 of /healthz against 0.408-0.451,
batches 0.409-0.428 of raw Ed25519 against 0.384-0.385; the server's
context switches a single-item request fell from about 10 to 4. The same
idea as nginx's ``worker_cpu_affinity auto``.

The master gives each new worker the CPU fewest live workers hold (a
restarted worker takes the one its predecessor left); the worker pins
itself right after the fork, before its threads start, so they inherit it.
Nothing is pinned with fewer or more workers than CPUs, on one CPU, where
the system has no ``sched_setaffinity`` (Linux has), or with
``LABELCHECK_PIN_WORKERS=0``.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Iterable

ATTR = "labelcheck_cpu"  # on gunicorn's worker object: the CPU the master chose


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on, or [] where that cannot be told."""
    if not hasattr(os, "sched_getaffinity"):
        return []
    return sorted(os.sched_getaffinity(0))


def plan(workers: int, wanted: bool) -> list[int]:
    """The CPUs to pin ``workers`` workers to, one each, or [] for none."""
    cpus = allowed_cpus() if wanted and hasattr(os, "sched_setaffinity") else []
    return cpus if len(cpus) > 1 and workers == len(cpus) else []


def pick_cpu(cpus: list[int], taken: Iterable[int]) -> int:
    """The CPU of ``cpus`` the fewest live workers hold (``taken``), lowest first."""
    held = Counter(taken)
    return min(cpus, key=lambda cpu: (held[cpu], cpu))


def hooks(cpus: list[int]) -> dict:
    """gunicorn settings (``pre_fork``, ``post_fork``) pinning workers to ``cpus``; {} for none."""
    if not cpus:
        return {}

    def pre_fork(server, worker) -> None:  # in the master
        taken = [getattr(w, ATTR) for w in server.WORKERS.values() if getattr(w, ATTR, None) is not None]
        setattr(worker, ATTR, pick_cpu(cpus, taken))

    def post_fork(server, worker) -> None:  # in the new worker, before its threads
        cpu = getattr(worker, ATTR, None)
        if cpu is None:
            return
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError as exc:  # a CPU taken away since start, a sandbox refusing it: run unpinned
            server.log.warning("worker %s: not pinned to CPU %s: %s", worker.pid, cpu, exc)

    return {"pre_fork": pre_fork, "post_fork": post_fork}
