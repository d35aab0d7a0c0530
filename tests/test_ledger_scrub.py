"""The background re-hash of the whole log (ledger.scrub): damage the start-up
check cannot see (it looks at the tail only) stops appends once found, and a
real app answers 503 saying why on /healthz, verifies and registry changes."""

from __future__ import annotations

import sqlite3
import time

import pytest

from labelcheck.ledger import Ledger, LedgerDamaged, checkpoint, merkle, note
from labelcheck.ledger import keyfile as keys
from labelcheck.ledger.scrub import Scrubber
from labelcheck.web.app import create_app
from hash_edits import set_hash
from test_ledger_tamper import edit, entry

ORIGIN = "scrub.example/log"
SIZE = 100


@pytest.fixture
def data_dir(tmp_path):
    """100 entries in 10 commits: checkpoints at 10, 20, ... 100."""
    d = tmp_path / "data"
    with Ledger.open_dir(d, origin=ORIGIN) as led:
        for c in range(10):
            led.append([{"tag": "abc", "n": c * 10 + i} for i in range(10)])
    return d


def changed_leaf(d):
    edit(d, ("UPDATE entries SET data = ? WHERE idx = 3", (entry(d, 3).replace(b"abc", b"abd"),)))
    return "entry 3: its bytes do not match its stored leaf hash"


def reordered(d):
    a, b = entry(d, 5), entry(d, 6)
    edit(d, ("UPDATE entries SET data = ? WHERE idx = 5", (b,)), ("UPDATE entries SET data = ? WHERE idx = 6", (a,)))
    return "entry 5: carries index 6"


def changed_interior_hash(d):
    edit(d, lambda db: set_hash(db, merkle.stored_hash_index(1, 2), b"\x07" * 32))
    return "(level 1) does not match the entries"


def checkpoint_with_another_root(d):
    """Signed with the ledger's own key, as an operator could: only the recomputed tree tells."""
    signer = keys.load_or_create(d / "ledger.key", ORIGIN)
    forged = checkpoint.sign_checkpoint(checkpoint.Checkpoint(ORIGIN, 20, b"\x01" * 32), signer)
    edit(d, ("UPDATE checkpoints SET note = ? WHERE size = 20", (forged,)))
    return "checkpoint for size 20: signed root"


DAMAGE = [changed_leaf, reordered, changed_interior_hash, checkpoint_with_another_root]


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__)
def test_damage_behind_the_tail_opens_then_stops_appends(data_dir, damage):
    words = damage(data_dir)
    with Ledger.open_dir(data_dir, origin=ORIGIN) as led:  # the start-up check looks at the tail only
        assert led.damage is None
    with Ledger.open_dir(data_dir, origin=ORIGIN, scrub_duty=1.0) as led:
        problem = wait_for(lambda: led.damage)
        assert words in problem
        with pytest.raises(LedgerDamaged, match="nothing more is appended"):
            led.append([{"tag": "after"}])
        assert led.size() == SIZE


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__)
def test_a_real_app_answers_503_saying_why(data_dir, damage):
    words = damage(data_dir)
    app = create_app({"data_dir": data_dir, "origin": ORIGIN, "verify_rate": 0, "ledger_scrub_duty": 1.0})
    try:
        client = app.test_client()
        health = wait_for(lambda: (r := client.get("/healthz")).status_code == 503 and r)
        assert health.json["status"] == "failing" and words in health.json["ledger"]
        r = client.post("/v1/verify", json={"items": [{}]})
        assert r.status_code == 503 and r.mimetype == "application/problem+json"
        assert words in r.json["detail"] and "nothing more is appended" in r.json["detail"]
        admin = {"Authorization": "Bearer " + app.extensions["labelcheck"].admin_token}
        signer = keys.generate_key("late-ai")
        r = client.post("/v1/producers", json={"name": "Late", "vkey": signer.vkey}, headers=admin)
        assert r.status_code == 503 and words in r.json["detail"]
        trust = data_dir / "trust.json"
        assert not trust.exists() or signer.vkey not in trust.read_text()  # the registry change was undone
    finally:
        app.extensions["labelcheck"].services.close()


def test_an_undamaged_ledger_stays_healthy_and_the_scrub_completes(data_dir):
    app = create_app({"data_dir": data_dir, "origin": ORIGIN, "verify_rate": 0, "ledger_scrub_duty": 1.0})
    try:
        client = app.test_client()
        led = app.extensions["labelcheck"].services.ledger
        wait_for(lambda: led._scrubber.passes >= 1)
        assert client.get("/healthz").json == {"status": "ok"}
        assert client.post("/v1/verify", json={"items": [{}]}).status_code == 200
    finally:
        app.extensions["labelcheck"].services.close()


def test_start_up_damage_makes_healthz_say_why(data_dir):
    """Entries no checkpoint covers are refused at start-up: the app still starts, to say so."""
    db = sqlite3.connect(data_dir / "ledger.db")
    db.execute("DROP TRIGGER checkpoints_no_delete")
    db.execute("DELETE FROM checkpoints WHERE size > 90")
    db.commit()
    db.close()
    app = create_app({"data_dir": data_dir, "origin": ORIGIN, "verify_rate": 0})
    client = app.test_client()
    r = client.get("/healthz")
    assert r.status_code == 503 and "entries 90 to 99 are covered by no signed checkpoint" in r.json["ledger"]
    r = client.post("/v1/verify", json={"items": [{}]})
    assert r.status_code == 503 and "covered by no signed checkpoint" in r.json["detail"]


def test_the_scrub_keeps_to_its_cpu_share(tmp_path):
    """At duty 0.1 the scrub thread's CPU time stays near a tenth of the wall time."""
    d = tmp_path / "big"
    with Ledger.open_dir(d, origin=ORIGIN) as led:
        for c in range(20):
            led.append([{"tag": "x" * 200, "n": c * 1000 + i} for i in range(1000)])
        verifier = note.Verifier.from_vkey(led.verifier_key)
        found = []
        scrub = Scrubber(led._store, verifier, ORIGIN, duty=0.1, on_damage=found.append)
        cpu = []
        scrub._run_pass = scrub._one_pass

        def measured():
            t0, c0 = time.monotonic(), time.thread_time()
            try:
                return scrub._run_pass()
            finally:
                cpu.append((time.thread_time() - c0, time.monotonic() - t0))

        scrub._one_pass = measured
        scrub.start()
        wait_for(lambda: scrub.passes >= 1, timeout=120)
        scrub.stop()
    assert not found
    used, wall = cpu[0]
    assert used / wall < 0.2, (used, wall)
