"""Workers pinned to CPUs of their own (web.cpus): which CPU each new worker
gets, when nothing is pinned, and a real ``labelcheck serve`` whose workers
each run on one CPU, a restarted worker included."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from labelcheck.web import cpus
from slowclients import free_port, serve, stop


def test_each_new_worker_gets_the_cpu_fewest_workers_hold():
    assert cpus.pick_cpu([0, 1, 2, 3], []) == 0
    assert cpus.pick_cpu([0, 1, 2, 3], [0, 1]) == 2
    assert cpus.pick_cpu([0, 1, 2, 3], [0, 1, 3]) == 2  # a restarted worker takes the CPU left free
    assert cpus.pick_cpu([4, 6], [4, 6, 4]) == 6  # more workers than CPUs (TTIN): spread evenly
    assert cpus.pick_cpu([2, 5], [9]) == 2  # a CPU no longer allowed counts for nothing


@pytest.mark.parametrize("allowed, workers, wanted, pinned", [
    ([0, 1], 2, True, [0, 1]),
    ([0, 1, 2, 3], 4, True, [0, 1, 2, 3]),
    ([0, 1], 2, False, []),  # LABELCHECK_PIN_WORKERS=0
    ([0, 1, 2, 3], 2, True, []),  # fewer workers than CPUs: each may use any
    ([0, 1], 3, True, []),  # more workers than CPUs
    ([0], 1, True, []),  # one CPU: nothing to choose
    ([], 2, True, []),  # no sched_getaffinity
])
def test_workers_are_pinned_only_one_to_a_cpu(monkeypatch, allowed, workers, wanted, pinned):
    monkeypatch.setattr(cpus, "allowed_cpus", lambda: allowed)
    assert cpus.plan(workers, wanted) == pinned
    assert bool(cpus.hooks(pinned)) is bool(pinned)


def allowed_list(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("no Cpus_allowed_list")


def workers_of(master: int, count: int, timeout: float = 30.0) -> list[int]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        kids = [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
        if len(kids) == count:
            return kids
        time.sleep(0.1)
    raise AssertionError(f"{count} workers did not start")


needs_cpus = pytest.mark.skipif(not Path("/proc/self/status").exists() or len(cpus.allowed_cpus()) < 2,
                                reason="Linux with at least two CPUs")


@needs_cpus
@pytest.mark.slow
def test_a_real_server_runs_each_worker_on_a_cpu_of_its_own(tmp_path):
    allowed = cpus.allowed_cpus()
    proc = serve(tmp_path / "data", free_port(), "--workers", str(len(allowed)), "--threads", "2")
    try:
        kids = workers_of(proc.pid, len(allowed))
        end = time.monotonic() + 10  # a worker pins itself right after its fork: one seen just forked is not yet
        while not all(allowed_list(pid).isdigit() for pid in kids) and time.monotonic() < end:
            time.sleep(0.05)
        got = sorted(int(allowed_list(pid)) for pid in kids)  # one CPU each: a single number
        assert got == allowed
        assert allowed_list(proc.pid) != allowed_list(kids[0])  # the master is not pinned
        freed = int(allowed_list(kids[0]))
        os.kill(kids[0], signal.SIGKILL)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            now = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
            new = [p for p in now if p not in kids]
            if new and len(now) == len(allowed):
                break
            time.sleep(0.1)
        assert new, "the killed worker was not replaced"
        end = time.monotonic() + 10  # the replacement pins itself right after the fork
        while allowed_list(new[0]) != str(freed) and time.monotonic() < end:
            time.sleep(0.05)
        assert allowed_list(new[0]) == str(freed)
    finally:
        out = stop(proc)
    assert "not pinned" not in out, out


@needs_cpus
@pytest.mark.slow
def test_pinning_can_be_turned_off(tmp_path):
    allowed = cpus.allowed_cpus()
    proc = serve(tmp_path / "data", free_port(), "--workers", str(len(allowed)), "--threads", "2",
                 env={"LABELCHECK_PIN_WORKERS": "0"})
    try:
        for pid in workers_of(proc.pid, len(allowed)):
            assert allowed_list(pid) == allowed_list(proc.pid)
    finally:
        stop(proc)
