"""The demo pages under ``/demo/``: one labelled case per page, each with
the verdict the extension should show, and the media they load."""

from __future__ import annotations

import html
import json
from typing import Callable

from flask import Blueprint, Response, current_app, request

from labelcheck.demo.claims import Demo
from labelcheck.demo.markup import CLAIM_TYPE, attr, claim_script, figure, img, media_url, page, script_json
from labelcheck.demo.media import MANY, gb_label
from labelcheck.pipeline.errors import NotFound

EXTENSION_KEY = "labelcheck-demo"

bp = Blueprint("demo", __name__, url_prefix="/demo")


def _demo() -> Demo:
    return current_app.extensions[EXTENSION_KEY]


def _claims() -> dict[str, dict]:
    return _demo().claims(request.host_url)


# Each case: (title, what the extension should show, page function, media it needs).
CASES: dict[str, tuple[str, str, Callable[[], Response], str | None]] = {}


def case(name: str, title: str, expect: str, *, needs: str | None = None):
    def wrap(fn):
        CASES[name] = (title, expect, fn, needs)
        return fn

    return wrap


@case("verified", "A verified AI-generated image", "verified / confirmed")
def _verified() -> Response:
    c = _claims()
    return page("A verified AI-generated image", figure(
        img("verified.png", claim=c["verified.png"], id="subject", alt="generated landscape"),
        "Claim in data-labelcheck-claim, signed by the registered demo producer.", "verified confirmed"))


@case("tampered", "A claim whose signature was tampered with", "invalid (tampered)")
def _tampered() -> Response:
    c = _claims()
    return page("A tampered claim", figure(
        img("tampered.png", claim=c["tampered.png"], id="subject"),
        "One bit of the producer's signature was flipped.", "invalid tampered"))


@case("other-bytes", "A valid claim placed on other bytes", "invalid (mismatch)")
def _other_bytes() -> Response:
    c = _claims()
    body = figure(img("shown.png", id="subject"),
                  "The claim script names this image's URL, but was signed over other bytes.", "invalid mismatch")
    return page("A claim for other bytes", claim_script(c["shown.png"]) + body)


@case("unknown-producer", "A claim by an unknown producer", "invalid (unknown producer)")
def _unknown() -> Response:
    c = _claims()
    body = figure(img("unknown.png", id="subject"),
                  "Matched by data-labelcheck-for; the key is in no registry.", "invalid unknown")
    return page("An unknown producer", claim_script(c["unknown.png"], data_labelcheck_for="subject") + body)


@case("revoked-producer", "A claim by a revoked producer", "invalid (revoked)")
def _revoked() -> Response:
    c = _claims()
    pic = (f'<picture data-labelcheck-claim="{attr(c["revoked.png"])}">'
           f'<source srcset="{media_url("revoked.png")}" type="image/png">'
           f'<img id="subject" src="{media_url("revoked.png")}" width="240" height="160" alt=""></picture>')
    return page("A revoked producer", figure(
        pic, "A <picture> whose producer key was revoked in the registry (on the ledger).", "invalid revoked"))


@case("page-meta", "A page-level AIGC meta tag", "declared / possible (page badge)")
def _page_meta() -> Response:
    meta = json.dumps({"AIGC": gb_label("demo-page-1", "2")})
    head = f"<meta name=\"AIGC\" content='{html.escape(meta, quote=False)}'>"
    body = "<p>This article declares itself possibly AI-generated with a GB 45438 meta tag.</p>"
    body += figure(img("meta.png", id="subject"), "An unlabelled image on a labelled page.", "none")
    return page("A page-level AIGC meta tag", body, head)


@case("dynamic", "Media inserted by script after load", "verified x3 (confirmed, possible, suspected)")
def _dynamic() -> Response:
    c = _claims()
    late_claim = script_json(c["dynamic-2.png"])
    body = f"""
<p>Three images arrive after load: one added with its claim attribute, one whose
claim script and lazy image are added later, one whose <code>src</code> changes.</p>
<div id="stage">{img("placeholder.png", id="changing")}</div>
{claim_script(c["dynamic-3.png"])}
<script>
const stage = document.getElementById("stage");
setTimeout(() => {{
  const im = new Image(240, 160);
  im.id = "added";
  im.setAttribute("data-labelcheck-claim", {json.dumps(attr(c["dynamic-1.png"]))});
  im.src = {json.dumps(media_url("dynamic-1.png"))};
  stage.append(im);
}}, 300);
setTimeout(() => {{
  const s = document.createElement("script");
  s.type = {json.dumps(CLAIM_TYPE)};
  s.textContent = {json.dumps(late_claim)};
  document.body.append(s);
  const im = new Image(240, 160);
  im.id = "lazy";
  im.loading = "lazy";
  im.src = {json.dumps(media_url("dynamic-2.png"))};
  stage.append(im);
}}, 600);
setTimeout(() => {{
  document.getElementById("changing").src = {json.dumps(media_url("dynamic-3.png"))};
  document.body.dataset.dynamicDone = "1";
}}, 900);
</script>"""
    return page("Media inserted by script", body)


@case("lazy-swap", "Images swapped in as lazy-loading scripts do", "verified x2 (confirmed, possible)")
def _lazy_swap() -> Response:
    c = _claims()
    placeholder = media_url("placeholder.png")
    body = f"""
<p>Two images load as lazy-loading scripts and carousels load them: a placeholder
first, then, once the page has loaded, the real image from <code>data-src</code>
(one) or <code>data-srcset</code> (the other). Claim scripts name the real images.</p>
<div id="stage">
<img id="swap-src" src="{placeholder}" data-src="{media_url("swap-1.png")}" width="240" height="160" alt="">
<img id="swap-srcset" src="{placeholder}" data-srcset="{media_url("swap-2.png")} 1x" width="240" height="160" alt="">
</div>
{claim_script(c["swap-1.png"])}
{claim_script(c["swap-2.png"])}
<script>
addEventListener("load", () => setTimeout(() => {{
  for (const im of document.querySelectorAll("img[data-src]")) im.src = im.dataset.src;
  for (const im of document.querySelectorAll("img[data-srcset]")) im.srcset = im.dataset.srcset;
}}, 300));
</script>"""
    return page("Images swapped in by a lazy-loading script", body)


@case("video", "A video with a claim", "verified / confirmed")
def _video() -> Response:
    c = _claims()
    body = figure(
        f'<video id="subject" width="320" height="180" controls preload="metadata" poster="{media_url("poster.png")}">'
        f'<source src="{media_url("clip.mp4")}" type="video/mp4"></video>',
        "A claim script matched to the video's <source> by content.url.", "verified confirmed")
    return page("A video with a claim", claim_script([c["clip.mp4"]]) + body)


@case("mixed", "One labelled image among unlabelled ones", "verified x1; the rest unbadged")
def _mixed() -> Response:
    c = _claims()
    body = figure(img("verified.png", claim=c["verified.png"], id="subject"), "Labelled.", "verified confirmed")
    for name in ("plain-1.png", "plain-2.png", "plain-3.png"):
        body += figure(img(name), "No label: its URL never leaves the browser unless you opt in.", "none")
    if "plain-labelled.png" in _demo().media:
        body += figure(img("plain-labelled.png", id="embedded"),
                       "No claim on the page, a GB 45438 label in the file: seen only when unlabelled "
                       "media is checked too.", "declared suspected (opt-in)")
    return page("Labelled and unlabelled media", body)


@case("many", f"A page with {MANY:,} labelled images", "verified x1000")
def _many() -> Response:
    c = _claims()
    n = request.args.get("n", type=int, default=MANY)  # ?n= shows fewer (benchmark smoke runs)
    n = max(0, min(MANY, n))
    tiles = "".join(
        f'<img src="{media_url(f"many/{i}.png")}" width="24" height="24" alt="" '
        f'data-labelcheck-claim="{attr(c[f"many/{i}.png"])}">' for i in range(n))
    return page(f"{n:,} labelled images", f'<div class="grid">{tiles}</div>')


@case("gb45438-png", "A PNG with a GB 45438 implicit label", "declared / confirmed (opt-in)", needs="gb45438.png")
def _gb_png() -> Response:
    return page("GB 45438 label in a PNG", figure(
        img("gb45438.png", id="subject"),
        "XMP TC260:AIGC inside the PNG (iTXt). No claim on the page: checked only when "
        "\"check unlabelled media too\" is on.", "declared confirmed"))


@case("gb45438-jpeg", "A JPEG with a GB 45438 implicit label", "declared / possible (opt-in)", needs="gb45438.jpg")
def _gb_jpeg() -> Response:
    return page("GB 45438 label in a JPEG", figure(
        f'<img id="subject" src="{media_url("gb45438.jpg")}" width="192" height="128" alt="">',
        "XMP TC260:AIGC inside the JPEG (APP1). Checked only when unlabelled media is checked too.",
        "declared possible"))


@case("c2pa", "A C2PA-signed image", "declared (valid, untrusted) or verified with --c2pa-anchors (opt-in)",
      needs="c2pa.jpg")
def _c2pa() -> Response:
    return page("A C2PA-signed image", figure(
        f'<img id="subject" src="{media_url("c2pa.jpg")}" width="192" height="128" alt="">',
        "A C2PA manifest (c2pa.created, trainedAlgorithmicMedia) signed by a demo certificate. The server trusts "
        "it only with --c2pa-anchors <data dir>/demo/c2pa-anchors.pem. Checked when unlabelled media is checked too.",
        "declared or verified"))


@case("conflict", "Conflicting signals: a signed claim and a different embedded label", "signals_conflict",
      needs="conflict.png")
def _conflict() -> Response:
    c = _claims()
    return page("Conflicting signals", figure(
        img("conflict.png", claim=c["conflict.png"], id="subject"),
        "The signed claim says Label 1 (AI-generated); the file's XMP says Label 3 (suspected). "
        "The server reads the file when it fetches it (unlabelled checking on).", "conflict"))


@bp.get("/")
def index() -> Response:
    have = _demo().media
    rows = "".join(
        f'<li><a href="/demo/{name}">{html.escape(title)}</a> <small>({html.escape(expect)})</small></li>'
        for name, (title, expect, _fn, needs) in CASES.items() if needs is None or needs in have)
    body = (f"<p>Each page holds one case of docs/protocol.md §2. Load the extension from <code>extension/</code> and point "
            f"its server at <code>{html.escape(request.host_url.rstrip('/'))}</code>.</p><ul>{rows}</ul>")
    return page("labelcheck demo", body)


@bp.get("/<name>")
def show(name: str) -> Response:
    entry = CASES.get(name)
    if entry is None or (entry[3] is not None and entry[3] not in _demo().media):
        raise NotFound(f"no demo page named {name!r}")
    return entry[2]()


@bp.get("/media/<path:name>")
def media(name: str) -> Response:
    found = _demo().media.get(name)
    if found is None:
        raise NotFound(f"no demo media named {name!r}")
    data, media_type = found
    response = Response(data, mimetype=media_type)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
