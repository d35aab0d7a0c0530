"""Crash safety and multi-process appends, with real processes (tests/ledger_child.py)."""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labelcheck.ledger import Ledger

CHILD = Path(__file__).resolve().parent / "ledger_child.py"
ORIGIN = "crash.example/log"


def spawn(data_dir, tag, count, batch=1, start_file=None) -> subprocess.Popen:
    args = [sys.executable, str(CHILD), str(data_dir), ORIGIN, tag, str(count), str(batch)]
    if start_file:
        args.append(str(start_file))
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def acknowledged(output: bytes) -> list[tuple[int, bytes, int]]:
    """(index, leaf hash, k) for every complete line the child printed."""
    out = []
    for line in output.split(b"\n"):
        parts = line.split()
        if len(parts) == 3:
            out.append((int(parts[0]), base64.b64decode(parts[1]), int(parts[2])))
    return out


def check_acknowledged(led: Ledger, acks, tag: str) -> None:
    for index, leaf, k in acks:
        assert led.leaf_hash(index) == leaf, f"acknowledged entry {index} changed"
        value = json.loads(led.entries(index, index + 1)[0])
        assert (value["tag"], value["n"], value["index"]) == (tag, k, index)


@pytest.mark.slow
def test_acknowledged_entries_survive_sigkill(tmp_path):
    rng = random.Random(20261125)
    data_dir = tmp_path / "data"
    all_acks = []
    for round_ in range(20):
        tag = f"round{round_}"
        child = spawn(data_dir, tag, -1, batch=rng.choice([1, 1, 3, 10]))
        first = child.stdout.readline()  # appending has begun
        assert first, child.stderr.read().decode()
        time.sleep(rng.uniform(0, 0.15))
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate()
        assert child.returncode == -signal.SIGKILL
        acks = acknowledged(first + rest)
        assert acks
        all_acks.append((tag, acks))
        with Ledger.open_dir(data_dir, origin=ORIGIN) as led:  # the start-up check passes
            for t, a in all_acks:
                check_acknowledged(led, a, t)
            report = led.verify()
            assert report.ok, report.summary()


@pytest.mark.slow
def test_four_processes_append_one_contiguous_log(tmp_path):
    data_dir = tmp_path / "data"
    Ledger.open_dir(data_dir, origin=ORIGIN).close()  # key and schema exist before the race
    go = tmp_path / "go"
    children = [spawn(data_dir, f"p{i}", 60, batch=1 + (i % 2) * 2, start_file=go) for i in range(4)]
    time.sleep(0.3)
    go.touch()
    results = []
    for i, child in enumerate(children):
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err.decode()
        results.append((f"p{i}", acknowledged(out)))
    indices = sorted(index for _, acks in results for index, _, _ in acks)
    assert indices == list(range(240))
    with Ledger.open_dir(data_dir, origin=ORIGIN) as led:
        assert led.size() == 240
        for tag, acks in results:
            check_acknowledged(led, acks, tag)
            assert [k for _, _, k in acks] == list(range(60))  # each process's own order kept
        report = led.verify()
        assert report.ok, report.summary()


@pytest.mark.slow
def test_processes_creating_a_ledger_at_once_share_one_key(tmp_path):
    data_dir = tmp_path / "fresh"
    go = tmp_path / "go"
    children = [spawn(data_dir, f"p{i}", 5, start_file=go) for i in range(3)]
    go.touch()
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err.decode()
    assert len(list(data_dir.iterdir())) >= 2 and not [p for p in os.listdir(data_dir) if p.endswith(".tmp")]
    with Ledger.open_dir(data_dir, origin=ORIGIN) as led:
        assert led.size() == 15 and led.verify().ok


HOLDER = """
import sys, time
from labelcheck.ledger.store import Store
store = Store(sys.argv[1])
with store.write():
    print("holding", flush=True)
    time.sleep(60)
"""


def test_a_writer_killed_while_holding_the_write_lock_releases_it(tmp_path):
    """Writers queue on flock(<db>.lock); the kernel frees it when its holder dies."""
    import fcntl

    data_dir = tmp_path / "data"
    with Ledger.open_dir(data_dir, origin=ORIGIN) as led:
        led.append([{"n": 0}])
        db = data_dir / "ledger.db"
        child = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdout=subprocess.PIPE,
                                 cwd=Path(__file__).resolve().parents[1])
        try:
            assert child.stdout.readline() == b"holding\n"
            with open(str(db) + ".lock", "rb") as probe:
                with pytest.raises(BlockingIOError):
                    fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=10)
                start = time.monotonic()
                assert [r.index for r in led.append([{"n": 1}])] == [1]
                assert time.monotonic() - start < 5  # not the 60 s busy timeout
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
        finally:
            child.kill()
            child.wait()
        assert led.verify().ok
