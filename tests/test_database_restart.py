"""A PostgreSQL-backed node while its database restarts (docs/protocol.md §11):
appends and reads fail fast while it is away, the last good producer
registry keeps serving, and everything works again at the first try once it
is back (no connection the restart closed is lent again). A cluster of its
own: the test stops and starts it."""

from __future__ import annotations

import time

import pytest

import pg
from labelcheck.ledger import keyfile as keys
from labelcheck.ledger.log import LedgerError
from labelcheck.ledger.pgstore import POOL_WAIT
from labelcheck.ledger.queue_append import QueueAppender
from labelcheck.pipeline.config import Config
from labelcheck.pipeline.registry import registry_add, registry_revoke
from labelcheck.pipeline.services import Services
from labelcheck.claims.trust import Producer
from labelcheck.util.times import now_text


@pytest.fixture
def cluster():
    server = pg.cluster_or_skip()
    yield server
    server.stop()


SHA = "ab" * 32


def _records(tag: str) -> list[dict]:
    return [{"kind": "test", "tag": tag, "n": i} for i in range(3)]


def test_a_node_across_a_database_restart(tmp_path, cluster):
    svc = Services(Config(data_dir=tmp_path, database=cluster.create_database("restart"), ledger_scrub_duty=0))
    try:
        signer = keys.generate_key("restart")
        producer = Producer(name="Restart AI", vkey=signer.vkey, filing="F-1")
        svc.change_registry(lambda reg: registry_add(reg, producer, now_text()))
        led = svc.ledger
        led.append(_records("before"))
        size = led.size()

        # Down and up again with nobody asking meanwhile: the pooled
        # connections the restart closed are not lent; the first reads work.
        cluster.halt()
        cluster.resume()
        assert led.size() == size
        assert led.verify().ok
        assert svc.registry.lookup(producer.key_id) is not None

        # Away: appends and reads fail, soon; the registry serves the last good copy.
        cluster.halt()
        started = time.monotonic()
        with pytest.raises(LedgerError):
            led.append(_records("away"))
        with pytest.raises(LedgerError):
            led.size()
        assert time.monotonic() - started < POOL_WAIT + 10
        assert svc.registry.lookup(producer.key_id) is not None

        # Back: appends go through again within seconds, nothing was written while away.
        cluster.resume()
        deadline = time.monotonic() + 15
        while True:
            try:
                receipts = led.append(_records("back"))
                break
            except LedgerError:
                assert time.monotonic() < deadline, "appends never worked again"
                time.sleep(0.2)
        assert receipts[0].index == size and led.size() == size + 3
        svc.change_registry(lambda reg: registry_revoke(reg, producer.key_id, now_text(), now_text()))
        deadline = time.monotonic() + 5
        while svc.registry.lookup(producer.key_id).revoked_at is None:
            assert time.monotonic() < deadline, "the revocation never showed"
            time.sleep(0.05)
        assert led.verify().ok
    finally:
        svc.close()


def test_the_api_while_the_database_is_away(tmp_path, cluster):
    # Verify, reads and /healthz answer 503 (problem+json, Retry-After) while
    # the database is away, never 500; and 200 again once it is back.
    from labelcheck.web.app import create_app, state

    app = create_app({"data_dir": str(tmp_path), "database": cluster.create_database("api"),
                      "ledger_scrub_duty": 0, "verify_rate": 0})
    client = app.test_client()
    admin = {"Authorization": "Bearer " + (tmp_path / "admin.token").read_text().strip()}
    signer = keys.generate_key("api-restart")
    assert client.post("/v1/producers", json={"name": "API AI", "vkey": signer.vkey}, headers=admin).status_code == 201
    claim = {"content_sha256": SHA}
    assert client.post("/v1/verify", json={"items": [claim]}).status_code == 200
    assert client.get("/healthz").status_code == 200
    try:
        cluster.halt()
        got = client.post("/v1/verify", json={"items": [claim]})
        assert got.status_code == 503 and got.headers["Retry-After"] == "5"
        assert got.mimetype == "application/problem+json" and "nothing was acknowledged" in got.json["detail"]
        assert client.get("/v1/checkpoint").status_code == 503
        deadline = time.monotonic() + 10
        while client.get("/healthz").status_code != 503:  # once the sequencer has found it away
            assert time.monotonic() < deadline, "/healthz never told"
            time.sleep(0.1)
        health = client.get("/healthz").json
        assert health == {"status": "failing", "ledger": "the ledger database cannot be reached"}  # no host or port
    finally:
        cluster.resume()
    deadline = time.monotonic() + 15
    while client.post("/v1/verify", json={"items": [claim]}).status_code != 200:
        assert time.monotonic() < deadline, "verify never worked again"
        time.sleep(0.2)
    assert client.get("/v1/checkpoint").status_code == 200
    deadline = time.monotonic() + 10
    while client.get("/healthz").status_code != 200:
        assert time.monotonic() < deadline, "/healthz never recovered"
        time.sleep(0.1)
    state(app).services.close()


def test_a_follower_appends_at_the_first_try_after_a_database_restart(tmp_path, cluster, monkeypatch):
    # The followers' queueing connections were closed by the restart: they
    # are replaced before use, not found broken by the next append. Any node
    # may lead after the restart (on a busy machine the first node's
    # sequencer is often not the first to reconnect), so two followers
    # queue before it: at least one of them follows after it too.
    url = cluster.create_database("follower")
    a, b = pg.two_nodes(tmp_path, url, "restart.example/log", _records("first"))
    c = pg.node(tmp_path, "c", "restart.example/log", url)
    nodes = (a, b, c)
    try:
        b.append(_records("queued"))
        c.append(_records("queued"))
        cluster.halt()
        cluster.resume()
        deadline = time.monotonic() + 10
        while any(n.unreachable is not None for n in nodes) or not any(n.sequencer.leader for n in nodes):
            assert time.monotonic() < deadline, "no node leads again"
            time.sleep(0.05)
        follower = b if not b.sequencer.leader else c
        # An INSERT found broken would be followed by a look for its row:
        # with the connection replaced first, there is none.
        monkeypatch.setattr(QueueAppender, "_find", _not_looked_for)
        receipts = follower.append(_records("after"))
        assert receipts[0].index == 9 and a.verify().ok
    finally:
        for n in nodes:
            n.close()


def _not_looked_for(*_args):
    raise AssertionError("the queueing connection was found broken by the append")


def test_reads_work_at_once_after_a_long_outage(tmp_path, cluster):
    # Connection attempts that failed while the database was away are not
    # retried on a growing back-off (1, 2, 4, 8 s ...): the first reads once
    # it is back would wait for the next retry (measured: about 4 s after an
    # outage of 8 s; past the pool's wait of 5 s on a busy machine).
    svc = Services(Config(data_dir=tmp_path, database=cluster.create_database("outage"), ledger_scrub_duty=0))
    try:
        led = svc.ledger
        led.append(_records("before"))
        size = led.size()
        cluster.halt()
        away = time.monotonic() + 8  # so the next retry would be some 7 s after it is back
        while time.monotonic() < away:  # requests keep coming meanwhile, and fail
            with pytest.raises(LedgerError):
                led.size()
            time.sleep(0.5)
        cluster.resume()
        start = time.monotonic()
        assert led.size() == size
        assert led.entries(0, size)
        assert time.monotonic() - start < 1.0  # about 0.01 s; without: 2 to 7 s
    finally:
        svc.close()
