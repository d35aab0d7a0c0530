"""The claim registry as the viewer sees it (docs/protocol.md §12): a claim
published with ``POST /v1/claims`` to a real ``labelcheck serve --demo``,
then pages (served by this test) showing its image unlabelled, re-encoded,
and re-encoded under its own claim. Debian's chromium with the unpacked
extension and "check unlabelled media too" on."""

from __future__ import annotations

import hashlib
import json
import urllib.request

import pytest
from PIL import Image

from labelcheck.claims import build_payload, pdq, sign_envelope
from labelcheck.demo.markup import attr

from test_extension_pages import (  # noqa: F401 (fixtures)
    Pages, browser, html, page, playwright_instance, server, signer, site, work)
from test_extension_e2e import missing
from test_pdq import encoded, photo

pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing() is not None, reason=missing() or ""),
              pytest.mark.skipif(not pdq.available(), reason="pdqhash and numpy are not installed")]

ORIGINAL = encoded(photo(11))
# What a platform serves: half the size, JPEG quality 70, no metadata.
REENCODED = encoded(photo(11).resize((160, 120), Image.Resampling.LANCZOS), "JPEG", quality=70)
PRODUCER = "labelcheck demo producer"


def registered_claim(signer, server: str) -> dict:
    payload = build_payload(hashlib.sha256(ORIGINAL).hexdigest(), "image/png", "1", issuer=signer,
                            pdq=pdq.image_pdq(ORIGINAL), filing="DEMO-0000")
    env = sign_envelope(payload, signer)
    req = urllib.request.Request(f"{server}/v1/claims", data=json.dumps(env).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as r:
        assert r.status in (200, 201)
    return env


@pytest.fixture
def opted_in(browser, server):
    browser.configure(server, check_unlabelled=True)
    yield browser
    browser.configure(server)


def badge_of(page, media_id: str) -> dict:
    js = """(id) => { const b = [...document.querySelectorAll('labelcheck-badge')]
        .find((x) => x.nextElementSibling && x.nextElementSibling.id === id);
      return b && b.getAttribute('status') !== 'unchecked' ? {status: b.getAttribute('status'),
        state: b.getAttribute('data-state'), label: b.getAttribute('data-label'), category: b.getAttribute('category')}
        : null; }"""
    page.wait_for_function(js, arg=media_id, timeout=30000, polling=250)
    return page.evaluate(js, media_id)


def details_text(page, media_id: str) -> str:
    page.click(f"labelcheck-badge:has(+ #{media_id})")
    text = page.wait_for_selector("labelcheck-details").get_attribute("data-text")
    page.keyboard.press("Escape")
    return text


def test_registry_matches_are_worded_by_producer_and_similar_is_never_verified(page, opted_in, site, signer, server,
                                                                              artifacts_dir):
    env = registered_claim(signer, server)
    original = site.add("/r/original.png", ORIGINAL, "image/png")
    reencoded = site.add("/r/reencoded.jpg", REENCODED, "image/jpeg")
    copy = site.add("/r/copy.jpg", REENCODED, "image/jpeg")
    url = site.add("/r/page", html(f"""
        <img id="exact" src="{original}" width="320" height="240">
        <img id="similar" src="{reencoded}" width="320" height="240">
        <img id="claimed" src="{copy}" width="320" height="240" data-labelcheck-claim="{attr(env)}">"""))
    sent = []

    def record(route):
        sent.extend(json.loads(route.request.post_data)["items"])
        route.continue_()

    opted_in.context.route(f"{server}/v1/verify", record)
    try:
        page.goto(url)
        exact = badge_of(page, "exact")
        similar = badge_of(page, "similar")
        claimed = badge_of(page, "claimed")
    finally:
        opted_in.context.unroute_all()

    # Opted in, unlabelled images go as their URL, for the server to fetch and hash perceptually.
    by_url = {i.get("media_url"): i for i in sent}
    for u in (original, reencoded):
        assert by_url[u] == {"media_url": u, "page_url": site.base}

    assert (exact["status"], exact["state"], exact["category"]) == ("verified", "registered", "confirmed")
    assert exact["label"] == f"AI-generated · Label found in the registry: {PRODUCER}"
    assert (similar["status"], similar["state"]) == ("declared", "similar")
    assert similar["label"] == f"AI-generated · Matches a label registered by {PRODUCER}, visually similar (not the same file)"
    # A claim for the original on its re-encoded copy: the same picture, not tampered.
    assert (claimed["state"], claimed["label"]) == ("similar", similar["label"])
    for b in (similar, claimed):
        assert "verified" not in b["label"] and "tampered" not in b["label"]

    text = details_text(page, "similar")
    assert "Visual distance: " in text and "of 256 bits differ (PDQ)" in text
    assert "registry_similar" in text
    page.screenshot(path=str(artifacts_dir / "extension-registry.png"))
