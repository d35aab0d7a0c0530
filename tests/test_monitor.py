"""The checkpoint monitor (``labelcheck ledger watch``) against real servers:
an honest log is followed; a rolled-back, forked or lying one is caught with
both signed notes kept as evidence; nothing unproven reaches the state file."""

from __future__ import annotations

import base64
import json
import re
import shutil
import threading

import pytest
from click.testing import CliRunner
from flask import Flask, request
from werkzeug.serving import make_server

from labelcheck.ledger import checkpoint as ckpt
from labelcheck.ledger import note
from labelcheck.audit import monitor
from labelcheck.web.app import create_app
from labelcheck.cli import main
from labelcheck.audit.monitor import FetchError, State, check_once, run_round
from labelcheck.audit.trust import LogTrust
from labelcheck.ledger.cosignature import CosignatureSigner, add_signatures


def make_app(data_dir):
    return create_app({"data_dir": data_dir, "verify_rate": 0})


def client_fetch(app):
    """``fetch`` over Flask's test client: the real /v1 endpoints, no sockets."""
    client = app.test_client()

    def fetch(path, params):
        r = client.get(path, query_string=params or {})
        if r.status_code != 200:
            raise FetchError(f"HTTP {r.status_code} from {path}", r.status_code)
        return r.data

    return fetch


def grow(app, n, tag="x"):
    ledger = app.extensions["labelcheck"].services.ledger
    ledger.append([{"kind": "test", "tag": tag, "n": i} for i in range(n)])


def close(app):
    app.extensions["labelcheck"].services.close()


@pytest.fixture
def server(tmp_path):
    app = make_app(tmp_path / "data")
    yield app
    close(app)


def vkey_of(app):
    return app.extensions["labelcheck"].services.ledger.verifier_key


def verifier_of(app):
    return note.Verifier.from_vkey(vkey_of(app))


def round_(app, tmp_path, fetch=None):
    return run_round(fetch or client_fetch(app), verifier_of(app), tmp_path / "state.json", tmp_path / "evidence")


def assert_evidence(out, verifier, old_size, new_size):
    notes = sorted(p for p in out.evidence if p.suffix == ".note")
    assert len(notes) == 2
    by_role = {("trusted" if "-trusted-" in p.name else "served"): p for p in notes}
    old = ckpt.open_checkpoint(by_role["trusted"].read_bytes(), verifier)
    new = ckpt.open_checkpoint(by_role["served"].read_bytes(), verifier)
    assert (old.size, new.size) == (old_size, new_size)
    summary = json.loads(next(p for p in out.evidence if p.suffix == ".json" and "-proof-" not in p.name).read_text())
    assert summary["kind"] == out.kind and summary["trusted"]["size"] == old_size
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", summary["detected_at"])
    assert summary["trusted"]["root"] == base64.b64encode(old.root).decode()
    stamps = {p.name.split("-")[0] for p in out.evidence}  # one UTC stamp, to the microsecond, names them all
    assert len(stamps) == 1 and re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z", stamps.pop())
    return old, new


# --- an honest log ---------------------------------------------------------------------


def test_honest_log_grows_and_the_monitor_follows(server, tmp_path):
    state = tmp_path / "state.json"
    out = round_(server, tmp_path)  # the empty log: size 0
    assert out.kind == "first" and out.exit_code == 0 and out.new.size == 0
    for total in (1, 2, 7, 64, 100):
        grow(server, total - out.new.size)
        out = round_(server, tmp_path)
        assert out.kind == "grew", out.message
        assert out.new.size == total
        assert State.load(state, verifier_of(server)).checkpoint == out.new
    before = state.read_bytes()
    out = round_(server, tmp_path)
    assert out.kind == "same" and out.exit_code == 0 and state.read_bytes() == before
    assert not (tmp_path / "evidence").exists()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", json.loads(before)["updated"])


def test_the_state_file_is_replaced_whole_and_keeps_its_mode(server, tmp_path):
    state = tmp_path / "state.json"
    round_(server, tmp_path)
    state.chmod(0o600)  # the user's choice survives each replacement
    grow(server, 5)
    assert round_(server, tmp_path).kind == "grew"
    assert state.stat().st_mode & 0o777 == 0o600 and json.loads(state.read_text())["size"] == 5
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary file left


# --- a dishonest log -------------------------------------------------------------------------


def test_rolled_back_database_is_caught(tmp_path):
    data, backup = tmp_path / "data", tmp_path / "backup"
    app = make_app(data)
    grow(app, 5)
    assert round_(app, tmp_path).kind == "first"
    close(app)
    shutil.copytree(data, backup)  # the operator keeps a copy ...
    app = make_app(data)
    grow(app, 5, "later")
    assert round_(app, tmp_path).kind == "grew"
    close(app)
    shutil.rmtree(data)
    shutil.copytree(backup, data)  # ... and restores it
    app = make_app(data)
    state_before = (tmp_path / "state.json").read_bytes()
    out = round_(app, tmp_path)
    close(app)
    assert out.kind == "shrunk" and out.exit_code == 1 and "SHRANK from 10 to 5" in out.message
    assert_evidence(out, verifier_of(app), 10, 5)
    assert (tmp_path / "state.json").read_bytes() == state_before


def twin_servers(tmp_path):
    """Two ledgers with the same key and origin: a log that shows each viewer a different history."""
    a = make_app(tmp_path / "a")
    vkey = vkey_of(a)
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "ledger.key", tmp_path / "b" / "ledger.key")
    b = make_app(tmp_path / "b")
    assert vkey_of(b) == vkey
    return a, b


def test_fork_at_the_same_size_is_caught(tmp_path):
    a, b = twin_servers(tmp_path)
    grow(a, 8, "told to alice")
    grow(b, 8, "told to bob")
    assert round_(a, tmp_path).kind == "first"
    out = round_(b, tmp_path)
    assert out.kind == "forked" and out.exit_code == 1 and "FORKED" in out.message
    old, new = assert_evidence(out, verifier_of(a), 8, 8)
    assert old.root != new.root
    assert State.load(tmp_path / "state.json", verifier_of(a)).checkpoint == old
    close(a), close(b)


def test_fork_at_a_larger_size_fails_the_consistency_proof(tmp_path):
    a, b = twin_servers(tmp_path)
    grow(a, 6, "alice")
    grow(b, 9, "bob")
    assert round_(a, tmp_path).kind == "first"
    out = round_(b, tmp_path)
    assert out.kind == "inconsistent" and out.exit_code == 1 and "NOT consistent" in out.message
    assert_evidence(out, verifier_of(a), 6, 9)
    assert any("-proof-6-9" in p.name for p in out.evidence)
    assert State.load(tmp_path / "state.json", verifier_of(a)).checkpoint.size == 6
    close(a), close(b)


def test_an_older_checkpoint_of_the_same_log_is_no_alarm(server, tmp_path):
    """A cache, another node of the log, or a witnessed checkpoint that lags
    serves an older checkpoint: the server proves the trusted tree extends
    it, and the trusted one is kept (Go's sumdb client does the same)."""
    grow(server, 6)
    honest = client_fetch(server)
    older = honest("/v1/checkpoint", None)  # size 6
    grow(server, 5)
    assert round_(server, tmp_path).kind == "first"  # size 11 trusted
    before = (tmp_path / "state.json").read_bytes()
    asked = []

    def stale(path, params):
        asked.append((path, params))
        return older if path == "/v1/checkpoint" else honest(path, params)

    out = round_(server, tmp_path, stale)
    assert out.kind == "behind" and out.exit_code == 0 and not out.alarm and not out.evidence, out.message
    assert "size 6" in out.message and "size 11" in out.message
    assert asked[-1] == ("/v1/proof/consistency", {"from": 6, "to": 11})
    assert (tmp_path / "state.json").read_bytes() == before
    # A front that does not route the proof (404), or is busy (503), leaves it unchecked: no alarm.
    for status in (404, 503):
        def unrouted(path, params, status=status):
            if path == "/v1/checkpoint":
                return older
            raise FetchError(f"HTTP {status} from {path}", status)

        out = round_(server, tmp_path, unrouted)
        assert out.kind == "unreachable" and out.exit_code == 3 and not out.evidence, out.message


def test_an_older_checkpoint_of_another_history_fails_the_proof(tmp_path):
    a, b = twin_servers(tmp_path)
    grow(a, 9, "alice")
    grow(b, 4, "bob")
    older_b = client_fetch(b)("/v1/checkpoint", None)  # size 4, bob's history
    grow(b, 5, "bob")  # b can prove 4 -> 9 in its own history, not in a's
    assert round_(a, tmp_path).kind == "first"

    def b_stale(path, params):
        return older_b if path == "/v1/checkpoint" else client_fetch(b)(path, params)

    out = round_(b, tmp_path, b_stale)
    assert out.kind == "inconsistent" and out.exit_code == 1 and "NOT consistent" in out.message
    assert_evidence(out, verifier_of(a), 9, 4)
    assert State.load(tmp_path / "state.json", verifier_of(a)).checkpoint.size == 9
    close(a), close(b)


def test_a_bad_consistency_proof_is_caught(server, tmp_path):
    grow(server, 13)
    assert round_(server, tmp_path).kind == "first"
    grow(server, 20)
    honest = client_fetch(server)

    def lying(path, params):
        body = honest(path, params)
        if path == "/v1/proof/consistency":
            doc = json.loads(body)
            raw = bytearray(base64.b64decode(doc["hashes"][-1]))
            raw[0] ^= 1
            doc["hashes"][-1] = base64.b64encode(bytes(raw)).decode()
            body = json.dumps(doc).encode()
        return body

    before = (tmp_path / "state.json").read_bytes()
    out = round_(server, tmp_path, lying)
    assert out.kind == "inconsistent" and out.exit_code == 1
    assert_evidence(out, verifier_of(server), 13, 33)
    assert (tmp_path / "state.json").read_bytes() == before
    assert round_(server, tmp_path).kind == "grew"  # the honest proof does hold


def test_a_malformed_proof_response_is_an_error_not_a_proof(server, tmp_path):
    grow(server, 3)
    round_(server, tmp_path)
    grow(server, 3)
    honest = client_fetch(server)
    for body in (b"<html>proxy error</html>", b'{"from": 3, "to": 6, "hashes": ["!!"]}',
                 b'{"from": 3, "to": 6, "hashes": [5]}', '{"from": 3, "to": 6, "hashes": ["é"]}'.encode(),
                 b'{"from": 1, "to": 6, "hashes": []}'):
        def fetch(path, params, body=body):
            return body if path == "/v1/proof/consistency" else honest(path, params)

        out = round_(server, tmp_path, fetch)
        assert out.kind == "bad_response" and out.exit_code == 3 and not out.evidence
    assert State.load(tmp_path / "state.json", verifier_of(server)).checkpoint.size == 3


def test_a_bad_signature_is_refused_and_the_state_kept(server, tmp_path):
    grow(server, 4)
    assert round_(server, tmp_path).kind == "first"
    state = tmp_path / "state.json"
    before = state.read_bytes()
    origin = server.extensions["labelcheck"].services.ledger.origin
    impostor = note.Signer.generate(origin)  # same name, another key
    forged = ckpt.sign_checkpoint(ckpt.Checkpoint(origin, 10, bytes(32)), impostor)
    real = server.extensions["labelcheck"].services.ledger.checkpoint()
    broken = real.replace(b"\n4\n", b"\n5\n")  # signed text changed
    for served in (forged, broken, b"not a note at all"):
        out = round_(server, tmp_path, lambda path, params, s=served: s)
        assert out.kind == "bad_signature" and out.exit_code == 3, out.message
        assert state.read_bytes() == before
    assert not (tmp_path / "evidence").exists()


def test_state_of_another_key_is_refused(server, tmp_path):
    grow(server, 2)
    round_(server, tmp_path)
    other = note.Signer.generate("someone-else").verifier()
    with pytest.raises(monitor.MonitorError, match="does not verify"):
        run_round(client_fetch(server), other, tmp_path / "state.json", tmp_path / "evidence")
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(monitor.MonitorError, match="not a labelcheck monitor state"):
        State.load(tmp_path / "junk.json", verifier_of(server))


def test_the_loop_retries_errors_and_stops_on_an_alarm(server, tmp_path):
    grow(server, 5)
    honest = client_fetch(server)
    shrunk = honest("/v1/checkpoint", None)  # size 5, served again after the log reached 10
    calls = []

    def flaky(path, params):
        calls.append(path)
        if len(calls) == 1:
            raise FetchError("connection refused")
        if len(calls) == 4:  # the fourth round sees a shrunk log ...
            return shrunk
        if len(calls) == 5:  # ... which cannot prove the trusted tree
            raise FetchError("HTTP 400 from /v1/proof/consistency", 400)
        return honest(path, params)

    grow(server, 5)
    reported, slept = [], []
    code = monitor.watch(flaky, verifier_of(server), tmp_path / "state.json", tmp_path / "evidence",
                         interval=7, report=reported.append, sleep=slept.append)
    assert code == 1
    assert [o.kind for o in reported] == ["unreachable", "first", "same", "shrunk"]
    assert slept == [7, 7, 7]

    def interrupt(_):
        raise KeyboardInterrupt

    code = monitor.watch(honest, verifier_of(server), tmp_path / "s2.json", tmp_path / "evidence", sleep=interrupt)
    assert code == 0


# --- the command, over HTTP on loopback ----------------------------------------------------------


@pytest.fixture
def http_server(server):
    httpd = make_server("127.0.0.1", 0, server, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(5)


def watch_cli(*args):
    return CliRunner().invoke(main, ["ledger", "watch", *map(str, args)], catch_exceptions=False)


def test_watch_command_over_http(http_server, tmp_path):
    app, url = http_server
    vkey_file = tmp_path / "ledger.pub"
    vkey_file.write_text(vkey_of(app) + "\n")
    state = tmp_path / "state.json"
    grow(app, 3)
    r = watch_cli(url, "--vkey", vkey_file, "--state", state, "--once")
    assert r.exit_code == 0 and "ok: trusting the first checkpoint seen: size 3" in r.output
    grow(app, 4)
    r = watch_cli(url + "/", "--vkey", vkey_of(app), "--state", state, "--once")
    assert r.exit_code == 0 and "grew from 3 to 7 entries, consistency proven" in r.output
    assert json.loads(state.read_text())["size"] == 7


def test_watch_command_errors(tmp_path, server):
    vkey = vkey_of(server)
    state = tmp_path / "state.json"
    httpd = make_server("127.0.0.1", 0, server)  # bound, then closed: nothing listens on the port
    port = httpd.server_port
    httpd.server_close()
    r = watch_cli(f"http://127.0.0.1:{port}", "--vkey", vkey, "--state", state, "--once")
    assert r.exit_code == 3 and "cannot connect" in r.output and not state.exists()
    for bad in ("file:///etc/passwd", "ftp://127.0.0.1/", "127.0.0.1:8080", "http://127.0.0.1/?x=1"):
        r = watch_cli(bad, "--vkey", vkey, "--state", state, "--once")
        assert r.exit_code == 2 and "URL" in r.output, bad
    r = watch_cli("http://127.0.0.1:1", "--vkey", "nonsense+", "--state", state, "--once")
    assert r.exit_code == 2 and "bad verifier key" in r.output


def test_http_fetch_reports_problem_details(http_server):
    app, url = http_server
    fetch = monitor.http_fetch(url)
    with pytest.raises(FetchError, match=r"HTTP 400 .*beyond the ledger's size"):
        fetch("/v1/proof/consistency", {"from": 1, "to": 99})
    assert check_once(fetch, verifier_of(app), State()).kind == "first"


def test_watch_command_raises_the_alarm_with_evidence(tmp_path):
    a, b = twin_servers(tmp_path)
    grow(a, 4, "alice")
    grow(b, 4, "bob")
    servers = [make_server("127.0.0.1", 0, app, threaded=True) for app in (a, b)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    try:
        state = tmp_path / "mon" / "state.json"
        state.parent.mkdir()
        url_a, url_b = (f"http://127.0.0.1:{s.server_port}" for s in servers)
        assert watch_cli(url_a, "--vkey", vkey_of(a), "--state", state, "--once").exit_code == 0
        r = watch_cli(url_b, "--vkey", vkey_of(a), "--state", state, "--interval", "0.1")  # loops until the alarm
        assert r.exit_code == 1 and "ALARM: the log FORKED" in r.output
        saved = sorted((tmp_path / "mon" / "evidence").iterdir())
        assert [p.suffix for p in saved] == [".note", ".note", ".json"]
        assert {ckpt.open_checkpoint(p.read_bytes(), verifier_of(a)).size for p in saved if p.suffix == ".note"} == {4}
        assert all(str(p) in r.output for p in saved if p.suffix == ".note")
    finally:
        for s, t in zip(servers, threads):
            s.shutdown()
            t.join(5)
        close(a), close(b)


# --- witnesses: a checkpoint counts only with a quorum of cosignatures ----------------------------


def cosigning(fetch, cosigners):
    """``fetch`` whose checkpoints carry cosignatures by ``cosigners`` (a list the test changes)."""
    def wrapped(path, params):
        body = fetch(path, params)
        if path == "/v1/checkpoint":
            text = body[: body.index(b"\n\n") + 1]
            body = add_signatures(body, "".join(w.cosign(text) for w in cosigners))
        return body

    return wrapped


def test_a_checkpoint_without_the_quorum_is_not_trusted_nor_fatal(server, tmp_path):
    w1, w2 = CosignatureSigner.generate("w1"), CosignatureSigner.generate("w2")
    trust = LogTrust(verifier_of(server), (w1.verifier(), w2.verifier()))
    cosigners = [w1]
    fetch = cosigning(client_fetch(server), cosigners)
    grow(server, 3)
    out = run_round(fetch, trust, tmp_path / "state.json", tmp_path / "evidence")
    assert out.kind == "no_quorum" and out.exit_code == 3 and not out.alarm and not out.trusted
    assert "the checkpoint of size 3 carries 1 of the 2 witness cosignatures required" in out.message
    assert not (tmp_path / "state.json").exists() and not (tmp_path / "evidence").exists()
    cosigners.append(w2)
    assert run_round(fetch, trust, tmp_path / "state.json", tmp_path / "evidence").kind == "first"
    grow(server, 4)
    cosigners.remove(w1)
    reported, slept = [], []

    def twice(seconds):
        slept.append(seconds)
        if len(slept) == 1:
            cosigners.append(w1)  # the witness catches up: the next round trusts it
        else:
            raise KeyboardInterrupt

    code = monitor.watch(fetch, trust, tmp_path / "state.json", tmp_path / "evidence", interval=2,
                         report=reported.append, sleep=twice)
    assert code == 0 and [o.kind for o in reported] == ["no_quorum", "grew"]
    assert State.load(tmp_path / "state.json", trust).checkpoint.size == 7


def test_watch_command_takes_witnesses_and_a_quorum(http_server, tmp_path):
    app, url = http_server
    w1, w2 = CosignatureSigner.generate("w1"), CosignatureSigner.generate("w2")
    (tmp_path / "w2.pub").write_text(w2.vkey + "\n")
    cosigners = [w1]
    front = Flask("front")
    ledger = app.extensions["labelcheck"].services.ledger
    fetch = cosigning(monitor.http_fetch(url), cosigners)

    @front.get("/v1/checkpoint")
    def cp():
        return fetch("/v1/checkpoint", None)

    @front.get("/v1/proof/consistency")
    def proof():
        return fetch("/v1/proof/consistency", {k: int(v) for k, v in request.args.items()})

    httpd = make_server("127.0.0.1", 0, front, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        front_url = f"http://127.0.0.1:{httpd.server_port}"
        state = tmp_path / "state.json"
        args = [front_url, "--vkey", ledger.verifier_key, "--state", state, "--once",
                "--witness", w1.vkey, "--witness", tmp_path / "w2.pub"]
        grow(app, 3)
        r = watch_cli(*args)
        assert r.exit_code == 3 and "error: not trusting the served checkpoint" in r.output
        assert "carries 1 of the 2 witness cosignatures" in r.output and not state.exists()
        r = watch_cli(*args, "--quorum", 1)
        assert r.exit_code == 0 and "trusting the first checkpoint seen: size 3" in r.output
        grow(app, 2)
        cosigners.append(w2)
        r = watch_cli(*args)
        assert r.exit_code == 0 and "grew from 3 to 5" in r.output
        r = watch_cli(*args, "--quorum", 3)
        assert r.exit_code == 2 and "quorum of 3 cannot be met by 2" in r.output
        r = watch_cli(*args[:-4], "--quorum", 1)  # no --witness at all
        assert r.exit_code == 2 and "--quorum needs at least one --witness" in r.output
    finally:
        httpd.shutdown()
        thread.join(5)
