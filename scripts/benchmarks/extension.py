"""Benchmark the extension on the demo's 1,000-image page, in Debian's chromium
against a real ``labelcheck serve --demo`` on 127.0.0.1.

Reports the content script's main-thread time to find and badge every image
(the sum of its ``labelcheck:*`` performance measures: scan, render, align,
mutations), the number of POST /v1/verify requests, and the wall time until
the last badge shows. The ceiling, measured in the same run on the same page,
is a page script that walks the images doing the least any finder must do:
read each claim attribute, decode it (atob + JSON.parse) and read currentSrc;
and that walk plus the least a mark costs (one positioned <span> inserted per
image, then one layout).

    scripts/bench extension                 1,000 images, 3 runs
    scripts/bench extension --images 100 --runs 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

import test_extension_e2e as harness  # noqa: E402

BASELINE_JS = """() => {
  const t0 = performance.now();
  let n = 0;
  for (const img of document.querySelectorAll('img')) {
    const v = img.getAttribute('data-labelcheck-claim');
    if (!v) continue;
    const env = JSON.parse(atob(v.replace(/-/g, '+').replace(/_/g, '/')));
    if (env.payloadType && img.currentSrc !== undefined) n++;
  }
  return [performance.now() - t0, n];
}"""

# The least a badge costs: one absolutely positioned element per image,
# inserted before it, then one layout (removed again afterwards).
MARK_JS = """() => {
  const t0 = performance.now();
  const made = [];
  for (const img of document.querySelectorAll('img[data-labelcheck-claim]')) {
    const s = document.createElement('span');
    s.style.cssText = 'position:absolute;background:#5b21b6;color:#fff;font:12px sans-serif';
    s.textContent = 'AI-generated';
    img.before(s);
    made.push(s);
  }
  document.body.offsetHeight;
  const ms = performance.now() - t0;
  for (const s of made) s.remove();
  return ms;
}"""

MEASURES_JS = """() => performance.getEntriesByType('measure')
  .filter((m) => m.name.startsWith('labelcheck:')).map((m) => [m.name, m.duration])"""


def one_run(browser, base: str, images: int) -> dict:
    browser.worker.evaluate("self.labelcheck.background.clearCache()")
    posts_before = browser.worker.evaluate("self.labelcheck.background.stats.posts")
    page = browser.context.new_page()
    t0 = time.monotonic()
    page.goto(f"{base}/demo/many?n={images}")
    harness.wait_badges(page, images, timeout=300)
    wall = time.monotonic() - t0
    page.wait_for_timeout(300)  # let the last align report land
    measures = page.evaluate(MEASURES_JS)
    baseline_ms, walked = min((page.evaluate(BASELINE_JS) for _ in range(5)), key=lambda r: r[0])
    mark_ms = min(page.evaluate(MARK_JS) for _ in range(3))
    posts = browser.worker.evaluate("self.labelcheck.background.stats.posts") - posts_before
    page.close()
    by_kind: dict[str, float] = {}
    for name, ms in measures:
        by_kind[name.split(":", 1)[1]] = by_kind.get(name.split(":", 1)[1], 0.0) + ms
    assert walked == images, f"baseline walked {walked} of {images} images"
    return {"main_ms": sum(by_kind.values()), "by_kind": by_kind, "baseline_ms": max(baseline_ms, 0.1),
            "mark_ms": max(mark_ms + baseline_ms, 0.1),
            "posts": posts, "wall_s": wall}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=1000, help="images on the page (at most 1000)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    why = harness.missing()
    if why:
        print(f"extension benchmark skipped: {why}", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="lc-bench-ext-") as tmp:
        work = Path(tmp)
        with harness.demo_server(work / "data") as base, sync_playwright() as p:
            browser = harness.Browser(p, work)
            try:
                browser.configure(base)
                warm = browser.context.new_page()  # first-load costs of the browser itself
                warm.goto(f"{base}/demo/verified")
                harness.wait_badges(warm, 1)
                warm.close()
                runs = [one_run(browser, base, args.images) for _ in range(args.runs)]
            finally:
                browser.close()

    main_ms = statistics.median(r["main_ms"] for r in runs)
    base_ms = statistics.median(r["baseline_ms"] for r in runs)
    mark_ms = statistics.median(r["mark_ms"] for r in runs)
    posts = max(r["posts"] for r in runs)
    wall = statistics.median(r["wall_s"] for r in runs)
    kinds = sorted({k for r in runs for k in r["by_kind"]})
    print(f"extension on the demo page with {args.images} labelled images, {args.runs} run(s), medians")
    print(f"{'what':<34}{'value':>12}")
    for k in kinds:
        print(f"{'  content script ' + k + ' (ms)':<34}{statistics.median(r['by_kind'].get(k, 0) for r in runs):>12.1f}")
    print(f"{'content script main thread (ms)':<34}{main_ms:>12.1f}   aim < 100")
    print(f"{'ceiling: page walk + decode (ms)':<34}{base_ms:>12.1f}")
    print(f"{'ceiling: walk + plain marks (ms)':<34}{mark_ms:>12.1f}")
    print(f"{'ratio main thread / walk':<34}{main_ms / base_ms:>12.1f}")
    print(f"{'ratio main thread / walk + marks':<34}{main_ms / mark_ms:>12.1f}")
    print(f"{'server requests (max of runs)':<34}{posts:>12d}   aim <= {max(1, -(-args.images // 100))}")
    print(f"{'wall time to last badge (s)':<34}{wall:>12.2f}")
    print(json.dumps({"benchmark": "extension", "images": args.images, "runs": args.runs,
                      "main_thread_ms": round(main_ms, 1), "ceiling_walk_ms": round(base_ms, 2),
                      "ceiling_marks_ms": round(mark_ms, 1), "ratio_to_walk": round(main_ms / base_ms, 1),
                      "ratio_to_marks": round(main_ms / mark_ms, 2), "server_requests": posts,
                      "wall_s": round(wall, 2),
                      "by_kind_ms": {k: round(statistics.median(r["by_kind"].get(k, 0) for r in runs), 1)
                                     for k in kinds}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
