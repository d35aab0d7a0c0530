"""The image-heavy page measured side by side: a page of N labelled 48 px
same-origin images (claims signed with the demo producer's key), served by
a small threaded HTTP server on 127.0.0.1 that counts every image GET,
loaded in Debian's chromium with the extension and in one without it, in
the same run. Each load uses its own image URLs (a query per load), so
every load starts with a cold HTTP cache and the counts are per load.

Reported per load: the load event (navigation start to loadEventStart),
the image GETs the page's server saw, and with the extension the time from
the load event until every image had its badge with a verdict.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import statistics
import threading
from pathlib import Path
from typing import Iterator

from labelcheck.claims import build_payload, sign_envelope
from labelcheck.demo.markup import attr
from labelcheck.demo.media import picture
from labelcheck.ledger import keyfile

import test_extension_e2e as harness

SIZE = 48
LOAD_EVENT_JS = "() => performance.getEntriesByType('navigation')[0].loadEventStart"
SETTLED_JS = "() => Math.max(0, ...performance.getEntriesByName('labelcheck:settled').map((e) => e.startTime))"


class Site:
    """The page and its images; counts image GETs (any status)."""

    def __init__(self, signer, images: int) -> None:
        self.images = images
        self.bodies = [picture(i, SIZE, SIZE) for i in range(images)]
        self.gets = 0
        self.paths: dict[str, int] = {}  # image path with query -> GETs
        self.lock = threading.Lock()
        self.base = ""
        self.signer = signer
        self.claims: list[str] = []

    def sign(self) -> None:
        for i, body in enumerate(self.bodies):
            url = f"{self.base}/m/{i}.png"
            payload = build_payload(hashlib.sha256(body).hexdigest(), "image/png", "1", issuer=self.signer, url=url,
                                    filing="DEMO-0000", synthesis=["other_generation"], produce_id=f"heavy-{i}")
            self.claims.append(attr(sign_envelope(payload, self.signer)))

    def page(self, load: str) -> bytes:
        tags = "".join(f'<img src="/m/{i}.png?l={load}" width="{SIZE}" height="{SIZE}" alt="" '
                       f'data-labelcheck-claim="{c}">' for i, c in enumerate(self.claims))
        return f"<!doctype html><html><head><meta charset=utf-8></head><body>{tags}</body></html>".encode()

    def handler(self):
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real server

            def do_GET(self):  # noqa: N802 (http.server's name)
                path, _, query = self.path.partition("?")
                if path == "/page":
                    body, ctype = site.page(query.removeprefix("l=")), "text/html; charset=utf-8"
                elif path.startswith("/m/") and path.endswith(".png"):
                    with site.lock:
                        site.gets += 1
                        site.paths[self.path] = site.paths.get(self.path, 0) + 1
                    body, ctype = site.bodies[int(path[3:-4])], "image/png"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "max-age=600")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler


@contextlib.contextmanager
def serve(site: Site) -> Iterator[Site]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", harness.free_port()), site.handler())
    httpd.daemon_threads = True
    site.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        site.sign()
        yield site
    finally:
        httpd.shutdown()
        httpd.server_close()


def load(context, site: Site, name: str, *, badged: bool) -> dict:
    """One load of the page in `context`; its figures."""
    before = site.gets
    page = context.new_page()
    page.goto(f"{site.base}/page?l={name}", wait_until="load", timeout=300_000)
    out = {"load_ms": page.evaluate(LOAD_EVENT_JS)}
    if badged:
        harness.wait_badges(page, site.images, timeout=300)
        out["badged_after_load_ms"] = max(0.0, page.evaluate(SETTLED_JS) - out["load_ms"])
    page.wait_for_timeout(300)  # any late fetch of ours would arrive by now
    out["gets"] = site.gets - before
    out["twice"] = sum(1 for p, n in site.paths.items() if p.endswith(f"?l={name}") and n > 1)
    page.close()
    return out


def side_by_side(playwright, work: Path, base: str, images: int, runs: int) -> dict:
    """Loads with and without the extension, alternating; medians."""
    signer = keyfile.load_signer(work / "data" / "demo-producer.key")
    plain = playwright.chromium.launch(executable_path=harness.CHROMIUM, headless=True,
                                       args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                             "--disable-component-update", "--disable-sync", "--no-first-run"])
    browser = harness.Browser(playwright, work / "heavy")
    try:
        browser.configure(base)
        without_ctx = plain.new_context(viewport={"width": 1100, "height": 800})
        with serve(Site(signer, images)) as site:
            warm = f"{site.base}/page?l=warm"
            for ctx in (without_ctx, browser.context):  # first-load costs of each browser
                p = ctx.new_page()
                p.goto(warm, timeout=300_000)
                p.close()
            with_runs, without_runs = [], []
            for r in range(runs):
                without_runs.append(load(without_ctx, site, f"off{r}", badged=False))
                with_runs.append(load(browser.context, site, f"on{r}", badged=True))
    finally:
        browser.close()
        plain.close()

    def med(rs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in rs)

    on, off = med(with_runs, "load_ms"), med(without_runs, "load_ms")
    return {"images": images, "load_with_ms": on, "load_without_ms": off, "load_ratio": on / off,
            "gets_with": max(r["gets"] for r in with_runs), "gets_without": max(r["gets"] for r in without_runs),
            "fetched_twice_with": max(r["twice"] for r in with_runs),
            "fetched_twice_without": max(r["twice"] for r in without_runs),
            "badged_after_load_ms": med(with_runs, "badged_after_load_ms")}


def report(h: dict) -> None:
    n = h["images"]
    print(f"\nside by side: a page of {n} labelled {SIZE} px same-origin images, medians")
    print(f"{'load event with the extension (ms)':<40}{h['load_with_ms']:>10.0f}")
    print(f"{'load event without (ms)':<40}{h['load_without_ms']:>10.0f}")
    print(f"{'ratio with / without':<40}{h['load_ratio']:>10.2f}   aim <= 1.2")
    print(f"{'image GETs with the extension (max)':<40}{h['gets_with']:>10d}   aim {n}")
    print(f"{'image GETs without (max)':<40}{h['gets_without']:>10d}")
    print(f"{'  images fetched twice, with / without':<40}{h['fetched_twice_with']:>10d} / {h['fetched_twice_without']}")
    print(f"{'every image badged, ms after load':<40}{h['badged_after_load_ms']:>10.0f}   aim <= 3000")
