"""The demo pages served with ``labelcheck serve --demo``: every case is there,
its claims are bound to the host the page was asked on, and each one gets the
verdict the case stands for when checked through the API (the browser tests
check the same through the extension)."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest

from labelcheck.web.app import create_app

EXPECTED = {  # media file -> (status, the failing or passing reason that makes the case)
    "verified.png": ("verified", "content_match"),
    "tampered.png": ("invalid", "signature_invalid"),
    "shown.png": ("invalid", "content_mismatch"),
    "unknown.png": ("invalid", "unknown_key"),
    "revoked.png": ("invalid", "revoked_key"),
    "clip.mp4": ("verified", "content_match"),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app({"data_dir": tmp_path_factory.mktemp("demo") / "data", "demo": True})
    return app.test_client()


def claims_on(html: str) -> list[dict]:
    """Every envelope on a page: data attributes (base64url) and claim scripts."""
    out = []
    for value in re.findall(r'data-labelcheck-claim="([^"]+)"', html):
        out.append(json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))))
    for body in re.findall(r'<script type="application/vnd.labelcheck.claim\+json"[^>]*>(.*?)</script>', html, re.S):
        value = json.loads(body)
        out.extend(value if isinstance(value, list) else [value])
    return out


def payload(envelope: dict) -> dict:
    return json.loads(base64.b64decode(envelope["payload"]))


def test_index_links_every_case(client):
    html = client.get("/demo/").get_data(as_text=True)
    links = re.findall(r'href="/demo/([a-z0-9-]+)"', html)
    for case in ("verified", "tampered", "other-bytes", "unknown-producer", "revoked-producer", "page-meta",
                 "dynamic", "video", "many", "mixed", "gb45438-png", "gb45438-jpeg", "c2pa", "conflict"):
        assert case in links
        assert client.get(f"/demo/{case}").status_code == 200
    for path, detail in (("/demo/no-such-case", "no demo page named 'no-such-case'"),
                         ("/demo/media/no-such.png", "no demo media named 'no-such.png'")):
        r = client.get(path)
        assert r.status_code == 404 and r.mimetype == "application/problem+json"
        assert r.json["detail"] == detail


@pytest.mark.parametrize("case", ["verified", "tampered", "other-bytes", "unknown-producer", "revoked-producer",
                                  "video"])
def test_each_case_gets_its_verdict(client, case):
    html = client.get(f"/demo/{case}", base_url="http://news.example:8000").get_data(as_text=True)
    [envelope] = claims_on(html)
    url = payload(envelope)["content"]["url"]
    assert url.startswith("http://news.example:8000/demo/media/")  # absolute, for the host asked
    name = url.rsplit("/demo/media/", 1)[1]
    served = client.get(f"/demo/media/{name}")
    sha = hashlib.sha256(served.data).hexdigest()
    r = client.post("/v1/verify", json={"items": [{"claim": envelope, "content_sha256": sha}]})
    [result] = r.json["results"]
    status, reason = EXPECTED[name]
    assert result["status"] == status and reason in result["reasons"], result
    assert result["receipt"]["index"] >= 0


def test_claims_follow_the_host_and_media_is_the_same_everywhere(client):
    a = claims_on(client.get("/demo/verified", base_url="http://127.0.0.1:8080").get_data(as_text=True))[0]
    b = claims_on(client.get("/demo/verified", base_url="http://localhost:9999").get_data(as_text=True))[0]
    assert payload(a)["content"]["url"] == "http://127.0.0.1:8080/demo/media/verified.png"
    assert payload(b)["content"]["url"] == "http://localhost:9999/demo/media/verified.png"
    assert payload(a)["content"]["sha256"] == payload(b)["content"]["sha256"]
    png = client.get("/demo/media/verified.png")
    assert png.mimetype == "image/png" and png.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert client.get("/demo/media/clip.mp4").mimetype == "video/mp4"


def test_many_page_holds_a_thousand_distinct_claimed_images(client):
    html = client.get("/demo/many").get_data(as_text=True)
    claims = claims_on(html)
    assert len(claims) == 1000
    assert len({payload(c)["content"]["sha256"] for c in claims}) == 1000
    assert len(claims_on(client.get("/demo/many?n=20").get_data(as_text=True))) == 20


def test_page_meta_and_dynamic_pages(client):
    html = client.get("/demo/page-meta").get_data(as_text=True)
    [content] = re.findall(r"<meta name=\"AIGC\" content='([^']+)'>", html)
    assert json.loads(content)["AIGC"]["Label"] == "2"
    r = client.post("/v1/verify", json={"items": [{"signals": {"meta": content}}]})
    assert r.json["results"][0]["status"] == "declared" and r.json["results"][0]["category"] == "possible"
    dynamic = client.get("/demo/dynamic").get_data(as_text=True)
    assert "setTimeout" in dynamic and "loading = \"lazy\"" in dynamic


def test_revoked_producer_is_registered_then_revoked_on_the_ledger(client):
    lines = client.get("/v1/entries?start=0&end=100").get_data(as_text=True).splitlines()
    registry = [json.loads(x) for x in lines if json.loads(x)["kind"] == "registry"]
    revoked = [e for e in registry if e["producer"]["filing"] == "DEMO-REVOKED-0001"]
    assert [e["action"] for e in revoked] == ["add", "revoke"]
    # A second start (another worker) changes nothing.
    before = len(lines)
    create_app({"data_dir": client.application.extensions["labelcheck"].services.config.data_dir, "demo": True})
    assert len(client.get("/v1/entries?start=0&end=100").get_data(as_text=True).splitlines()) == before


def test_the_root_sends_a_visitor_to_the_demo(client):
    r = client.get("/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/demo/")
    assert client.get(r.headers["Location"]).status_code == 200
