"""How the leader's own appends wait (ledger/sequencer.py): each waiting
thread is woken by its own request's end, and an append no commit takes
in time fails having written nothing. No database: the sequencer thread
is not started, the test plays its part."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from labelcheck.ledger.commit import CommitError, Receipt
from labelcheck.ledger.sequencer import Sequencer, _finish

PARTS = [(b'{"a":1,"index":', b',"prev":"', b'"}')]


@pytest.fixture
def seq():
    s = Sequencer(store=None, appender=SimpleNamespace(), poll=0.05)
    s.leader = True
    yield s
    s.stop()


def _append_in_thread(seq, timeout=5.0):
    out = {}

    def run():
        try:
            out["result"] = seq.append(PARTS, timeout=timeout)
        except CommitError as exc:
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    return t, out


def _queued(seq, n):
    deadline = time.monotonic() + 5
    while len(seq._own) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(seq._own) == n


def test_an_own_append_no_commit_takes_in_time_fails_and_is_withdrawn(seq):
    with pytest.raises(CommitError, match="took no records within 0.2 s; nothing was written"):
        seq.append(PARTS, timeout=0.2)
    assert seq._own == []  # nothing left for a later commit to write


def test_each_waiting_append_wakes_when_its_own_request_is_done(seq):
    first, out1 = _append_in_thread(seq)
    _queued(seq, 1)
    second, out2 = _append_in_thread(seq)
    _queued(seq, 2)
    with seq._lock:  # a commit takes and finishes the first only
        req = seq._own.pop(0)
    req.receipts, req.done = [Receipt(0, b"\0" * 32, b"note", SimpleNamespace(size=1))], True
    _finish([req])
    first.join(5)
    assert not first.is_alive() and out1["result"][0].index == 0
    assert second.is_alive() and out2 == {}  # still waiting for a commit of its own
    seq._stop_leading()  # no commit took it: handed back, to be queued
    second.join(5)
    assert out2 == {"result": None}


def test_an_append_a_commit_took_waits_past_its_timeout_for_that_commit(seq):
    waiter, out = _append_in_thread(seq, timeout=0.1)
    _queued(seq, 1)
    with seq._lock:
        req = seq._own.pop(0)  # taken into a commit that is slow to finish
    time.sleep(0.3)
    assert waiter.is_alive()  # not failed: the commit may yet write it
    req.error, req.done = CommitError("append failed, nothing was written: boom"), True
    _finish([req])
    waiter.join(5)
    assert "boom" in str(out["error"])
