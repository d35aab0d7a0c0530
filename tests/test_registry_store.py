"""The producer registry's stores (docs/protocol.md §8, §11): trust.json, and
PostgreSQL shared by several nodes. Two ``Services`` with their own
connection pools stand for two server nodes; they share one ledger."""

from __future__ import annotations

import json
import logging
import threading
import time
from itertools import count

import psycopg
import pytest

from labelcheck import claims
from labelcheck.claims.trust import Producer, TrustRegistry
from labelcheck.ledger import keyfile as keys
from labelcheck.ledger import pgstore
from labelcheck.pipeline.config import Config
from labelcheck.pipeline.errors import RegistryConflict
from labelcheck.pipeline.registry import registry_add, registry_revoke
from labelcheck.pipeline import registry_pg
from labelcheck.pipeline.registry_pg import PgRegistryStore
from labelcheck.pipeline.registry_store import FileRegistryStore
from labelcheck.pipeline.services import Services
from labelcheck.util.times import now_text

SHA = "ab" * 32
_names = count()


def producer(name: str) -> tuple[Producer, object]:
    signer = keys.generate_key(name)
    return Producer(name=name, vkey=signer.vkey, filing=f"F-{name}"), signer


def add(svc: Services, p: Producer):
    return svc.change_registry(lambda reg: registry_add(reg, p, now_text()))


def revoke(svc: Services, key_id: str, at: str):
    return svc.change_registry(lambda reg: registry_revoke(reg, key_id, at, now_text()))


def registry_entries(svc: Services) -> list[dict]:
    ledger = svc.ledger
    found = [json.loads(b) for b in ledger.entries(0, ledger.size())]
    return [e for e in found if e["kind"] == "registry"]


def within(seconds: float, check) -> float:
    """Seconds until ``check()`` held; fails after ``seconds``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, "not seen in time"
        time.sleep(0.005)
    return time.monotonic() - start


@pytest.fixture
def database(postgres):
    return postgres.create_database(f"registry_{next(_names)}")


@pytest.fixture
def nodes(tmp_path, database):
    """Two nodes on one PostgreSQL database."""
    cfg = Config(data_dir=tmp_path, database=database, ledger_scrub_duty=0)
    a, b = Services(cfg), Services(cfg)
    yield a, b
    a.close()
    b.close()


# --- trust.json ------------------------------------------------------------


def test_file_store_keeps_trust_json_and_puts_it_back_when_the_append_fails(tmp_path):
    store = FileRegistryStore(tmp_path, tmp_path / "trust.json")
    first, _ = producer("first")
    store.change(lambda reg: registry_add(reg, first, now_text()), lambda: _Ledger())
    before = (tmp_path / "trust.json").read_bytes()
    assert TrustRegistry.load(tmp_path / "trust.json").lookup(first.key_id) is not None

    second, _ = producer("second")
    with pytest.raises(OSError, match="disk full"):
        store.change(lambda reg: registry_add(reg, second, now_text()), lambda: _Ledger(fail=True))
    assert (tmp_path / "trust.json").read_bytes() == before
    assert second.key_id not in store.current() and first.key_id in store.current()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trust.json", "trust.lock"]


class _Ledger:
    def __init__(self, fail: bool = False):
        self.fail = fail

    def size(self):
        return 0

    def append(self, records):
        if self.fail:
            raise OSError(28, "disk full")
        return ["receipt"] * len(records)


# --- PostgreSQL -------------------------------------------------------------


def test_same_registry_version_as_trust_json(tmp_path, database):
    a, _ = producer("acme")
    b, _ = producer("beta")
    file_store = FileRegistryStore(tmp_path, tmp_path / "trust.json")
    pg_store = PgRegistryStore(database)
    try:
        for store in (file_store, pg_store):
            for p in (b, a):
                store.change(lambda reg, p=p: registry_add(reg, p, now_text()), lambda: _Ledger())
            store.change(lambda reg: registry_revoke(reg, a.key_id, "2026-01-01T00:00:00Z", now_text()),
                         lambda: _Ledger())
        assert pg_store.current().version == file_store.current().version
        assert pg_store.current().to_dict() == file_store.current().to_dict()  # same order too
    finally:
        pg_store.close()


def test_nodes_see_each_others_changes_within_a_second(nodes, tmp_path):
    a, b = nodes
    assert len(b.registry) == 0
    p, signer = producer("example-ai")
    claim = claims.sign_envelope(claims.build_payload(SHA, "image/png", "1", issuer=signer), signer)
    record, receipt = add(a, p)
    assert record["action"] == "add" and receipt.index >= 0
    seen_add = within(1.0, lambda: b.registry.lookup(p.key_id) is not None)
    assert claims.verify_claim(claim, b.registry, content_sha256=SHA).status == "verified"

    revoke(b, p.key_id, "2020-01-01T00:00:00Z")  # before the claim was issued
    seen_revoke = within(1.0, lambda: "revoked_key" in claims.verify_claim(claim, a.registry).reasons)
    assert a.registry.version == b.registry.version
    print(f"add seen by the other node after {seen_add * 1000:.0f} ms, revocation after {seen_revoke * 1000:.0f} ms")
    assert not (tmp_path / "trust.json").exists()  # the registry is in the database only
    assert [e["action"] for e in registry_entries(a)] == ["add", "revoke"]
    assert registry_entries(a)[-1]["registry_version"] == a.registry.version


def test_concurrent_changes_take_turns(nodes):
    a, b = nodes
    same, _ = producer("same")
    results: list[str] = []
    own = {svc: [producer(f"n{i}-{j}")[0] for j in range(8)] for i, svc in enumerate(nodes)}

    def work(svc):
        try:
            add(svc, same)
            results.append("ok")
        except RegistryConflict:
            results.append("409")
        for p in own[svc]:
            add(svc, p)

    threads = [threading.Thread(target=work, args=(svc,)) for svc in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["409", "ok"]
    want = {same.key_id} | {p.key_id for ps in own.values() for p in ps}
    for svc in nodes:  # no lost update, on either node
        within(1.0, lambda: {p.key_id for p in svc.registry} == want)
    logged = registry_entries(a)
    assert len(logged) == len(want)  # each change on the ledger once
    assert sorted(e["producer"]["key_id"] for e in logged) == sorted(want)
    assert len({e["registry_version"] for e in logged}) == len(want)


def test_a_change_whose_node_stopped_after_the_append_is_settled_once(nodes, caplog):
    a, b = nodes
    p, _ = producer("interrupted")
    store = a.registry_store

    class Dies:  # appends, then the node "stops" before its transaction commits
        def __init__(self, ledger):
            self.ledger = ledger

        def size(self):
            return self.ledger.size()

        def append(self, records):
            self.ledger.append(records)
            raise KeyboardInterrupt

    with pytest.raises(Exception) as stopped:  # _change: without change()'s own settling
        store._change(lambda reg: registry_add(reg, p, now_text()), lambda: Dies(a.ledger))
    assert isinstance(stopped.value.__cause__, KeyboardInterrupt)
    with psycopg.connect(a.config.database) as conn:  # the change did not commit ...
        assert conn.execute("SELECT count(*) FROM registry_producers").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM registry_intents").fetchone()[0] == 1
    assert len(registry_entries(a)) == 1  # ... but its entry is on the ledger
    with caplog.at_level(logging.WARNING, logger="labelcheck"):
        within(1.0, lambda: b.registry.lookup(p.key_id) is not None)  # the other node settles it
    assert "was on the ledger but not yet in the registry: applied" in caplog.text
    assert len(registry_entries(a)) == 1
    assert registry_entries(a)[0]["registry_version"] == b.registry.version
    with pytest.raises(RegistryConflict):
        add(a, p)


def test_a_node_stopped_mid_change_holds_up_the_others_only_until_the_server_ends_its_session(
        tmp_path, database, monkeypatch, caplog):
    # The stopped node's session sits idle inside its transaction, holding
    # the registry's row lock, as while its append waits; past the limit the
    # server ends it and the other node's change goes through.
    monkeypatch.setattr(registry_pg, "IDLE_IN_CHANGE", 1.0)
    cfg = Config(data_dir=tmp_path, database=database, ledger_scrub_duty=0)
    a, b = Services(cfg), Services(cfg)
    stuck, p = threading.Event(), producer("stuck")[0]

    class Stops:
        def size(self):
            return a.ledger.size()

        def append(self, records):
            stuck.set()
            time.sleep(6)  # stopped, its socket open
            raise ConnectionError("woke up")

    errors: list = []

    def change_on_a():
        try:
            a.registry_store._change(lambda reg: registry_add(reg, p, now_text()), lambda: Stops())
        except Exception as exc:
            errors.append(exc)

    stalled = threading.Thread(target=change_on_a)
    try:
        stalled.start()
        assert stuck.wait(10)
        q = producer("goes-through")[0]
        start = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="labelcheck"):
            add(b, q)
        assert 0.5 < time.monotonic() - start < 4.0
        assert "never reached the ledger: dropped" in caplog.text  # the stopped change's intent
        assert b.registry.lookup(q.key_id) is not None and b.registry.lookup(p.key_id) is None
        assert [e["producer"]["key_id"] for e in registry_entries(b)] == [q.key_id]
        stalled.join(15)
        assert errors and not stalled.is_alive()  # woken, it finds its change gone
    finally:
        a.close()
        b.close()


def test_a_change_that_never_reached_the_ledger_is_dropped(nodes, caplog):
    a, b = nodes
    p, _ = producer("never")

    class Unreachable:
        def size(self):
            return a.ledger.size()

        def append(self, records):
            raise ConnectionError("ledger unreachable")

    with caplog.at_level(logging.WARNING, logger="labelcheck"), pytest.raises(ConnectionError):
        a.registry_store.change(lambda reg: registry_add(reg, p, now_text()),
                                lambda: Unreachable())
    assert "never reached the ledger: dropped" in caplog.text
    time.sleep(0.3)
    assert b.registry.lookup(p.key_id) is None and a.registry.lookup(p.key_id) is None
    assert registry_entries(a) == []
    add(b, p)  # and it can be made again
    assert [e["action"] for e in registry_entries(a)] == ["add"]


def test_trust_json_is_imported_once(tmp_path, database, caplog):
    p, _ = producer("kept")
    q, _ = producer("also-kept")
    TrustRegistry([p, q]).save(tmp_path / "trust.json")
    version = TrustRegistry.load(tmp_path / "trust.json").version
    cfg = Config(data_dir=tmp_path, database=database, ledger_scrub_duty=0)
    with caplog.at_level(logging.WARNING, logger="labelcheck"):
        svc = Services(cfg)
        assert [x.key_id for x in svc.registry] == [p.key_id, q.key_id] and svc.registry.version == version
    assert "imported 2 producers from" in caplog.text
    assert registry_entries(svc) == []  # an import is not a change
    third, _ = producer("third")
    add(svc, third)
    assert [x.key_id for x in svc.registry] == [p.key_id, q.key_id, third.key_id]  # registration order
    version = svc.registry.version
    svc.close()

    other, _ = producer("later")
    TrustRegistry([p, other]).save(tmp_path / "trust.json")  # not read again
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="labelcheck"):
        svc = Services(cfg)
        assert other.key_id not in svc.registry and svc.registry.version == version
    assert "imported " not in caplog.text
    # ... and says which of its producers are not in force (p is: it was imported).
    assert "lists producers the registry in" in caplog.text and f"(1: {other.key_id})" in caplog.text
    assert p.key_id not in caplog.text
    svc.close()


def test_a_damaged_trust_json_stops_the_import(tmp_path, database):
    (tmp_path / "trust.json").write_text('{"producers": [{"name": "x"}]}')
    svc = Services(Config(data_dir=tmp_path, database=database, ledger_scrub_duty=0))
    with pytest.raises(ValueError, match="vkey"):
        svc.registry
    svc.close()


def test_a_change_stranded_in_the_ledger_queue_is_appended_once_then_settled(nodes, caplog):
    # The change's node queued its record (as a node that does not lead
    # does) and stopped before the sequencer took it: no sequencer could
    # commit meanwhile (a writer holds the write lock). Once one can, the
    # stranded record is appended, once, and the next settling applies it.
    a, b = nodes
    p, _ = producer("stranded")
    url = a.config.database
    assert a.ledger.size() == b.ledger.size() == 0  # both nodes' ledgers open (each has a sequencer)

    class QueuesThenDies:
        def __init__(self, ledger):
            self.ledger = ledger

        def size(self):
            return self.ledger.size()

        def append(self, records):
            self.ledger._queue.enqueue([dict(r) for r in records])
            raise KeyboardInterrupt

    blocker = psycopg.connect(url)
    try:
        blocker.execute("SELECT pg_advisory_xact_lock(%s)", (pgstore.WRITE_LOCK,))
        with pytest.raises(Exception) as stopped:  # _change: without change()'s own settling
            store = a.registry_store
            store._change(lambda reg: registry_add(reg, p, now_text()), lambda: QueuesThenDies(a.ledger))
        assert isinstance(stopped.value.__cause__, KeyboardInterrupt)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM ledger_queue WHERE size IS NULL").fetchone()[0] == 1
            assert conn.execute("SELECT count(*) FROM registry_intents").fetchone()[0] == 1
        assert registry_entries(a) == []
    finally:
        blocker.rollback()
        blocker.close()

    def sequenced() -> bool:
        with psycopg.connect(url) as conn:
            return conn.execute("SELECT count(*) FROM ledger_queue WHERE size IS NOT NULL").fetchone()[0] == 1

    within(5.0, sequenced)  # the leader appends the stranded row; nobody collects it
    assert len(registry_entries(a)) == 1
    with caplog.at_level(logging.WARNING, logger="labelcheck"):
        within(1.0, lambda: b.registry.lookup(p.key_id) is not None)  # the other node settles it
    assert "was on the ledger but not yet in the registry: applied" in caplog.text
    time.sleep(0.3)  # nothing appends it again
    (entry,) = registry_entries(a)
    assert entry["registry_version"] == b.registry.version == a.registry.version
    assert a.ledger.verify().ok
    with pytest.raises(RegistryConflict):
        add(a, p)
