"""The extension checks every ledger receipt it is given (docs/protocol.md §10)
against the ledger key it pinned on first use: Debian's chromium with the
unpacked extension against a real ``labelcheck serve --demo``. The server's
answers are changed on their way to the extension's worker with Playwright
routing: a receipt with a changed inclusion hash, and a server offering
another ledger key than the one pinned."""

from __future__ import annotations

import base64
import json
import urllib.request

import pytest

from labelcheck.ledger import note

from test_extension_e2e import (  # noqa: F401 (browser, playwright_instance: shared fixtures)
    browser, demo_server, missing, playwright_instance, wait_badges)

pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing() is not None, reason=missing() or "")]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("extension-receipts")


@pytest.fixture(scope="module")
def server(work):
    with demo_server(work / "data") as base:
        yield base


@pytest.fixture(scope="module")
def ledger_vkey(server) -> str:
    with urllib.request.urlopen(f"{server}/v1/keys", timeout=10) as r:
        return json.loads(r.read())["ledger_vkey"]


@pytest.fixture
def page(browser):
    browser.worker.evaluate("self.labelcheck.background.clearCache()")  # every case asks the server afresh
    pg = browser.context.new_page()
    yield pg
    pg.close()
    browser.context.unroute_all()


def details(page) -> dict:
    page.click("labelcheck-badge")
    panel = page.wait_for_selector("labelcheck-details", timeout=5000)
    return {"check": panel.get_attribute("data-receipt-check"), "text": panel.get_attribute("data-text")}


def options(browser) -> dict:
    pg = browser.context.new_page()
    pg.goto(browser.url("options/options.html"))
    pg.wait_for_selector("body[data-ready='1']")
    got = {"state": pg.get_attribute("body", "data-ledger"), "pinned": pg.inner_text("#ledger-pinned"),
           "offered": pg.inner_text("#ledger-offered"), "page": pg}
    return got


def flip_first_byte(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def test_receipt_checks_against_the_key_pinned_on_first_use(page, browser, server, ledger_vkey, artifacts_dir):
    page.goto(f"{server}/demo/verified")
    [badge] = wait_badges(page, 1)
    assert badge["status"] == "verified"
    got = details(page)
    assert got["check"] == "ok", got["text"]
    assert "Receipt: checked: the entry is in the ledger's signed checkpoint of" in got["text"]
    key_id = "+".join(ledger_vkey.split("+", 2)[:2])  # name+hash: the base64 key data may hold "+" too
    assert key_id in got["text"]  # the key id it was checked with
    page.screenshot(path=str(artifacts_dir / "extension-receipt-checked.png"))

    opts = options(browser)  # the pinned key is on the options page
    assert opts["state"] == "pinned" and opts["pinned"] == ledger_vkey
    opts["page"].close()


def test_a_tampered_receipt_is_a_ledger_problem_not_a_media_problem(page, browser, server, artifacts_dir):
    def tamper(route):
        answer = route.fetch()
        body = answer.json()
        for result in body["results"]:
            result["receipt"]["inclusion"][0] = flip_first_byte(result["receipt"]["inclusion"][0])
        route.fulfill(response=answer, body=json.dumps(body))

    browser.context.route(f"{server}/v1/verify", tamper)
    page.goto(f"{server}/demo/verified")
    [badge] = wait_badges(page, 1)
    assert badge["status"] == "verified" and badge["state"] == "verified"  # the media's verdict stands
    got = details(page)
    assert got["check"] == "failed", got["text"]
    assert "does NOT check: the inclusion proof does not lead to the signed checkpoint" in got["text"]
    assert "a problem with the server's ledger, not with the media" in got["text"]
    page.screenshot(path=str(artifacts_dir / "extension-receipt-tampered.png"))

    tab = browser.tab_id(page)  # the popup says so too
    popup = browser.context.new_page()
    popup.goto(browser.url(f"popup/popup.html?tab={tab}"))
    popup.wait_for_selector("body[data-ready='1']")
    assert popup.get_attribute("#results tbody tr", "data-receipt-check") == "failed"
    assert "ledger problem" in popup.inner_text("#results tbody tr")
    popup.close()


def test_another_key_is_refused_and_said_until_the_viewer_re_pins(page, browser, server, ledger_vkey):
    other = note.Signer.generate(ledger_vkey.split("+", 1)[0]).vkey  # same log name, another key
    # Pinned earlier: another key. The server offers its own: a conflict, never silently accepted.
    browser.worker.evaluate("([url, vkey]) => chrome.storage.local.set({ledgerKeys: {[url]: {vkey, pinnedAt: 'x'}}, "
                            "ledgerKeyConflicts: {}})", [server, other])
    browser.worker.evaluate("self.labelcheck.background.clearCache()")
    page.goto(f"{server}/demo/verified")
    wait_badges(page, 1)
    got = details(page)
    assert got["check"] == "failed"
    assert "ledger key other than the one pinned" in got["text"]

    opts = options(browser)
    assert opts["state"] == "conflict" and opts["pinned"] == other and opts["offered"] == ledger_vkey
    assert opts["page"].is_visible("#ledger-conflict")
    popup = browser.context.new_page()
    popup.goto(browser.url("popup/popup.html?tab=0"))
    popup.wait_for_selector("body[data-ready='1']")
    assert popup.is_visible("#key-conflict")
    popup.close()

    # The viewer re-pins deliberately: the server's key is pinned and receipts check again.
    opts["page"].click("#repin")
    opts["page"].wait_for_selector("body[data-repinned]")
    assert opts["page"].get_attribute("body", "data-ledger") == "pinned"
    assert opts["page"].inner_text("#ledger-pinned") == ledger_vkey
    opts["page"].close()
    page.goto(f"{server}/demo/verified")
    wait_badges(page, 1)
    assert details(page)["check"] == "ok"
