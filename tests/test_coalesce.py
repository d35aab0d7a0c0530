"""Request coalescing (pipeline.coalesce): concurrent requests checked in
one group and recorded in one append, each answered with its own results,
failures kept to the requests they belong to, and nobody left waiting."""

from __future__ import annotations

import threading
import time

import pytest

from labelcheck.pipeline.coalesce import Coalescer, Interrupted

WAIT = 10


class Stages:
    """``check`` and ``record`` stages that log the groups they get; ``check``
    can be held at its start (``hold``) to let submissions queue."""

    def __init__(self, fail_check=(), fail_record=(), raise_in=None):
        self.checked: list[list] = []
        self.recorded: list[list] = []
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()
        self.fail_check, self.fail_record, self.raise_in = set(fail_check), set(fail_record), raise_in

    def check(self, jobs):
        self.entered.set()
        assert self.hold.wait(WAIT)
        self.checked.append([job.items for job in jobs])
        if self.raise_in == "check":
            raise RuntimeError("check broke")
        for job in jobs:
            if job.items[0] in self.fail_check:
                job.error = ValueError(f"bad item {job.items[0]}")
            else:
                job.checked = [f"checked {x}" for x in job.items]

    def record(self, jobs):
        self.recorded.append([job.items for job in jobs])
        if self.raise_in == "record":
            raise RuntimeError("record broke")
        for job in jobs:
            job.value = [f"{c}, recorded" for c in job.checked]


def submit_all(co: Coalescer, batches: list[list]) -> dict:
    """Submit each of ``batches`` from its own thread; what each got (value or exception)."""
    got = {}

    def one(i):
        try:
            got[i] = co.submit(batches[i])
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            got[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads), "a submission was left waiting"
    return got


def queue_behind_a_held_leader(co: Coalescer, stages: Stages, batches: list[list]) -> dict:
    """The first batch leads and is held in ``check`` while the rest queue; then all go on."""
    stages.hold.clear()
    got = {}

    def lead():
        try:
            got[0] = co.submit(batches[0])
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            got[0] = exc

    first = threading.Thread(target=lead)
    first.start()
    assert stages.entered.wait(WAIT)
    rest: dict = {}
    runner = threading.Thread(target=lambda: rest.update(submit_all(co, batches[1:])))
    runner.start()
    deadline = time.monotonic() + WAIT
    while len(co._turns) < len(batches) - 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    stages.hold.set()
    first.join(WAIT)
    runner.join(WAIT)
    got.update({i + 1: v for i, v in rest.items()})
    return got


def test_one_request_alone_is_checked_and_recorded():
    stages = Stages()
    co = Coalescer(stages.check, stages.record)
    assert co.submit(["a", "b"]) == ["checked a, recorded", "checked b, recorded"]
    assert stages.checked == [[["a", "b"]]] and stages.recorded == [[["a", "b"]]]
    assert co.submit(["c"]) == ["checked c, recorded"]  # the lead was given back


def test_requests_queued_behind_a_leader_are_checked_and_recorded_together():
    stages = Stages()
    co = Coalescer(stages.check, stages.record)
    batches = [[f"r{i}"] for i in range(6)]
    got = queue_behind_a_held_leader(co, stages, batches)
    assert got == {i: [f"checked r{i}, recorded"] for i in range(6)}  # each its own answer
    assert stages.checked[0] == [["r0"]]
    assert sorted(stages.checked[1]) == [[f"r{i}"] for i in range(1, 6)]  # one group for the five
    assert len(stages.recorded) == 2


def test_a_group_holds_whole_requests_up_to_max_items():
    stages = Stages()
    co = Coalescer(stages.check, stages.record, max_items=4)
    batches = [["lead"], ["a1", "a2", "a3"], ["b1", "b2"], ["c1"], ["d1", "d2", "d3", "d4", "d5"]]
    got = queue_behind_a_held_leader(co, stages, batches)
    assert all(got[i] == [f"checked {x}, recorded" for x in batches[i]] for i in range(len(batches)))
    for group in stages.checked[1:]:
        sizes = [len(items) for items in group]
        assert sum(sizes) <= 4 or len(group) == 1, stages.checked  # over the cap only as one request
    assert sorted(x for g in stages.checked for items in g for x in items) == sorted(x for b in batches for x in b)


def test_a_request_failing_its_check_fails_alone():
    stages = Stages(fail_check={"bad"})
    co = Coalescer(stages.check, stages.record)
    got = queue_behind_a_held_leader(co, stages, [["lead"], ["ok1"], ["bad"], ["ok2"]])
    assert isinstance(got[2], ValueError) and "bad item bad" in str(got[2])
    assert got[1] == ["checked ok1, recorded"] and got[3] == ["checked ok2, recorded"]
    assert all(["bad"] not in group for group in stages.recorded)  # never recorded


@pytest.mark.parametrize("where", ["check", "record"])
def test_a_stage_that_raises_fails_its_group_and_the_next_requests_go_on(where):
    stages = Stages(raise_in=where)
    co = Coalescer(stages.check, stages.record)
    got = queue_behind_a_held_leader(co, stages, [["lead"], ["x"], ["y"]])
    assert all(isinstance(v, RuntimeError) and f"{where} broke" in str(v) for v in got.values())
    stages.raise_in = None
    assert co.submit(["z"]) == ["checked z, recorded"]


def test_an_interrupted_leader_answers_every_request_it_took():
    stages = Stages()
    calls = []

    def record(jobs):
        calls.append(len(jobs))
        if len(calls) == 2:
            raise KeyboardInterrupt  # not an error of the jobs: the leader's thread stops
        stages.record(jobs)

    co = Coalescer(stages.check, record)
    got = queue_behind_a_held_leader(co, stages, [["lead"], ["x"], ["y"]])
    assert got[0] == ["checked lead, recorded"]
    taken = [v for v in got.values() if not isinstance(v, list)]
    assert any(isinstance(v, KeyboardInterrupt) for v in taken)  # the leader's own thread
    assert all(isinstance(v, (KeyboardInterrupt, Interrupted)) for v in taken) and len(taken) == 2
    assert co.submit(["z"]) == ["checked z, recorded"]  # the lead was given back


def test_the_next_group_is_checked_while_the_last_one_is_recorded():
    """Stage 1 of a group overlaps stage 2 of the one before it: the check
    never waits for the ledger."""
    second_checking = threading.Event()
    order = []

    def check(jobs):
        order.append(("check", jobs[0].items[0]))
        if jobs[0].items[0] == "second":
            second_checking.set()
        for job in jobs:
            job.checked = job.items

    def record(jobs):
        if jobs[0].items[0] == "first":
            threading.Thread(target=lambda: got.__setitem__("second", co.submit(["second"]))).start()
            assert second_checking.wait(WAIT), "the second group waited for the first one's record"
        order.append(("record", jobs[0].items[0]))
        for job in jobs:
            job.value = job.checked

    got: dict = {}
    co = Coalescer(check, record)
    assert co.submit(["first"]) == ["first"]
    deadline = time.monotonic() + WAIT
    while "second" not in got and time.monotonic() < deadline:
        time.sleep(0.001)
    assert got["second"] == ["second"]
    assert order.index(("check", "second")) < order.index(("record", "first"))
