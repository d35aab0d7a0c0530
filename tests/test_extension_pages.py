"""The extension on pages the project did not write: lazy images without a
box, lazy ``srcset``, ``<picture>``, web components (open shadow roots),
CSS ``background-image``, media the server may not fetch, small icons in
links, and the Chinese wording. Debian's chromium with the unpacked
extension, a real ``labelcheck serve --demo`` for verification, and the test
pages served by a small threaded HTTP server on 127.0.0.1 in this test.
Claims are signed here with the demo producer's key (the server's data dir).

Screenshots of the compact marks, the conflict mark and each failure state,
in English and Simplified Chinese, go to artifacts/.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from labelcheck.claims import build_payload, sign_envelope
from labelcheck.demo.media import picture
from labelcheck.demo.markup import attr, claim_script
from labelcheck.ledger import keyfile

from test_extension_e2e import (  # noqa: F401 (browser, page, playwright_instance: shared fixtures)
    Browser, browser, demo_server, free_port, missing, page, playwright_instance, wait_badges)

pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing() is not None, reason=missing() or "")]

SPACER = '<div style="height: 2400px">scroll down</div>'


class Pages:
    """Routes of the test site: path -> (body, content type); some images
    are slow, some refused to anything but a browser (hotlink protection)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, str]] = {}
        self.slow: dict[str, float] = {}
        self.browser_only: set[str] = set()
        self.hits: dict[str, int] = {}  # path -> GETs
        self.base = ""

    def add(self, path: str, body: bytes | str, ctype: str = "text/html; charset=utf-8") -> str:
        self.routes[path] = (body.encode() if isinstance(body, str) else body, ctype)
        return self.base + path

    def handler(self):
        pages = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                path = self.path.split("?")[0]
                pages.hits[path] = pages.hits.get(path, 0) + 1
                if path not in pages.routes:
                    self.send_error(404)
                    return
                if path in pages.browser_only and not self.headers.get("Sec-Fetch-Dest"):
                    self.send_error(403)
                    return
                time.sleep(pages.slow.get(path, 0))
                body, ctype = pages.routes[path]
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "max-age=600")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("extension-pages")


@pytest.fixture(scope="module")
def server(work):
    with demo_server(work / "data") as base:
        urllib.request.urlopen(f"{base}/demo/verified", timeout=10).read()  # the demo producer exists now
        yield base


@pytest.fixture(scope="module")
def site():
    pages = Pages()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), pages.handler())
    pages.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield pages
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def signer(work, server):
    return keyfile.load_signer(work / "data" / "demo-producer.key")


def image(site: Pages, name: str, seed: int, width: int = 240, height: int = 160) -> tuple[str, bytes]:
    body = picture(seed, width, height)
    return site.add(f"/m/{name}", body, "image/png"), body


def claim(signer, url: str, body: bytes, label: str = "1") -> dict:
    payload = build_payload(hashlib.sha256(body).hexdigest(), "image/png", label, issuer=signer, url=url,
                            filing="DEMO-0000", synthesis=["other_generation"], produce_id=f"t-{url.rsplit('/', 1)[1]}")
    return sign_envelope(payload, signer)


def html(body: str, head: str = "") -> str:
    return f"<!doctype html><html><head><meta charset=utf-8>{head}</head><body>{body}</body></html>"


BADGE_BOX = """(id) => {
  const el = document.getElementById(id);
  const b = [...document.querySelectorAll('labelcheck-badge')].find((x) => x.nextElementSibling === el ||
    (x.nextElementSibling && x.nextElementSibling.contains && x.nextElementSibling.contains(el)));
  if (!b) return null;
  const r = (x) => { const q = x.getBoundingClientRect(); return [q.left, q.top, q.width, q.height]; };
  return {media: r(el), badge: r(b), hidden: b.hasAttribute('data-hidden'), status: b.getAttribute('status'),
          state: b.getAttribute('data-state'), compact: b.hasAttribute('data-compact'),
          visibility: getComputedStyle(b).visibility};
}"""


def badge_on(page, media_id: str, timeout: float = 20.0) -> dict:
    page.wait_for_function(f"(id) => ({BADGE_BOX})(id) && ({BADGE_BOX})(id).status !== 'unchecked'",
                           arg=media_id, timeout=timeout * 1000, polling=200)
    return page.evaluate(BADGE_BOX, media_id)


def on_corner(box: dict) -> bool:
    (mx, my, _, _), (bx, by, _, _) = box["media"], box["badge"]
    return abs(mx - bx) <= 1.5 and abs(my - by) <= 1.5


def wait_shown(page, media_id: str, timeout: float = 10.0) -> dict:
    """The badge of ``media_id`` once it is visible and on the media's corner."""
    page.wait_for_function(f"""(id) => {{ const b = ({BADGE_BOX})(id);
        return b && !b.hidden && b.visibility === 'visible' && b.media[3] > 0 &&
          Math.abs(b.media[0] - b.badge[0]) <= 1.5 && Math.abs(b.media[1] - b.badge[1]) <= 1.5; }}""",
                           arg=media_id, timeout=timeout * 1000, polling=200)
    return page.evaluate(BADGE_BOX, media_id)


# --- wrong verdicts ----------------------------------------------------------


def test_lazy_image_without_size_gets_its_badge_when_it_loads(page, site, signer):
    url, body = image(site, "lazy-nobox.png", 11)
    site.slow["/m/lazy-nobox.png"] = 1.0
    site.add("/lazy-nobox", html(f'{SPACER}<p><img id="subject" loading="lazy" src="{url}" '
                                 f'data-labelcheck-claim="{attr(claim(signer, url, body))}"></p>'))
    page.goto(f"{site.base}/lazy-nobox")
    first = badge_on(page, "subject")
    assert first["status"] == "verified"
    page.evaluate("document.getElementById('subject').scrollIntoView()")
    box = wait_shown(page, "subject")
    assert box["media"][2:] == [240, 160]
    # Second visit: the cached verdict arrives long before the slow image.
    page.goto(f"{site.base}/lazy-nobox")
    page.evaluate("document.getElementById('subject').scrollIntoView()")
    assert wait_shown(page, "subject", timeout=15)["status"] == "verified"


def test_same_origin_images_are_fetched_once_and_hashed_as_the_page_got_them(page, browser, site, signer):
    names = [f"once-{i}.png" for i in range(12)]
    made = [image(site, n, 60 + i, 48, 48) for i, n in enumerate(names)]
    # The last one's claim is for other bytes than the page shows: the verdict
    # must come from the bytes the page received, not from anything else.
    _, other = image(site, "once-other.png", 99, 48, 48)
    claims = [claim(signer, url, body) for url, body in made[:-1]] + [claim(signer, made[-1][0], other)]
    site.add("/once", html("".join(f'<img id="i{i}" src="{url}" width="48" height="48" '
                                   f'data-labelcheck-claim="{attr(c)}">' for i, ((url, _), c) in
                                   enumerate(zip(made, claims)))))
    before = browser.worker.evaluate("self.labelcheck.background.stats")
    page.goto(f"{site.base}/once")
    badges = wait_badges(page, len(names))
    states = {b["media"]: b["state"] for b in badges}
    assert states == {**{f"i{i}": "verified" for i in range(len(names) - 1)}, f"i{len(names) - 1}": "mismatch"}
    page.wait_for_timeout(500)
    assert [site.hits.get(f"/m/{n}", 0) for n in names] == [1] * len(names), "an image was downloaded twice"
    after = browser.worker.evaluate("self.labelcheck.background.stats")
    assert after["pageHashed"] - before["pageHashed"] == len(names)
    assert after["hashed"] == before["hashed"]  # the worker fetched nothing itself


def test_opted_in_the_server_reads_labelled_images_itself(page, browser, site, signer, server):
    url, body = image(site, "optin-labelled.png", 71, 48, 48)
    site.add("/optin", html(f'<img id="subject" src="{url}" width="48" height="48" '
                            f'data-labelcheck-claim="{attr(claim(signer, url, body))}">'))
    browser.configure(server, check_unlabelled=True)
    try:
        before = browser.worker.evaluate("self.labelcheck.background.stats.pageHashed")
        page.goto(f"{site.base}/optin")
        assert by_state(wait_badges(page, 1)) == {"subject": "verified"}
        # No hash from the page: the server fetched the file to read its labels.
        assert browser.worker.evaluate("self.labelcheck.background.stats.pageHashed") == before
        assert site.hits["/m/optin-labelled.png"] == 2
    finally:
        browser.configure(server)


def by_state(badges: list[dict]) -> dict:
    return {b["media"]: b["state"] for b in badges}


def test_lazy_srcset_is_checked_against_the_candidate_shown(page, site, signer):
    small, _ = image(site, "ss-small.png", 21, 120, 80)
    large, large_body = image(site, "ss-large.png", 22, 800, 533)
    envelope = claim(signer, large, large_body)
    site.add("/lazy-srcset", html(
        f'{SPACER}<img id="subject" loading="lazy" src="{small}" srcset="{small} 120w, {large} 800w" sizes="800px">'
        + claim_script(envelope)))
    page.goto(f"{site.base}/lazy-srcset")
    page.wait_for_timeout(1500)  # scanned while nothing is chosen: no verdict about the wrong bytes
    assert page.evaluate(BADGE_BOX, "subject") is None
    page.evaluate("document.getElementById('subject').scrollIntoView()")
    box = badge_on(page, "subject")
    assert (box["status"], box["state"]) == ("verified", "verified")
    assert page.evaluate("document.getElementById('subject').currentSrc") == large


def test_picture_is_checked_against_the_source_on_screen(page, site, signer):
    fallback, fallback_body = image(site, "pic-fallback.png", 31)
    shown, shown_body = image(site, "pic-shown.png", 32)
    other_fb, other_fb_body = image(site, "pic2-fallback.png", 33)
    other_shown, _ = image(site, "pic2-shown.png", 34)
    site.add("/picture", html(
        f'<picture><source srcset="{shown}" media="(min-width: 1px)"><img id="right" src="{fallback}"></picture>'
        f'<picture><source srcset="{other_shown}" media="(min-width: 1px)"><img id="wrong" src="{other_fb}"></picture>'
        + claim_script([claim(signer, shown, shown_body), claim(signer, other_fb, other_fb_body)])))
    page.goto(f"{site.base}/picture")
    box = badge_on(page, "right")
    assert box["status"] == "verified"
    page.wait_for_timeout(1000)
    assert page.evaluate(BADGE_BOX, "wrong") is None, "a claim for a fallback not on screen speaks for it"
    page.click("labelcheck-badge")
    text = page.wait_for_selector("labelcheck-details").get_attribute("data-text")
    assert shown in text and fallback not in text


def test_unlabelled_media_the_server_cannot_fetch_is_not_a_label(page, browser, site, server):
    url, _ = image(site, "hotlinked.png", 41)
    site.browser_only.add("/m/hotlinked.png")
    site.add("/hotlinked", html(f'<img id="subject" src="{url}">'))
    browser.configure(server, check_unlabelled=True)
    try:
        page.goto(f"{site.base}/hotlinked")
        page.wait_for_timeout(3000)
        assert page.locator("labelcheck-badge").count() == 0
        assert browser.toolbar_text(browser.tab_id(page)) == ""
    finally:
        browser.configure(server)


def test_conflict_and_c2pa_reach_the_badge(page, browser, server, artifacts_dir):
    browser.configure(server, check_unlabelled=True)
    try:
        page.goto(f"{server}/demo/conflict")
        [badge] = wait_badges(page, 1)
        host = page.locator("labelcheck-badge")
        assert host.get_attribute("conflict") is not None
        assert "sources disagree" in host.get_attribute("aria-label")
        page.screenshot(path=str(artifacts_dir / "extension-mark-conflict-en.png"))
        page.goto(f"{server}/demo/c2pa")
        [badge] = wait_badges(page, 1)
        assert badge["state"] == "signed" and "unsigned" not in badge["label"]
        assert "C2PA" in badge["label"]
    finally:
        browser.configure(server)


def test_open_shadow_roots_and_background_images(page, site, signer):
    url, body = image(site, "in-shadow.png", 51)
    bg, bg_body = image(site, "hero.png", 52)
    script = f"""<script>
      customElements.define('x-card', class extends HTMLElement {{
        connectedCallback() {{
          const root = this.attachShadow({{mode: 'open'}});
          root.innerHTML = '<figure><img id="shadowed" src="{url}" data-labelcheck-claim="{attr(claim(signer, url, body))}"></figure>';
        }}
      }});
    </script>"""
    site.add("/components", html(
        f'<x-card></x-card><div id="hero" style="width:240px;height:160px;background-image:url({bg})" '
        f'data-labelcheck-claim="{attr(claim(signer, bg, bg_body))}"></div>', head=script))
    page.goto(f"{site.base}/components")
    hero = badge_on(page, "hero")
    assert hero["status"] == "verified" and on_corner(hero)
    page.wait_for_function("""() => { const host = document.querySelector('x-card');
        const b = host.shadowRoot.querySelector('labelcheck-badge');
        return b && b.getAttribute('status') === 'verified'; }""", timeout=20000)
    # A click on the badge in the component opens the details, in the component.
    page.locator("x-card labelcheck-badge").click()
    page.wait_for_function("() => !!document.querySelector('x-card').shadowRoot.querySelector('labelcheck-details')",
                           timeout=5000)


# --- badges that fit -----------------------------------------------------------


def test_small_media_gets_a_compact_mark_and_links_keep_their_clicks(page, site, signer, artifacts_dir):
    icons = []
    for i in range(4):
        url, body = image(site, f"icon-{i}.png", 60 + i, 16, 16)
        icons.append(f'<li><a href="#" onclick="window.clicked=(window.clicked||0)+1; return false" id="link{i}">'
                     f'<img id="icon{i}" src="{url}" width="16" height="16" '
                     f'data-labelcheck-claim="{attr(claim(signer, url, body))}"> Menu entry {i}</a></li>')
    grid = []
    for i in range(6):
        url, body = image(site, f"thumb-{i}.png", 70 + i, 48, 48)
        grid.append(f'<img id="thumb{i}" src="{url}" width="48" height="48" style="margin:2px" '
                    f'data-labelcheck-claim="{attr(claim(signer, url, body))}">')
    site.add("/small", html(f'<ul style="list-style:none">{"".join(icons)}</ul><div>{"".join(grid)}</div>'))
    page.goto(f"{site.base}/small")
    wait_badges(page, 10)
    for i in range(4):
        box = wait_shown(page, f"icon{i}")
        assert box["compact"] and box["badge"][2] <= 22 and box["badge"][3] <= 22
    thumbs = [wait_shown(page, f"thumb{i}") for i in range(6)]
    for a, b in zip(thumbs, thumbs[1:]):  # neighbours' marks never overlap
        assert a["badge"][0] + a["badge"][2] <= b["badge"][0] + 0.5
    page.screenshot(path=str(artifacts_dir / "extension-mark-compact-en.png"))
    # The link text beside the mark keeps its click; the mark itself opens the details.
    page.click("#link0", position={"x": 60, "y": 8})
    assert page.evaluate("window.clicked") == 1
    assert page.locator("labelcheck-details").count() == 0
    page.locator("labelcheck-badge").first.click()
    panel = page.wait_for_selector("labelcheck-details")
    assert "Menu entry" not in panel.get_attribute("data-text")
    assert page.evaluate("window.clicked") == 1
    # Hover shows the full wording; the mark grows only while hovered.
    page.keyboard.press("Escape")
    page.locator("labelcheck-badge").first.focus()
    assert page.locator("labelcheck-badge").first.bounding_box()["width"] > 60


FAILURES = ("tampered", "other-bytes", "unknown-producer", "revoked-producer")


def failure_looks(page, server, artifacts_dir, lang: str) -> dict:
    looks = {}
    for case in FAILURES:
        page.goto(f"{server}/demo/{case}")
        [badge] = wait_badges(page, 1)
        looks[case] = (badge["state"], page.evaluate("""() => { const s = getComputedStyle(document.querySelector('labelcheck-badge'));
            return [s.borderTopStyle, s.borderTopLeftRadius, s.backgroundImage].join('|'); }"""))
        page.screenshot(path=str(artifacts_dir / f"extension-failure-{case}-{lang}.png"))
    return looks


def test_the_four_failures_tell_apart_at_a_glance(page, server, artifacts_dir):
    looks = failure_looks(page, server, artifacts_dir, "en")
    assert len({state for state, _ in looks.values()}) == 4
    assert len({shape for _, shape in looks.values()}) == 4, looks
    page.goto(f"{server}/demo/verified")
    [badge] = wait_badges(page, 1)
    assert badge["label"] == "AI-generated · label verified"


# --- Chinese wording and placement ----------------------------------------------


def test_chinese_badges_and_lazy_image_sized_by_css_width(playwright_instance, work, server, site, signer,
                                                         artifacts_dir):
    url, body = image(site, "zh-lazy.png", 81)
    site.slow["/m/zh-lazy.png"] = 0.5
    site.add("/zh-lazy", html(
        f'{SPACER}<p>文字 <img id="subject" loading="lazy" style="width: 300px" src="{url}" '
        f'data-labelcheck-claim="{attr(claim(signer, url, body))}"> 文字</p>'))
    zh = Browser(playwright_instance, work, lang="zh-CN")
    try:
        zh.configure(server)
        page = zh.context.new_page()
        page.goto(f"{server}/demo/page-meta")
        handle = page.wait_for_selector("labelcheck-badge[data-scope=page]:not([status=unchecked])", timeout=30000)
        label = handle.get_attribute("data-label")
        assert label.startswith("本页面：") and ": " not in label
        page.goto(f"{server}/demo/verified")
        [badge] = wait_badges(page, 1)
        assert badge["label"] == "人工智能生成·标识已验证"
        failure_looks(page, server, artifacts_dir, "zh")
        page.goto(f"{site.base}/zh-lazy")
        page.evaluate("document.getElementById('subject').scrollIntoView()")
        box = wait_shown(page, "subject")
        assert box["media"][2] == 300 and on_corner(box)
        if "/small" in site.routes:  # made by the compact-mark test above
            page.goto(f"{site.base}/small")
            wait_badges(page, 10)
            page.screenshot(path=str(artifacts_dir / "extension-mark-compact-zh.png"))
        zh.configure(server, check_unlabelled=True)
        page.goto(f"{server}/demo/conflict")
        wait_badges(page, 1)
        assert page.locator("labelcheck-badge").get_attribute("conflict") is not None
        page.screenshot(path=str(artifacts_dir / "extension-mark-conflict-zh.png"))
    finally:
        zh.close()
