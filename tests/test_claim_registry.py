"""The public claim registry (docs/protocol.md §12): publishing claims over
``POST /v1/claims``, the ``claim`` ledger entries and their index, and the
lookup of media no claim on the page matches: exact (``registry_exact``) and
perceptual (``registry_similar``)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import io
import json
import sqlite3
import threading
import time

import psycopg
import pytest
from click.testing import CliRunner
from PIL import Image
from werkzeug.serving import make_server

from labelcheck import claims
from labelcheck.claims import pdq
from labelcheck.cli import main
from labelcheck.ledger import keyfile as keys
from labelcheck.ledger import pgstore
from labelcheck.pipeline import claim_registry
from labelcheck.web.app import create_app
from test_pdq import encoded, photo

needs_pdq = pytest.mark.skipif(not pdq.available(), reason="pdqhash and numpy are not installed")

ORIGINAL = encoded(photo(7))
ORIGINAL_SHA = hashlib.sha256(ORIGINAL).hexdigest()
# What a platform serves: half the size, JPEG quality 70, no metadata.
REENCODED = encoded(photo(7).resize((160, 120), Image.Resampling.LANCZOS), "JPEG", quality=70)
UNRELATED = encoded(photo(99))
SERVED = {"/original.png": ORIGINAL, "/reencoded.jpg": REENCODED, "/unrelated.png": UNRELATED}


# --- helpers ---------------------------------------------------------------


def make_app(tmp_path, **overrides):
    cfg = {"data_dir": tmp_path / "data", "verify_rate": 0, "fetch_allow": ("127.0.0.1",)}
    cfg.update(overrides)
    return create_app(cfg)


@pytest.fixture
def app(tmp_path):
    application = make_app(tmp_path)
    yield application
    application.extensions["labelcheck"].services.close()


@pytest.fixture
def client(app):
    return app.test_client()


def admin(app) -> dict:
    return {"Authorization": "Bearer " + app.extensions["labelcheck"].admin_token}


def register(app, name="acme-ai", display="Acme AI"):
    signer = keys.generate_key(name)
    r = app.test_client().post("/v1/producers", json={"name": display, "vkey": signer.vkey}, headers=admin(app))
    assert r.status_code == 201, r.json
    return signer


@pytest.fixture
def acme(app):
    return register(app)


def claim_for(signer, data=ORIGINAL, label="1", **kw) -> dict:
    got = pdq.image_pdq(data) if pdq.available() else None
    body = claims.build_payload(hashlib.sha256(data).hexdigest(), "image/png", label, issuer=signer,
                                pdq=got, **kw)
    return claims.sign_envelope(body, signer)


def ledger_entries(client) -> list[dict]:
    size = int(client.get("/v1/checkpoint").data.decode().splitlines()[1])
    return [json.loads(line) for line in client.get(f"/v1/entries?start=0&end={size}").data.splitlines()]


def verify(client, *items) -> list[dict]:
    r = client.post("/v1/verify", json={"items": list(items)})
    assert r.status_code == 200, r.data
    return r.json["results"]


def assert_problem(r, status, fragment=""):
    assert r.status_code == status, r.data
    assert r.mimetype == "application/problem+json"
    assert fragment.lower() in r.json["detail"].lower(), r.json["detail"]
    return r.json


@pytest.fixture(scope="module")
def media_server():
    """A static file server on 127.0.0.1 serving SERVED."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = SERVED.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "image/jpeg" if self.path.endswith(".jpg") else "image/png")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


# --- publishing ------------------------------------------------------------


def test_published_claim_is_a_claim_entry_and_publishing_again_changes_nothing(client, acme):
    env = claim_for(acme)
    first = client.post("/v1/claims", json=env)
    assert first.status_code == 201, first.json
    [answer] = first.json["claims"]
    parsed = claims.parse_envelope(env)
    assert answer["claim_id"] == parsed.id and answer["claim_digest"] == parsed.digest
    entry = ledger_entries(client)[answer["receipt"]["index"]]
    assert entry["kind"] == "claim" and entry["key_id"] == acme.key_id
    assert entry["content_sha256"] == ORIGINAL_SHA and entry["media_type"] == "image/png"
    assert entry["category"] == "confirmed" and entry["producer"]["name"] == "Acme AI"
    assert entry["envelope"] == env  # anyone holding the ledger can re-check the signature
    if pdq.available():
        assert entry["pdq"] == env_pdq(env) and isinstance(entry["pdq_quality"], int)
    size = len(ledger_entries(client))

    again = client.post("/v1/claims", json=env)
    assert again.status_code == 200 and again.json == first.json
    assert len(ledger_entries(client)) == size  # no new entry

    other = claim_for(acme, id=parsed.id, label="2")  # the same id, another envelope
    body = assert_problem(client.post("/v1/claims", json=other), 409, "registered for another envelope")
    assert body["claims"][0]["reasons"] == ["claim_id_taken"]
    assert len(ledger_entries(client)) == size


def env_pdq(env) -> str:
    return claims.parse_envelope(env).body["content"]["pdq"]


def test_batch_is_published_in_one_request_and_repeats_within_it_count_once(client, acme):
    envs = [claim_for(acme, data=bytes([i]) * 100) for i in range(5)]
    r = client.post("/v1/claims", json={"claims": envs + [envs[0]]})
    assert r.status_code == 201
    answers = r.json["claims"]
    assert [a["claim_id"] for a in answers] == [claims.parse_envelope(e).id for e in envs + [envs[0]]]
    assert answers[0] == answers[5]
    kinds = [e["kind"] for e in ledger_entries(client)]
    assert kinds.count("claim") == 5


def test_batch_limits_and_shapes(client, acme):
    env = claim_for(acme)
    assert_problem(client.post("/v1/claims", json={"claims": [env] * 101}), 413, "at most 100")
    assert_problem(client.post("/v1/claims", json={"claims": []}), 422, "claim envelope")
    assert_problem(client.post("/v1/claims", json=[env]), 422, "claim envelope")
    assert_problem(client.post("/v1/claims", json={"claims": [env], "more": 1}), 422, "claim envelope")
    assert_problem(client.post("/v1/claims", data="{", content_type="application/json"), 400, "not valid JSON")


def test_forged_claim_is_refused_and_nothing_is_written(client, acme):
    stranger = keys.generate_key("acme-ai")  # the same name, another key: not registered
    before = len(ledger_entries(client))
    body = assert_problem(client.post("/v1/claims", json=claim_for(stranger)), 403,
                          "not signed by a registered, unrevoked producer")
    assert "unknown_key" in body["claims"][0]["reasons"]
    tampered = claim_for(acme)
    tampered["signatures"][0]["sig"] = claim_for(acme)["signatures"][0]["sig"]  # a signature over another payload
    body = assert_problem(client.post("/v1/claims", json={"claims": [claim_for(acme), tampered]}), 403)
    assert body["claims"] == [{"index": 1, "claim_id": claims.parse_envelope(tampered).id,
                               "reasons": ["signature_invalid"], "detail": body["claims"][0]["detail"]}]
    assert len(ledger_entries(client)) == before  # the valid claim of the batch was not written either


@pytest.mark.parametrize("value", ["ZZ" * 32, "0f" * 31, 42, "0F" * 32])
def test_malformed_pdq_is_refused_with_a_clear_problem(client, acme, value):
    body = claims.build_payload(ORIGINAL_SHA, "image/png", "1", issuer=acme)
    body["content"]["pdq"] = value
    problem = assert_problem(client.post("/v1/claims", json=claims.sign_envelope(body, acme)), 422, "content.pdq")
    assert "64 lowercase hex digits" in problem["detail"] and "malformed" in problem["claims"][0]["reasons"]


def test_malformed_envelope_is_refused(client, acme):
    problem = assert_problem(client.post("/v1/claims", json={"payloadType": "x", "payload": "!!", "signatures": []}),
                             422)
    assert "malformed" in problem["claims"][0]["reasons"]


def test_revoked_producer_cannot_publish_and_its_claims_stop_matching(app, client, acme):
    env = claim_for(acme)
    assert client.post("/v1/claims", json=env).status_code == 201
    [hit] = verify(client, {"content_sha256": ORIGINAL_SHA})
    assert hit["status"] == "verified" and "registry_exact" in hit["reasons"]
    assert hit["producer"]["name"] == "Acme AI" and hit["registry"]["match"] == "exact"

    r = client.post(f"/v1/producers/{acme.key_id}/revoke", json={}, headers=admin(app))
    assert r.status_code == 200
    [miss] = verify(client, {"content_sha256": ORIGINAL_SHA})
    assert miss["status"] == "none" and "registry_exact" not in miss["reasons"]
    body = assert_problem(client.post("/v1/claims", json=claim_for(acme, data=b"new")), 403, "revoked")
    assert set(body["claims"][0]["reasons"]) & {"revoked_key", "key_revoked_later"}


def test_claims_are_rate_limited_per_client(tmp_path):
    application = make_app(tmp_path, verify_rate=0.01, verify_burst=1)
    c = application.test_client()
    signer = register(application)
    assert c.post("/v1/claims", json=claim_for(signer)).status_code == 201
    r = c.post("/v1/claims", json=claim_for(signer))
    assert_problem(r, 429, "too many requests")
    assert int(r.headers["Retry-After"]) >= 1
    other = c.post("/v1/claims", json=claim_for(signer), environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert other.status_code == 201  # another client has its own bucket


def test_claim_entries_export_with_the_kind_filter(app, client, acme):
    client.post("/v1/claims", json=claim_for(acme))
    verify(client, {"content_sha256": ORIGINAL_SHA})
    token = {"Authorization": "Bearer " + app.extensions["labelcheck"].regulator_token}
    r = client.get("/v1/export?kind=claim", headers=token)
    assert r.status_code == 200, r.data
    lines = [json.loads(line) for line in r.data.splitlines()]
    entries = [json.loads(line["entry"]) for line in lines if "entry" in line]  # leaf bytes as a string
    assert entries and {e["kind"] for e in entries} == {"claim"}
    assert entries[0]["key_id"] == acme.key_id


# --- lookup ----------------------------------------------------------------


@needs_pdq
def test_end_to_end_sign_with_pdq_publish_over_http_reencode_and_verify_by_url(tmp_path, media_server):
    """``labelcheck sign --publish`` against a server on 127.0.0.1, then the
    platform's re-encoded copy, verified by URL (the server fetches it) and as
    the extension sends unlabelled media under its opt-in (no claim)."""
    application = make_app(tmp_path)
    signer = register(application)
    key_file, _ = keys.write_key_pair(signer, tmp_path / "keys")
    media = tmp_path / "picture.png"
    media.write_bytes(ORIGINAL)
    httpd = make_server("127.0.0.1", 0, application, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_port}"
    try:
        run = CliRunner().invoke(main, ["sign", str(media), "--key", str(key_file), "--label", "1",
                                        "--publish", base])
        assert run.exit_code == 0, run.output
        env = json.loads(run.stdout)
        content = claims.parse_envelope(env).body["content"]
        assert pdq.is_pdq(content["pdq"]) and content["pdq_quality"] >= 50
        assert "published" in run.stderr

        c = application.test_client()
        exact, similar, unrelated, opt_in = verify(
            c, {"media_url": media_server + "/original.png"},
            {"media_url": media_server + "/reencoded.jpg", "page_url": media_server + "/post/1"},
            {"media_url": media_server + "/unrelated.png"},
            {"media_url": media_server + "/reencoded.jpg"})
    finally:
        httpd.shutdown()
    assert exact["status"] == "verified" and "registry_exact" in exact["reasons"]
    assert exact["claim_id"] == claims.parse_envelope(env).id
    assert similar["status"] == "declared" and similar["category"] == "confirmed"
    assert "registry_similar" in similar["reasons"] and "registry_exact" not in similar["reasons"]
    assert 0 < similar["distance"] <= 31 and similar["registry"]["distance"] == similar["distance"]
    assert similar["producer"]["name"] == "Acme AI"
    assert unrelated["status"] == "none" and "registry_similar" not in unrelated["reasons"]
    assert opt_in["status"] == "declared" and "registry_similar" in opt_in["reasons"]


@needs_pdq
def test_claim_for_other_bytes_that_looks_the_same_is_reported_similar_not_only_tampered(client, acme,
                                                                                          media_server):
    env = claim_for(acme)
    assert client.post("/v1/claims", json=env).status_code == 201
    [res] = verify(client, {"claim": env, "media_url": media_server + "/reencoded.jpg"})
    assert "content_mismatch" in res["reasons"] and "registry_similar" in res["reasons"]
    assert res["status"] == "declared" and res["category"] == "confirmed" and res["distance"] <= 31
    [other] = verify(client, {"claim": env, "media_url": media_server + "/unrelated.png"})
    assert other["status"] == "invalid" and "registry_similar" not in other["reasons"]


@needs_pdq
def test_unpublished_claim_for_other_bytes_stays_a_mismatch(client, acme, media_server):
    [res] = verify(client, {"claim": claim_for(acme), "media_url": media_server + "/reencoded.jpg"})
    assert res["status"] == "invalid" and "registry_similar" not in res["reasons"]


def test_ledger_keeps_no_hash_of_unlabelled_media_that_matched_nothing(client, acme, media_server):
    client.post("/v1/claims", json=claim_for(acme))
    plain_sha = hashlib.sha256(UNRELATED).hexdigest()
    fetched, reported, matched = verify(client, {"media_url": media_server + "/unrelated.png"},
                                        {"content_sha256": "c" * 64},
                                        {"content_sha256": ORIGINAL_SHA})
    assert fetched["content_sha256"]["observed"] == plain_sha  # the viewer's own answer still says it
    entries = {e["index"]: e for e in ledger_entries(client)}
    for res in (fetched, reported):
        entry = entries[res["receipt"]["index"]]
        assert entry["content_sha256"] == {"claimed": None, "observed": None}
    text = json.dumps(list(entries.values()))
    assert plain_sha not in text and "c" * 64 not in text
    assert "pdq" not in json.dumps([e for e in entries.values() if e["kind"] == "verification"])
    entry = entries[matched["receipt"]["index"]]
    assert entry["content_sha256"]["observed"] == ORIGINAL_SHA and entry["registry"]["match"] == "exact"
    assert entry["key_id"] == acme.key_id


def test_index_is_rebuilt_from_the_ledger_after_its_table_is_dropped(tmp_path):
    application = make_app(tmp_path)
    signer = register(application)
    c = application.test_client()
    assert c.post("/v1/claims", json=claim_for(signer)).status_code == 201
    application.extensions["labelcheck"].services.close()
    with sqlite3.connect(tmp_path / "data" / "ledger.db") as db:
        db.execute("DROP TABLE claim_index")
    again = make_app(tmp_path)
    try:
        [res] = verify(again.test_client(), {"content_sha256": ORIGINAL_SHA})
        assert res["status"] == "verified" and "registry_exact" in res["reasons"]
        with sqlite3.connect(tmp_path / "data" / "ledger.db") as db:
            assert db.execute("SELECT count(*) FROM claim_index").fetchone()[0] == 1
    finally:
        again.extensions["labelcheck"].services.close()


def test_openapi_documents_the_registry(client):
    doc = client.get("/openapi.json").json
    op = doc["paths"]["/v1/claims"]["post"]
    assert {"200", "201", "403", "409", "413", "422", "429"} <= set(op["responses"])
    schemas = doc["components"]["schemas"]
    assert schemas["ClaimsRequest"]["oneOf"][1]["properties"]["claims"]["maxItems"] == 100
    assert "registry" in schemas["Result"]["properties"] and "distance" in schemas["Result"]["properties"]
    kind = next(p for p in doc["paths"]["/v1/export"]["get"]["parameters"] if p["name"] == "kind")
    assert "claim" in kind["schema"]["enum"]


def test_audit_report_counts_published_claims(tmp_path, app, client, acme):
    for i in range(3):
        assert client.post("/v1/claims", json=claim_for(acme, data=b"%d" % i)).status_code == 201
    token = {"Authorization": "Bearer " + app.extensions["labelcheck"].regulator_token}
    bundle = tmp_path / "bundle.ndjson"
    bundle.write_bytes(client.get("/v1/export", headers=token).data)
    vkey = client.get("/v1/keys").json["ledger_vkey"]
    out = tmp_path / "report.html"
    run = CliRunner().invoke(main, ["audit", "report", str(bundle), "--vkey", vkey, "--out", str(out)])
    assert run.exit_code == 0, run.output
    html = out.read_text("utf-8")
    assert 'data-metric="claims" data-count="3"' in html and "Claims published" in html
    assert "entries of other kinds" not in html


def test_sign_publish_refused_or_unreachable_exits_1_saying_why(tmp_path):
    application = make_app(tmp_path)
    stranger = keys.generate_key("not-registered")
    key_file, _ = keys.write_key_pair(stranger, tmp_path / "keys")
    media = tmp_path / "data.bin"
    media.write_bytes(b"not an image")
    httpd = make_server("127.0.0.1", 0, application, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{httpd.server_port}"
        run = CliRunner().invoke(main, ["sign", str(media), "--key", str(key_file), "--label", "1",
                                        "--publish", base])
    finally:
        httpd.shutdown()
        application.extensions["labelcheck"].services.close()
    assert run.exit_code == 1
    assert "refused the claim (403)" in run.output and "not in the trust registry" in run.output
    bad = CliRunner().invoke(main, ["sign", str(media), "--key", str(key_file), "--label", "1",
                                    "--publish", "ftp://example.org"])
    assert bad.exit_code == 2 and "base URL" in bad.output


def test_sign_adds_pdq_to_images_only_and_no_pdq_leaves_it_out(tmp_path):
    signer = keys.generate_key("acme-ai")
    key_file, _ = keys.write_key_pair(signer, tmp_path / "keys")
    image, other = tmp_path / "picture.png", tmp_path / "notes.txt"
    image.write_bytes(ORIGINAL)
    other.write_text("words")

    def content(*args):
        run = CliRunner().invoke(main, ["sign", *map(str, args), "--key", str(key_file), "--label", "1"])
        assert run.exit_code == 0, run.output
        return claims.parse_envelope(json.loads(run.stdout)).body["content"]

    assert "pdq" not in content(other) and "pdq" not in content(image, "--no-pdq")
    if pdq.available():
        assert content(image)["pdq"] == pdq.image_pdq(ORIGINAL)[0]


@needs_pdq
def test_pdq_is_computed_only_when_a_lookup_can_use_it(app, client, acme):
    """PDQ costs more CPU than the fetch: with no fingerprint registered, or
    for bytes registered exactly, the fetch analysis leaves it out."""
    svc = app.extensions["labelcheck"].services
    lookup = svc.registry_lookup
    assert not lookup.needs_pdq(ORIGINAL_SHA)  # nothing registered yet
    assert svc.analyzer(io.BytesIO(ORIGINAL), ORIGINAL_SHA).pdq is None
    r = client.post("/v1/claims", json=claim_for(acme))
    assert r.status_code in (200, 201), r.text
    assert not lookup.needs_pdq(ORIGINAL_SHA)  # registered exactly: the exact match wins
    other = hashlib.sha256(REENCODED).hexdigest()
    assert lookup.needs_pdq(other)
    assert svc.analyzer(io.BytesIO(REENCODED), other).pdq is not None


@needs_pdq
def test_one_request_decides_on_pdq_as_needs_pdq_does(app, client, acme):
    """The fetches of one request share one look at the index: the same
    answers as needs_pdq, before and after a fingerprint is registered."""
    svc = app.extensions["labelcheck"].services
    lookup = svc.registry_lookup
    other = hashlib.sha256(REENCODED).hexdigest()
    before = svc.analyzer.wanting(lookup.pdq_wanted())
    assert before == svc.analyzer  # the fetcher's cached analyses still count
    assert before(io.BytesIO(REENCODED), other).pdq is None  # nothing registered yet
    r = client.post("/v1/claims", json=claim_for(acme))
    assert r.status_code in (200, 201), r.text
    wanted = lookup.pdq_wanted()  # the next request sees the registration
    assert not wanted(ORIGINAL_SHA) and wanted(other) and wanted(None)
    assert svc.analyzer.wanting(wanted)(io.BytesIO(REENCODED), other).pdq is not None


# --- several nodes -----------------------------------------------------------


@contextlib.contextmanager
def two_nodes(tmp_path, url):
    """Two nodes (apps with data directories of their own, one ledger key) on
    the PostgreSQL database ``url``."""
    one = make_app(tmp_path / "one", data_dir=tmp_path / "one", database=url)
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "ledger.key").write_bytes((tmp_path / "one" / "ledger.key").read_bytes())
    (tmp_path / "two" / "ledger.key").chmod(0o600)
    two = make_app(tmp_path / "two", data_dir=tmp_path / "two", database=url)
    try:
        yield one, two
    finally:
        one.extensions["labelcheck"].services.close()
        two.extensions["labelcheck"].services.close()


def sees(app, signer, seconds: float = 2.0) -> None:
    """Wait until the registry reaches ``app``'s node with ``signer``'s key."""
    deadline = time.monotonic() + seconds
    while app.extensions["labelcheck"].services.registry.lookup(signer.key_id) is None:
        assert time.monotonic() < deadline, "the node never saw the producer"
        time.sleep(0.05)


def test_a_claim_published_through_one_node_is_found_through_the_others_within_a_second(tmp_path, postgres,
                                                                                         media_server):
    """Two nodes on one PostgreSQL database: each keeps its own index of the
    claims (claim_index.db), and follows the shared log for what the other
    published, by exact hash and (with PDQ) by a re-encoded copy."""
    url = postgres.create_database("claims_two_nodes")
    with two_nodes(tmp_path, url) as (one, two):
        acme = register(one)
        by_two = two.test_client()
        [before] = verify(by_two, {"content_sha256": ORIGINAL_SHA})  # node two's index is made now
        assert before["status"] == "none"
        r = one.test_client().post("/v1/claims", json={"claims": [claim_for(acme)]})
        assert r.status_code == 201, r.data
        wanted = [{"content_sha256": ORIGINAL_SHA}]
        if pdq.available():
            wanted.append({"media_url": media_server + "/reencoded.jpg"})
        deadline = time.monotonic() + 1.5
        got = verify(by_two, *wanted)
        while not all("registry" in res for res in got) and time.monotonic() < deadline:
            time.sleep(0.1)
            got = verify(by_two, *wanted)
        assert got[0]["status"] == "verified" and "registry_exact" in got[0]["reasons"], got[0]
        if pdq.available():
            assert got[1]["status"] == "declared" and "registry_similar" in got[1]["reasons"], got[1]


def test_claims_another_node_published_between_a_nodes_look_and_its_append_are_not_skipped(tmp_path, postgres):
    """Node one reads its index up to the log's end, then appends its claim;
    a claim of node two lands between the two (nodes take turns on a lock,
    but a session ended under a stalled holder gives the turn away). Node
    one's index must still hold node two's claim: after its append it reads
    the log in order rather than moving its mark past it."""
    url = postgres.create_database("claims_interleaved")
    with two_nodes(tmp_path, url) as (one, two):
        acme = register(one)
        svc_one, svc_two = one.extensions["labelcheck"].services, two.extensions["labelcheck"].services
        sees(two, acme)
        ledger_one = svc_one.ledger
        append = ledger_one.append
        other = claim_registry.check_claim(0, claim_for(acme, data=UNRELATED), svc_two.registry)

        def two_appends_first(records):
            svc_two.ledger.append([other.record])  # node two's claim entry, as its publication appends it
            return append(records)

        ledger_one.append = two_appends_first
        r = one.test_client().post("/v1/claims", json={"claims": [claim_for(acme)]})
        assert r.status_code == 201, r.data
        ledger_one.append = append
        index = svc_one.registry_lookup.index
        assert [c.claim_id for c in index.by_sha256(hashlib.sha256(UNRELATED).hexdigest())] == [other.claim_id]
        assert index.by_sha256(ORIGINAL_SHA)


def test_nodes_publishing_one_claim_id_at_once_take_turns(tmp_path, postgres):
    """Node two is given another envelope under the claim id node one is
    appending: it waits for node one's publication (a lock in the shared
    database), then finds the id taken: 409, and the log holds one claim."""
    url = postgres.create_database("claims_turns")
    with two_nodes(tmp_path, url) as (one, two):
        acme = register(one)
        sees(two, acme)
        mine = claim_for(acme)
        claim_id = json.loads(base64.b64decode(mine["payload"]))["id"]
        theirs = claim_for(acme, data=UNRELATED, id=claim_id)  # the same id, other bytes
        ledger_one = one.extensions["labelcheck"].services.ledger
        append, answers = ledger_one.append, []
        other = threading.Thread(target=lambda: answers.append(
            two.test_client().post("/v1/claims", json={"claims": [theirs]})))

        def two_publishes_meanwhile(records):
            other.start()
            time.sleep(0.5)  # node two is at the lock by now
            assert not answers, "node two did not wait for node one"
            return append(records)

        ledger_one.append = two_publishes_meanwhile
        r = one.test_client().post("/v1/claims", json={"claims": [mine]})
        ledger_one.append = append
        other.join(30)
        assert r.status_code == 201, r.data
        assert answers and answers[0].status_code == 409, answers and answers[0].data
        entries = [json.loads(e) for e in ledger_one.entries(0, ledger_one.size())]
        assert [e["claim_id"] for e in entries if e["kind"] == "claim"] == [claim_id]


def test_a_node_that_holds_the_publication_lock_too_long_gets_a_503_not_a_hang(tmp_path, postgres, monkeypatch):
    url = postgres.create_database("claims_held")
    monkeypatch.setattr(claim_registry, "PUBLISH_WAIT", 1.0)
    app = make_app(tmp_path, data_dir=tmp_path, database=url)
    try:
        acme = register(app)
        with psycopg.connect(url) as stuck, stuck.transaction():  # another node, stopped inside its publication
            stuck.execute("SELECT pg_advisory_xact_lock(%s)", (pgstore.PUBLISH_LOCK,))
            started = time.monotonic()
            r = app.test_client().post("/v1/claims", json={"claims": [claim_for(acme)]})
            assert time.monotonic() - started < 10
        assert_problem(r, 503, "retry shortly")
        r = app.test_client().post("/v1/claims", json={"claims": [claim_for(acme)]})  # once it is gone
        assert r.status_code == 201, r.data
    finally:
        app.extensions["labelcheck"].services.close()
