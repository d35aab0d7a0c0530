"""Concurrent requests of one process verified together (request coalescing).

Each request thread submits its items and waits; one thread at a time (the
leader) takes every submission queued so far and runs two stages for them:

1. ``check(jobs)``, holding the lead: the claims of all the queued requests
   checked in one loop, against one registry view, so a burst of one-item
   requests costs what one batch of them does (one thread, its caches warm,
   instead of a thread switch between any two claims);
2. ``record(jobs)``, after handing the lead to the next queued request: their
   ledger entries in one append. The next group is checked meanwhile, so
   checking never waits for the ledger's fsync.

The scheme is the ledger's own group commit (``labelcheck.ledger.commit``,
both on ``util.turns``) moved up to include the checks; a job's failure in stage 1 is its own, a
failed append fails the group it took, as a failed commit does.

A group holds whole requests up to ``max_items`` items (at least one
request), so one request's wait is bounded by a batch of that size.
"""

from __future__ import annotations

import threading
from typing import Callable

from labelcheck.util.turns import Turns


class Job:
    """One request's items, what ``check`` made of them, then its value or its error."""

    __slots__ = ("items", "checked", "value", "error", "wake")

    def __init__(self, items: list) -> None:
        self.items = items
        self.checked = None  # stage 1's output, for stage 2
        self.value = None
        self.error: BaseException | None = None
        self.wake: threading.Lock | None = None  # held while its thread waits

    def result(self):
        if self.error is not None:
            raise self.error
        return self.value


Stage = Callable[[list[Job]], None]


class Interrupted(Exception):
    """The thread leading a group stopped (an interrupt, not an error of the
    jobs): its jobs were not recorded."""


class Coalescer:
    """Runs ``check`` then ``record`` over the jobs of concurrent ``submit``
    calls (see the module docstring). ``check`` sets each job's ``checked``
    (or ``error``), ``record`` its ``value`` (or ``error``); an exception out
    of a stage fails the jobs it was given that have no error yet. Holds
    locks: make a new one in a forked child."""

    def __init__(self, check: Stage, record: Stage, max_items: int = 128) -> None:
        self.check, self.record, self.max_items = check, record, max_items
        self._turns = Turns()

    def submit(self, items: list):
        """The value ``record`` set for ``items``; raises the job's error."""
        job = Job(items)
        self._turns.wait(job)
        if job.value is None and job.error is None:  # not answered: it leads
            self._lead(job)
        return job.result()

    def _lead(self, own: Job) -> None:
        """Check and record a group (``own`` is the first queued job, so it
        is in it), handing the lead on in between; every job taken is
        answered and woken, whatever happens."""
        group: list[Job] = []
        handed = False
        try:
            group = self._turns.take(self.max_items, lambda job: len(job.items))
            _run(self.check, group)
            self._turns.hand_over(own)
            handed = True
            _run(self.record, [job for job in group if job.error is None])
        finally:
            if not handed and self._turns.hand_over(own):
                group = [own]  # stopped before it took anything
            for job in group:
                if job.error is None and job.value is None:
                    job.error = Interrupted("the verification was interrupted; nothing was recorded")
            self._turns.wake(group, own)


def _run(stage: Stage, jobs: list[Job]) -> None:
    """``stage(jobs)``; an exception fails the jobs it left without an error."""
    if not jobs:
        return
    try:
        stage(jobs)
    except Exception as exc:
        for job in jobs:
            if job.error is None:
                job.error = exc
