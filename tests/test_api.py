"""The /v1 API through Flask's test client: every endpoint, every error path."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import re
import os
import stat
import threading

import pytest
from click.testing import CliRunner
from PIL import Image

from labelcheck import claims
from labelcheck.cli import main
from labelcheck.labels import embed_label
from labelcheck.ledger import bundle, merkle, note
from labelcheck.ledger import checkpoint as ckpt
from labelcheck.ledger import keyfile as keys
from labelcheck.pipeline.config import ConfigError
from labelcheck.util.times import parse_time
from labelcheck.web.app import create_app

MEDIA = b"\x89PNG\r\n\x1a\n" + b"labelcheck test media " * 40
MEDIA_SHA = hashlib.sha256(MEDIA).hexdigest()
EXT_ORIGIN = "chrome-extension://abcdefghijklmnopabcdefghijklmnop"


# --- helpers ---------------------------------------------------------------


def make_app(tmp_path, **overrides):
    cfg = {"data_dir": tmp_path / "data", "verify_rate": 0}
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


def regulator(app) -> dict:
    return {"Authorization": "Bearer " + app.extensions["labelcheck"].regulator_token}


@pytest.fixture
def producer(app, client):
    """A producer key, generated here and registered through the API."""
    signer = keys.generate_key("example-ai")
    r = client.post("/v1/producers", json={"name": "Example AI", "vkey": signer.vkey, "filing": "F-1"},
                    headers=admin(app))
    assert r.status_code == 201, r.json
    return signer


def claim_for(signer, sha=MEDIA_SHA, **kw) -> dict:
    return claims.sign_envelope(claims.build_payload(sha, "image/png", "1", issuer=signer, **kw), signer)


def verify(client, *items, **kw):
    r = client.post("/v1/verify", json={"items": list(items)}, **kw)
    assert r.status_code == 200, r.data
    return r.json["results"]


def entries(client, start, end) -> list[bytes]:
    r = client.get(f"/v1/entries?start={start}&end={end}")
    assert r.status_code == 200 and r.mimetype == "application/x-ndjson"
    return r.data.splitlines()


def assert_problem(r, status, fragment=""):
    assert r.status_code == status, r.data
    assert r.mimetype == "application/problem+json"
    body = r.json
    assert body["status"] == status and body["type"] and body["title"]
    assert fragment.lower() in body["detail"].lower()
    return body


# --- health, openapi, data dir ------------------------------------------------


def test_healthz_and_openapi(client):
    assert client.get("/healthz").json == {"status": "ok"}
    doc = client.get("/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    for path in ("/v1/verify", "/v1/checkpoint", "/v1/entries", "/v1/proof/inclusion",
                 "/v1/proof/consistency", "/v1/keys", "/v1/producers",
                 "/v1/producers/{key_id}/revoke", "/v1/export", "/healthz", "/openapi.json"):
        assert path in doc["paths"], path


def test_openapi_states_the_default_limits(client):
    doc = client.get("/openapi.json").json
    assert doc["components"]["responses"]["E413"]["description"] == "The body is over 1 MiB or has over 100 items."
    assert doc["components"]["schemas"]["VerifyRequest"]["properties"]["items"]["maxItems"] == 100


def test_openapi_states_the_configured_limits(tmp_path):
    application = make_app(tmp_path, max_body=64 * 1024, max_items=7)
    c = application.test_client()
    doc = c.get("/openapi.json").json
    assert doc["components"]["responses"]["E413"]["description"] == "The body is over 64 KiB or has over 7 items."
    assert doc["components"]["schemas"]["VerifyRequest"]["properties"]["items"]["maxItems"] == 7
    # ... and they are the limits the server enforces.
    assert c.post("/v1/verify", json={"items": [{}] * 7}).status_code == 200
    assert_problem(c.post("/v1/verify", json={"items": [{}] * 8}), 413, "7 items")
    big = json.dumps({"items": [{"page_url": "x" * 8000}] * 9})
    assert 64 * 1024 < len(big) < 1024 * 1024
    assert_problem(c.post("/v1/verify", data=big, content_type="application/json"), 413)
    other = make_app(tmp_path / "other", max_body=1000, max_items=1)  # one process, two apps: no mixing
    doc2 = other.test_client().get("/openapi.json").json
    assert doc2["components"]["responses"]["E413"]["description"] == "The body is over 1000 bytes or has over 1 item."
    assert c.get("/openapi.json").json == doc
    application.extensions["labelcheck"].services.close()
    other.extensions["labelcheck"].services.close()


def test_what_the_openapi_document_allows_the_server_takes(client):
    """Where the server is lenient on purpose, the document says so: a page's
    claim of any shape or size is judged, not refused, and AIGC meta may be
    any JSON; where it is strict, the document's bounds are the server's."""
    doc = client.get("/openapi.json").json
    item = doc["components"]["schemas"]["VerifyItem"]["properties"]
    assert "maxLength" not in item["claim"] and "object" in item["claim"]["type"]
    oversized = client.post("/v1/verify", json={"items": [{"claim": "e" * 70000}]})
    assert oversized.status_code == 200 and oversized.json["results"][0]["status"] == "invalid"
    malformed = client.post("/v1/verify", json={"items": [{"claim": {"payloadType": 1, "signatures": [{"sig": 5}]}}]})
    assert malformed.status_code == 200 and malformed.json["results"][0]["status"] == "invalid"
    assert {"type": "array"} in item["signals"]["properties"]["meta"]["oneOf"]
    assert client.post("/v1/verify", json={"items": [{"signals": {"meta": [None]}}]}).status_code == 200
    minimum = {(path, p["name"]): p["schema"]["minimum"] for path in ("/v1/proof/inclusion", "/v1/proof/consistency")
               for p in doc["paths"][path]["get"]["parameters"]}
    assert minimum[("/v1/proof/inclusion", "size")] == minimum[("/v1/proof/consistency", "from")] == 1
    assert_problem(client.get("/v1/proof/inclusion?index=0&size=0"), 400)
    assert_problem(client.get("/v1/proof/consistency?from=0&to=1"), 400)
    envelope = doc["components"]["schemas"]["ClaimEnvelope"]
    assert envelope["required"] == ["payloadType", "payload", "signatures"]
    assert envelope["properties"]["payloadType"]["const"] == claims.PAYLOAD_TYPE
    assert_problem(client.post("/v1/claims", json={"payloadType": "", "payload": "", "signatures": [{}]}), 422)
    utc = re.compile(doc["components"]["schemas"]["RevokeInput"]["properties"]["revoked_at"]["pattern"])
    for time, ok in (("2025-09-01T00:00:00Z", True), ("2025-09-01T00:00:00-00:00", True),
                     ("2025-09-01T00:00:00+01:00", False)):
        try:
            parsed = parse_time(time, utc_only=True) is not None
        except ValueError:
            parsed = False
        assert bool(utc.search(time)) is ok and parsed is ok  # the document's rule is the server's


def test_data_dir_tokens_are_private_and_stable(tmp_path):
    app1 = make_app(tmp_path)
    data = tmp_path / "data"
    for name in ("admin.token", "regulator.token"):
        mode = stat.S_IMODE(os.stat(data / name).st_mode)
        assert mode == 0o600, (name, oct(mode))
    app2 = make_app(tmp_path)  # a second worker reuses the tokens
    assert admin(app1) == admin(app2)
    assert app1.extensions["labelcheck"].admin_token != app1.extensions["labelcheck"].regulator_token


def test_config_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELCHECK_DATA_DIR", str(tmp_path / "envdata"))
    monkeypatch.setenv("LABELCHECK_ORIGIN", "ledger.example.test/log")
    monkeypatch.setenv("LABELCHECK_FETCH_ALLOW", "127.0.0.1 10.0.0.0/8")
    application = create_app()
    cfg = application.extensions["labelcheck"].services.config
    assert cfg.fetch_allow == ("127.0.0.1", "10.0.0.0/8")
    keys_doc = application.test_client().get("/v1/keys").json
    assert keys_doc["origin"] == "ledger.example.test/log"
    assert keys_doc["ledger_vkey"].startswith("ledger.example.test/log+")
    assert (tmp_path / "envdata" / "ledger.db").exists()
    mode = stat.S_IMODE(os.stat(tmp_path / "envdata" / "ledger.key").st_mode)
    assert mode == 0o600


def test_bad_configuration_fails_at_start(tmp_path):
    with pytest.raises(ConfigError, match="origin"):
        make_app(tmp_path, origin="has space")
    with pytest.raises(ConfigError, match="fetch"):
        make_app(tmp_path, fetch_allow=("not a network/99",))
    with pytest.raises(ConfigError, match="c2pa"):
        make_app(tmp_path, c2pa_anchors=tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="LABELCHECK_PORT"):
        create_app({"port": "eighty"})


# --- errors are problem+json -------------------------------------------------------


def test_errors_are_problem_json(app, client):
    assert_problem(client.get("/v1/nothing-here"), 404)
    r = client.delete("/v1/verify")
    assert_problem(r, 405)
    assert "POST" in r.headers["Allow"]
    assert_problem(client.post("/v1/verify", data="{}", content_type="text/plain"), 415, "json")
    assert_problem(client.post("/v1/verify", data="{not json", content_type="application/json"), 400, "json")
    assert_problem(client.post("/v1/verify", json=[1, 2]), 422, "items")
    assert_problem(client.post("/v1/verify", json={"items": [1]}), 422, "items[0]")
    assert_problem(client.post("/v1/verify", json={"items": [{"content_sha256": "abc"}]}), 422, "content_sha256")
    assert_problem(client.post("/v1/verify", json={"items": [{"media_url": 5}]}), 422, "media_url")
    assert_problem(client.post("/v1/verify", json={"items": [{"claim": 5}]}), 422, "claim")
    assert_problem(client.post("/v1/verify", json={"items": [{"signals": "x"}]}), 422, "signals")
    assert_problem(client.post("/v1/verify", data='{"items":[{"page_url":"\\ud800"}]}',
                               content_type="application/json"), 422, "unicode")


def test_hostile_json_is_a_clear_400(client):
    deep = "[" * 100000 + "]" * 100000
    assert_problem(client.post("/v1/verify", data=deep, content_type="application/json"), 400, "json")
    nested = '{"items":[{"signals":{"meta":' + "[" * 100 + "]" * 100 + "}}]}"
    assert_problem(client.post("/v1/verify", data=nested, content_type="application/json"), 400, "nested")
    for encoding in ("utf-16-le", "utf-32-be"):  # brackets are counted in any of JSON's encodings
        assert_problem(client.post("/v1/verify", data=nested.encode(encoding), content_type="application/json"),
                       400, "nested")
    at_limit = '{"items":' + "[" * 63 + "]" * 63 + "}"  # 64 levels: over no limit, just not items
    assert client.post("/v1/verify", data=at_limit, content_type="application/json").status_code == 422
    over = '{"items":' + "[" * 64 + "]" * 64 + "}"  # 65 levels
    assert_problem(client.post("/v1/verify", data=over, content_type="application/json"), 400, "nested")
    for number in ("NaN", "Infinity", "-Infinity", "1e999"):
        body = '{"items":[{"claim":{"payload":%s}}]}' % number
        assert_problem(client.post("/v1/verify", data=body, content_type="application/json"), 400, number)


def test_odd_payload_fields_never_reach_the_ledger(client, producer):
    payload = claims.build_payload(MEDIA_SHA, "image/png", "1", issuer=producer)
    payload.update(id=1.5, issuer={"x": 1})
    env = claims.sign_envelope(json.dumps(payload).encode(), producer)
    [res] = verify(client, {"claim": env, "content_sha256": MEDIA_SHA})
    assert res["status"] == "invalid" and "malformed" in res["reasons"]
    entry = json.loads(entries(client, res["receipt"]["index"], res["receipt"]["index"] + 1)[0])
    assert entry["claim_id"] is None and entry["key_id"] is None


def test_limits_refused_up_front(client):
    assert_problem(client.post("/v1/verify", json={"items": [{}] * 101}), 413, "100 items")
    big = json.dumps({"items": [{"page_url": "x" * 8000}] * 140})
    assert len(big) > 1024 * 1024
    assert_problem(client.post("/v1/verify", data=big, content_type="application/json"), 413)
    # Refused on Content-Length alone, before any of the body is read.
    r = client.post("/v1/verify", data=b"{}", content_type="application/json",
                    environ_overrides={"CONTENT_LENGTH": str(2 * 1024 * 1024)})
    assert_problem(r, 413)
    # Chunked, without Content-Length: cut off at the limit all the same.
    r = client.post("/v1/verify", input_stream=io.BytesIO(big.encode()), content_type="application/json",
                    environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""})
    assert_problem(r, 413)


def test_bodies_read_ahead_by_the_read_guard_answer_the_same(app, producer):
    """Under gunicorn the body is read by ReadGuard before the app runs and
    handed over as it read it: the answers and the limits are the same."""
    from labelcheck.web.readguard import ReadGuard

    app.wsgi_app = ReadGuard(app.wsgi_app, app.extensions["labelcheck"].services.config.max_body)
    client = app.test_client()
    [res] = verify(client, {"claim": claim_for(producer), "content_sha256": MEDIA_SHA})
    assert res["status"] == "verified" and res["receipt"]["index"] >= 0
    assert_problem(client.post("/v1/verify", data=b'{"items": [', content_type="application/json"), 400)
    assert_problem(client.post("/v1/verify", data=b'{"items": []}', content_type="text/plain"), 415)
    big = json.dumps({"items": [{"page_url": "x" * 8000}] * 140}).encode()
    assert_problem(client.post("/v1/verify", data=big, content_type="application/json"), 413)
    r = client.post("/v1/verify", input_stream=io.BytesIO(big), content_type="application/json",
                    environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""})
    assert_problem(r, 413)  # chunked: the guard reads one byte over the limit, the app refuses it
    r = client.post("/v1/verify", input_stream=io.BytesIO(b'{"items": []}'), content_type="application/json",
                    environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""})
    assert r.status_code == 200 and r.json == {"results": []}


def test_rate_limit_gives_429_with_retry_after(tmp_path):
    application = make_app(tmp_path, verify_rate=0.5, verify_burst=2)
    c = application.test_client()
    codes = [c.post("/v1/verify", json={"items": []}).status_code for _ in range(3)]
    assert codes[:2] == [200, 200]
    r = c.post("/v1/verify", json={"items": []})
    assert_problem(r, 429, "retry")
    assert int(r.headers["Retry-After"]) >= 1


def test_unexpected_failure_is_problem_500(tmp_path):
    application = make_app(tmp_path)

    @application.get("/boom")
    def boom():
        raise RuntimeError("disk on fire")

    r = application.test_client().get("/boom")
    body = assert_problem(r, 500)
    assert "disk on fire" not in body["detail"]  # internals stay in the log


# --- verification ---------------------------------------------------------------


def test_verify_with_client_hash(client, producer):
    env = claim_for(producer)
    [res] = verify(client, {"claim": env, "content_sha256": MEDIA_SHA,
                            "page_url": "https://news.example:8443/a/b?user=42#frag"})
    assert res["status"] == "verified"
    assert res["category"] == "confirmed"
    assert "signature_ok" in res["reasons"] and "content_match" in res["reasons"]
    assert res["binding"] == "client_sha256"
    assert res["producer"]["key_id"] == producer.key_id
    assert res["content_sha256"] == {"claimed": MEDIA_SHA, "observed": MEDIA_SHA}
    receipt = res["receipt"]
    [line] = entries(client, receipt["index"], receipt["index"] + 1)
    assert base64.b64decode(receipt["leaf_hash"]) == merkle.leaf_hash(line)
    entry = json.loads(line)
    assert entry["kind"] == "verification"
    assert entry["binding"] == "client_sha256"
    assert entry["page_origin"] == "https://news.example:8443"
    assert entry["content_sha256"] == {"claimed": MEDIA_SHA, "observed": MEDIA_SHA}
    assert entry["claim_digest"] == claims.claim_digest(env)
    assert entry["key_id"] == producer.key_id and entry["status"] == "verified"
    assert entry["registry_version"] and entry["server"].startswith("labelcheck/")
    assert b"/a/b" not in line and b"user=42" not in line and b"127.0.0.1" not in line
    assert not any(isinstance(v, float) for v in entry.values())


def test_claim_forms_give_the_same_verdict(client, producer):
    env = claim_for(producer)
    as_attr = claims.to_data_attribute(env)
    as_json = json.dumps(env)
    results = verify(client, *({"claim": c, "content_sha256": MEDIA_SHA} for c in (env, as_attr, as_attr + "==", as_json)))
    assert [r["status"] for r in results] == ["verified"] * 4
    assert len({r["claim_digest"] for r in results}) == 1
    idx = [r["receipt"]["index"] for r in results]
    assert idx == list(range(idx[0], idx[0] + 4))  # one batch, in order


def test_failing_claims_are_invalid(app, client, producer):
    other = keys.generate_key("unregistered")
    env = claim_for(producer)
    tampered = dict(env, signatures=[dict(env["signatures"][0], sig=base64.b64encode(b"\0" * 64).decode())])
    results = verify(
        client,
        {"claim": env, "content_sha256": "0" * 64},
        {"claim": claim_for(other), "content_sha256": MEDIA_SHA},
        {"claim": tampered, "content_sha256": MEDIA_SHA},
        {"claim": "not base64 at all!"},
        {"claim": {"payloadType": "x"}},
    )
    assert [r["status"] for r in results] == ["invalid"] * 5
    assert "content_mismatch" in results[0]["reasons"]
    assert "unknown_key" in results[1]["reasons"]
    assert "signature_invalid" in results[2]["reasons"]
    assert "malformed" in results[3]["reasons"] and "malformed" in results[4]["reasons"]


def test_claim_without_bytes_is_unverified(client, producer):
    [res] = verify(client, {"claim": claim_for(producer)})
    assert res["status"] == "unverified" and res["binding"] == "none"
    assert "signature_ok" in res["reasons"]


def test_items_without_anything_are_none_and_recorded(client):
    before = client.get("/v1/checkpoint")
    results = verify(client, {}, {"page_url": "https://a.example/x"})
    assert [r["status"] for r in results] == ["none", "none"]
    assert [r["category"] for r in results] == [None, None]
    lines = entries(client, results[0]["receipt"]["index"], results[1]["receipt"]["index"] + 1)
    assert [json.loads(x)["status"] for x in lines] == ["none", "none"]
    assert before.status_code == 200


def test_meta_signal_is_declared(client):
    [res, wrapped] = verify(client, {"signals": {"meta": '{"Label":"2","ContentProducer":"x","ProduceID":"y"}'}},
                            {"signals": {"meta": {"AIGC": {"Label": "1", "ContentProducer": "x", "ProduceID": "y"}}}})
    assert res["status"] == "declared" and res["category"] == "possible"
    assert wrapped["status"] == "declared" and wrapped["category"] == "confirmed"


def test_empty_batch_appends_nothing(client):
    size = client.get("/v1/checkpoint")
    assert verify(client) == []
    assert client.get("/v1/checkpoint").data == size.data


# --- fetching media -----------------------------------------------------------------


def labelled_png(label: str) -> bytes:
    """A real PNG carrying a GB 45438 XMP label."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(out, "PNG")
    return embed_label(out.getvalue(), {"Label": label, "ContentProducer": "p", "ProduceID": "i"}, "image/png")


SERVED = {"/media.png": MEDIA}


@pytest.fixture(scope="module")
def media_server():
    """A static file server on 127.0.0.1 serving SERVED."""
    SERVED["/labelled.png"] = labelled_png("2")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = SERVED.get(self.path)
            if body is not None:
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_verify_fetches_media_when_no_hash_given(tmp_path, media_server):
    application = make_app(tmp_path, fetch_allow=("127.0.0.1",))
    c = application.test_client()
    signer = keys.generate_key("fetching-ai")
    assert c.post("/v1/producers", json={"name": "F", "vkey": signer.vkey}, headers=admin(application)).status_code == 201
    env = claim_for(signer)
    ok, missing, wrong = verify(
        c,
        {"claim": env, "media_url": media_server + "/media.png", "page_url": media_server + "/page"},
        {"claim": env, "media_url": media_server + "/gone.png"},
        {"claim": claim_for(signer, sha="1" * 64), "media_url": media_server + "/media.png"},
    )
    assert ok["status"] == "verified" and ok["binding"] == "fetched"
    assert ok["content_sha256"]["observed"] == MEDIA_SHA
    assert ok["fetch"]["ok"] is True
    assert missing["status"] == "unverified" and "fetch_failed" in missing["reasons"]
    assert missing["binding"] == "none" and missing["fetch"]["ok"] is False
    assert wrong["status"] == "invalid" and "content_mismatch" in wrong["reasons"]
    entry = json.loads(entries(c, ok["receipt"]["index"], ok["receipt"]["index"] + 1)[0])
    assert entry["binding"] == "fetched" and entry["media_origin"] == media_server
    assert "media.png" not in json.dumps(entry)
    assert entry["content_sha256"]["observed"] == MEDIA_SHA


def test_fetched_media_labels_are_read_and_conflicts_reported(tmp_path, media_server):
    application = make_app(tmp_path, fetch_allow=("127.0.0.1",))
    c = application.test_client()
    signer = keys.generate_key("labelling-ai")
    assert c.post("/v1/producers", json={"name": "L", "vkey": signer.vkey}, headers=admin(application)).status_code == 201
    body = SERVED["/labelled.png"]
    url = media_server + "/labelled.png"
    sha = hashlib.sha256(body).hexdigest()
    plain, signed = verify(c, {"media_url": url},
                           {"media_url": url, "claim": claim_for(signer, sha=sha)})  # claim says Label 1
    assert plain["status"] == "declared" and plain["category"] == "possible"
    assert [s["source"] for s in plain["signals"]] == ["gb45438_xmp"]
    assert signed["status"] == "verified" and signed["category"] == "confirmed"
    assert "signals_conflict" in signed["reasons"] and signed["conflicts"]


def test_client_hash_means_no_fetch(tmp_path, media_server):
    application = make_app(tmp_path, fetch_allow=("127.0.0.1",))
    c = application.test_client()
    [res] = verify(c, {"media_url": media_server + "/media.png", "content_sha256": MEDIA_SHA.upper()})
    assert res["binding"] == "client_sha256" and res["fetch"] is None
    assert res["content_sha256"]["observed"] == MEDIA_SHA


def test_loopback_fetch_refused_without_allowlist(client, media_server):
    [res] = verify(client, {"media_url": media_server + "/media.png"})
    assert res["status"] == "unverified"
    assert "fetch_failed" in res["reasons"]
    assert res["fetch"]["reason"] == "address_refused"
    entry = json.loads(entries(client, res["receipt"]["index"], res["receipt"]["index"] + 1)[0])
    assert entry["fetch_reason"] == "address_refused"


# --- reading the ledger ----------------------------------------------------------


def test_entries_paging_and_bounds(client):
    for _ in range(11):
        verify(client, *([{}] * 100))
    size = 1100
    lines = entries(client, 0, size)
    assert len(lines) == 1000  # capped; the client pages
    assert entries(client, 1000, size + 50) == entries(client, 1000, 1100)
    assert len(entries(client, 1000, 1100)) == 100
    assert entries(client, size + 5, size + 9) == []
    assert entries(client, 3, 3) == []
    prev = ""
    for i, line in enumerate(lines[:20]):
        entry = json.loads(line)
        assert entry["index"] == i and entry["prev"] == prev
        prev = base64.b64encode(merkle.leaf_hash(line)).decode()
    assert_problem(client.get("/v1/entries?start=5&end=2"), 400, "before")
    assert_problem(client.get("/v1/entries?start=-1&end=2"), 400, "start")
    assert_problem(client.get("/v1/entries?end=2"), 400, "start")
    assert_problem(client.get("/v1/entries?start=1&end=x"), 400, "end")


def test_proof_errors(client):
    verify(client, {}, {}, {})
    assert_problem(client.get("/v1/proof/inclusion?index=3&size=3"), 400, "less than")
    assert_problem(client.get("/v1/proof/inclusion?index=0&size=99"), 400, "beyond")
    assert_problem(client.get("/v1/proof/inclusion?index=0"), 400, "size")
    assert_problem(client.get("/v1/proof/consistency?from=0&to=2"), 400)
    assert_problem(client.get("/v1/proof/consistency?from=2&to=1"), 400)
    assert_problem(client.get("/v1/proof/consistency?from=1&to=99"), 400, "beyond")
    assert client.get("/v1/proof/consistency?from=3&to=3").json["hashes"] == []


def test_outside_client_verifies_a_receipt_end_to_end(client, producer):
    """Only HTTP answers, ledger.merkle and ledger.checkpoint: no server internals."""
    [first] = verify(client, {"claim": claim_for(producer), "content_sha256": MEDIA_SHA})
    keys_doc = client.get("/v1/keys").json
    verifier = note.Verifier.from_vkey(keys_doc["ledger_vkey"])
    old = ckpt.open_checkpoint(client.get("/v1/checkpoint").data, verifier, origin=keys_doc["origin"])
    verify(client, {}, {})
    r = client.get("/v1/checkpoint")
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    cp = ckpt.open_checkpoint(r.data, verifier, origin=keys_doc["origin"])
    assert cp.size == old.size + 2

    index = first["receipt"]["index"]
    [line] = entries(client, index, index + 1)
    leaf = merkle.leaf_hash(line)
    assert base64.b64encode(leaf).decode() == first["receipt"]["leaf_hash"]
    proof = client.get(f"/v1/proof/inclusion?index={index}&size={cp.size}").json
    assert proof["index"] == index and proof["size"] == cp.size
    merkle.verify_inclusion(index, cp.size, leaf, [base64.b64decode(h) for h in proof["hashes"]], cp.root)
    cons = client.get(f"/v1/proof/consistency?from={old.size}&to={cp.size}").json
    merkle.verify_consistency(old.size, cp.size, old.root, cp.root, [base64.b64decode(h) for h in cons["hashes"]])
    # A receipt for other bytes does not check.
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(index, cp.size, merkle.leaf_hash(line + b" "),
                                [base64.b64decode(h) for h in proof["hashes"]], cp.root)


def assert_receipt_proves_itself(client, receipt: dict) -> ckpt.Checkpoint:
    """Offline: open the receipt's checkpoint with the ledger key, check the inclusion proof."""
    keys_doc = client.get("/v1/keys").json
    verifier = note.Verifier.from_vkey(keys_doc["ledger_vkey"])
    assert set(receipt) == {"index", "leaf_hash", "checkpoint", "inclusion"}
    cp = ckpt.open_checkpoint(receipt["checkpoint"].encode(), verifier, origin=keys_doc["origin"])
    leaf = base64.b64decode(receipt["leaf_hash"])
    proof = [base64.b64decode(h) for h in receipt["inclusion"]]
    merkle.verify_inclusion(receipt["index"], cp.size, leaf, proof, cp.root)
    [line] = entries(client, receipt["index"], receipt["index"] + 1)
    assert merkle.leaf_hash(line) == leaf
    return cp


def test_every_result_carries_a_receipt_that_proves_itself(client, producer):
    first = verify(client, *[{"claim": claim_for(producer), "content_sha256": MEDIA_SHA}] * 3)
    later = verify(client, {})
    cps = [assert_receipt_proves_itself(client, r["receipt"]) for r in first + later]
    # One commit, one checkpoint: it covers the whole request, and the next request's extends it.
    assert cps[0] == cps[1] == cps[2] and cps[0].size == first[2]["receipt"]["index"] + 1
    assert cps[3].size == cps[0].size + 1
    cons = client.get(f"/v1/proof/consistency?from={cps[0].size}&to={cps[3].size}").json
    merkle.verify_consistency(cps[0].size, cps[3].size, cps[0].root, cps[3].root,
                              [base64.b64decode(h) for h in cons["hashes"]])
    # A receipt whose proof was altered does not check.
    bad = dict(first[0]["receipt"], inclusion=list(reversed(first[0]["receipt"]["inclusion"])))
    with pytest.raises(merkle.ProofError):
        assert_receipt_proves_itself(client, bad)


def test_registry_answers_carry_receipts_that_prove_themselves(app, client):
    signer = keys.generate_key("rcpt-ai")
    r = client.post("/v1/producers", json={"name": "R", "vkey": signer.vkey}, headers=admin(app))
    assert r.status_code == 201
    assert_receipt_proves_itself(client, r.json["receipt"])
    rv = client.post(f"/v1/producers/{signer.key_id}/revoke", json={}, headers=admin(app))
    cp = assert_receipt_proves_itself(client, rv.json["receipt"])
    assert cp.size == rv.json["receipt"]["index"] + 1


# --- the registry ---------------------------------------------------------------------


def test_producer_tokens(app, client):
    signer = keys.generate_key("tok")
    body = {"name": "T", "vkey": signer.vkey}
    r = client.post("/v1/producers", json=body)
    assert_problem(r, 401, "admin")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert_problem(client.post("/v1/producers", json=body, headers={"Authorization": "Bearer nope"}), 403)
    assert_problem(client.post("/v1/producers", json=body, headers=regulator(app)), 403)
    assert_problem(client.post("/v1/producers", json=body, headers={"Authorization": "Basic abc"}), 401)
    assert_problem(client.post(f"/v1/producers/{signer.key_id}/revoke"), 401)
    assert_problem(client.post(f"/v1/producers/{signer.key_id}/revoke", headers={"Authorization": "Bearer x"}), 403)
    assert client.post("/v1/producers", json=body, headers=admin(app)).status_code == 201


def test_register_and_revoke_are_on_file_and_on_ledger(app, client, tmp_path):
    signer = keys.generate_key("reg-ai")
    r = client.post("/v1/producers", json={"name": "Reg AI", "vkey": signer.vkey, "filing": "BJ-1",
                                           "roles": ["producer", "propagator"]}, headers=admin(app))
    assert r.status_code == 201
    assert r.json["key_id"] == signer.key_id and r.json["producer"]["revoked_at"] is None
    trust = json.loads((tmp_path / "data" / "trust.json").read_text())
    assert [p["vkey"] for p in trust["producers"]] == [signer.vkey]
    assert [p["key_id"] for p in client.get("/v1/keys").json["producers"]] == [signer.key_id]

    dup = client.post("/v1/producers", json={"name": "Again", "vkey": signer.vkey}, headers=admin(app))
    assert_problem(dup, 409, "already")

    env = claim_for(signer)
    assert verify(client, {"claim": env, "content_sha256": MEDIA_SHA})[0]["status"] == "verified"
    rv = client.post(f"/v1/producers/{signer.key_id}/revoke", json={"revoked_at": "2020-01-01T00:00:00Z"},
                     headers=admin(app))
    assert rv.status_code == 200 and rv.json["producer"]["revoked_at"] == "2020-01-01T00:00:00Z"
    res = verify(client, {"claim": env, "content_sha256": MEDIA_SHA})[0]
    assert res["status"] == "invalid" and "revoked_key" in res["reasons"]
    assert_problem(client.post(f"/v1/producers/{signer.key_id}/revoke", json={}, headers=admin(app)), 409)
    assert_problem(client.post("/v1/producers/nobody+00000000/revoke", headers=admin(app)), 404)

    lines = entries(client, 0, 100)
    registry = [json.loads(x) for x in lines if json.loads(x)["kind"] == "registry"]
    assert [(e["action"], e["producer"]["key_id"]) for e in registry] == [("add", signer.key_id),
                                                                          ("revoke", signer.key_id)]
    assert registry[1]["producer"]["revoked_at"] == "2020-01-01T00:00:00Z"
    assert rv.json["receipt"]["index"] == registry[1]["index"]


def test_revoke_defaults_to_now(app, client, producer):
    r = client.post(f"/v1/producers/{producer.key_id}/revoke", headers=admin(app))
    assert r.status_code == 200 and r.json["producer"]["revoked_at"].endswith("Z")


def test_bad_producers_are_422(app, client):
    signer = keys.generate_key("bad")
    h = admin(app)
    assert_problem(client.post("/v1/producers", json={"name": "x"}, headers=h), 422, "vkey")
    assert_problem(client.post("/v1/producers", json={"vkey": signer.vkey}, headers=h), 422, "name")
    assert_problem(client.post("/v1/producers", json={"name": "x", "vkey": "junk"}, headers=h), 422, "vkey")
    assert_problem(client.post("/v1/producers", json={"name": "x", "vkey": signer.vkey, "roles": ["god"]},
                               headers=h), 422, "roles")
    assert_problem(client.post("/v1/producers", json={"name": "x", "vkey": signer.vkey, "revoked": True},
                               headers=h), 422, "revoked")
    assert_problem(client.post("/v1/producers", json={"name": "x", "vkey": signer.vkey, "key_id": "x+00000000"},
                               headers=h), 422, "key_id")
    assert_problem(client.post("/v1/producers", json=[1], headers=h), 422)
    assert_problem(client.post("/v1/producers", data="x", headers=h), 415)
    assert_problem(client.post(f"/v1/producers/{signer.key_id}/revoke", json={"revoked_at": "yesterday"},
                               headers=h), 422, "revoked_at")
    assert not (app.extensions["labelcheck"].services.config.trust_path).exists()  # nothing half-written


def test_damaged_trust_file(tmp_path, caplog):
    application = make_app(tmp_path)
    c = application.test_client()
    signer = keys.generate_key("kept")
    assert c.post("/v1/producers", json={"name": "K", "vkey": signer.vkey}, headers=admin(application)).status_code == 201
    assert len(c.get("/v1/keys").json["producers"]) == 1  # this worker has read the registry
    trust = tmp_path / "data" / "trust.json"
    trust.write_text('{"producers": [{"name": "x"}]}')  # a bad hand edit
    assert [p["key_id"] for p in c.get("/v1/keys").json["producers"]] == [signer.key_id]
    assert "last good trust registry" in caplog.text
    with pytest.raises(ValueError):
        make_app(tmp_path)  # a new start refuses it


def test_every_worker_sees_registry_changes(tmp_path):
    """Two apps on one data dir stand for two gunicorn workers."""
    a, b = make_app(tmp_path), make_app(tmp_path)
    ca, cb = a.test_client(), b.test_client()
    assert cb.get("/v1/keys").json["producers"] == []
    signer = keys.generate_key("shared")
    assert ca.post("/v1/producers", json={"name": "S", "vkey": signer.vkey}, headers=admin(a)).status_code == 201
    assert [p["key_id"] for p in cb.get("/v1/keys").json["producers"]] == [signer.key_id]
    assert verify(cb, {"claim": claim_for(signer), "content_sha256": MEDIA_SHA})[0]["status"] == "verified"
    assert cb.post(f"/v1/producers/{signer.key_id}/revoke", headers=admin(b)).status_code == 200
    assert ca.get("/v1/keys").json["producers"][0]["revoked_at"] is not None


# --- export -----------------------------------------------------------------------------


def test_export_tokens_and_bundle_verifies(app, client, producer, tmp_path):
    verify(client, {"claim": claim_for(producer), "content_sha256": MEDIA_SHA}, {})
    assert_problem(client.get("/v1/export"), 401, "regulator")
    assert_problem(client.get("/v1/export", headers={"Authorization": "Bearer wrong"}), 403)
    assert_problem(client.get("/v1/export", headers=admin(app)), 403)
    r = client.get("/v1/export", headers=regulator(app))
    assert r.status_code == 200 and r.mimetype == "application/x-ndjson"
    assert "attachment" in r.headers["Content-Disposition"] and ".ndjson" in r.headers["Content-Disposition"]
    bundle_path = tmp_path / "bundle.ndjson"
    bundle_path.write_bytes(r.data)
    vkey = client.get("/v1/keys").json["ledger_vkey"]
    with open(bundle_path, "rb") as fp:
        report = bundle.verify_bundle(fp, vkey)
    assert report is not None
    (tmp_path / "ledger.pub").write_text(vkey + "\n")
    result = CliRunner().invoke(main, ["ledger", "verify-bundle", str(bundle_path), "--vkey", vkey])
    assert result.exit_code == 0, result.output
    bad = tmp_path / "bad.ndjson"
    bad.write_bytes(r.data.replace(b'"status":"verified"', b'"status":"invalid"'))
    result = CliRunner().invoke(main, ["ledger", "verify-bundle", str(bad), "--vkey", vkey])
    assert result.exit_code != 0


# --- CORS ---------------------------------------------------------------------------------


def test_cors_allows_extension_origins_only(tmp_path):
    application = make_app(tmp_path, cors_origins=("https://portal.example",))
    c = application.test_client()
    for origin in (EXT_ORIGIN, "moz-extension://0b5c3a52-7f0d-4c38-9d5c-2b0a7e1f7c11", "https://portal.example"):
        r = c.post("/v1/verify", json={"items": []}, headers={"Origin": origin})
        assert r.headers.get("Access-Control-Allow-Origin") == origin, origin
        pre = c.options("/v1/verify", headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                               "Access-Control-Request-Headers": "content-type"})
        assert pre.headers.get("Access-Control-Allow-Origin") == origin
    for origin in ("https://evil.example", "chrome-extension://a.evil.example", "null",
                   "https://portal.example.evil.example", "http://portal.example"):
        r = c.post("/v1/verify", json={"items": []}, headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in r.headers, origin


# --- demo -------------------------------------------------------------------------------


def test_demo_creates_and_registers_a_producer(tmp_path):
    application = make_app(tmp_path, demo=True)
    data = tmp_path / "data"
    key = data / "demo-producer.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    signer = keys.load_signer(key)
    c = application.test_client()
    demo = [p for p in c.get("/v1/keys").json["producers"] if p["key_id"] == signer.key_id]
    assert len(demo) == 1 and demo[0]["revoked_at"] is None
    lines = entries(c, 0, 100)
    added = [json.loads(x) for x in lines if json.loads(x)["kind"] == "registry"
             and json.loads(x)["producer"]["key_id"] == signer.key_id]
    assert [e["action"] for e in added] == ["add"]
    make_app(tmp_path, demo=True)  # a second start (or worker) adds nothing
    assert len(entries(c, 0, 100)) == len(lines)
    assert keys.load_signer(key).key_id == signer.key_id
    [res] = verify(c, {"claim": claim_for(signer), "content_sha256": MEDIA_SHA})
    assert res["status"] == "verified"


def test_openapi_describes_every_route_the_server_serves(app, client):
    """Outside clients generate code from /openapi.json: a served route it
    does not describe is an API they cannot see."""
    documented = set(client.get("/openapi.json").json["paths"])
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        served.add(path)
    # /tlog/tile/<path:rest> serves the whole C2SP tile tree, documented as its two shapes.
    served.discard("/tlog/tile/{rest}")
    assert {"/tlog/tile/{level}/{index}", "/tlog/tile/entries/{index}"} <= documented
    assert served - documented == set(), "served but not in /openapi.json"


def test_the_root_names_the_entry_points_and_each_answers(client):
    r = client.get("/")
    assert r.status_code == 200 and r.json["service"] == "labelcheck"
    for name in ("openapi", "health", "checkpoint", "keys", "tiles"):
        assert client.get(r.json[name]).status_code == 200, name
