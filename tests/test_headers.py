"""The security and privacy headers on every answer (labelcheck.web.headers):
answers of each kind, errors included."""

from __future__ import annotations

import pytest

from labelcheck.web.app import create_app

CSP = "default-src 'none'; frame-ancestors 'none'"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app({"data_dir": tmp_path_factory.mktemp("headers") / "data", "demo": True, "verify_rate": 0})
    yield app.test_client()
    app.extensions["labelcheck"].services.close()


@pytest.mark.parametrize("method, path, body, status, mimetype", [
    ("GET", "/healthz", None, 200, "application/json"),
    ("POST", "/v1/verify", {"items": []}, 200, "application/json"),
    ("POST", "/v1/verify", {"items": 1}, 422, "application/problem+json"),
    ("GET", "/nowhere", None, 404, "application/problem+json"),
    ("GET", "/v1/export", None, 401, "application/problem+json"),
    ("GET", "/v1/entries?start=0&end=1", None, 200, "application/x-ndjson"),
    ("GET", "/tlog/checkpoint", None, 200, "text/plain"),
    ("GET", "/tlog/tile/entries/000.p/1", None, 200, "application/octet-stream"),
    ("GET", "/openapi.json", None, 200, "application/json"),
])
def test_answers_are_never_sniffed_framed_or_run(client, method, path, body, status, mimetype):
    r = client.open(path, method=method, json=body)
    assert (r.status_code, r.mimetype) == (status, mimetype)
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["Content-Security-Policy"] == CSP


def test_demo_pages_run_their_script_and_send_no_referrer(client):
    r = client.get("/demo/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert "Content-Security-Policy" not in r.headers  # the page's own script must run
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Referrer-Policy"] == "no-referrer"
