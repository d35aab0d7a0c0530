"""Demo pages for the browser extension: one labelled case per page under
``/demo/``, served when ``labelcheck serve --demo`` is on.

Media is generated at start-up (PNGs with zlib and struct, so nothing but the
standard library is needed at run time). Claims are signed lazily for each
host the pages are requested on, because a claim's ``content.url`` must be
the absolute URL the browser loads (docs/protocol.md §2). Keys:

- the demo producer (``data/demo-producer.key``, registered by the server);
- ``data/demo/unknown-producer.key``: never registered;
- ``data/demo/revoked-producer.key``: registered, then revoked through the
  registry, so both changes are on the ledger.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import struct
import threading
import zlib
from dataclasses import dataclass
from typing import Callable

from flask import Blueprint, Flask, Response, abort, current_app, request

from labelcheck.claims import keys
from labelcheck.claims.core import build_payload, sign_envelope
from labelcheck.claims.trust import Producer
from labelcheck.labels import embed_label
from labelcheck.pipeline.registry import registry_add, registry_lock, registry_revoke
from labelcheck.pipeline.services import Services
from labelcheck.util.times import now_text

EXTENSION_KEY = "labelcheck-demo"
UNKNOWN_PRODUCER = "demo-unknown-producer"
REVOKED_PRODUCER = "demo-revoked-producer"
REVOKED_FILING = "DEMO-REVOKED-0001"
MANY = 1000  # images on the /demo/many page
CLAIM_TYPE = "application/vnd.labelcheck.claim+json"

bp = Blueprint("demo", __name__, url_prefix="/demo")


# --- media ---------------------------------------------------------------


def png_rgb(width: int, height: int, raster: bytes) -> bytes:
    """An 8-bit RGB PNG (ISO/IEC 15948: signature, IHDR, one IDAT, IEND) of
    ``raster`` (``height`` rows of ``width`` RGB triples)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    stride = width * 3
    rows = b"".join(b"\x00" + raster[y * stride:(y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def picture(seed: int, width: int = 240, height: int = 160) -> bytes:
    """A recognisable demo picture: a gradient sky, a sun, hills; ``seed`` varies it."""
    hue = (seed * 47) % 256
    raster = bytearray()
    for y in range(height):  # the sky, one colour per row
        t = y / height
        raster += bytes((int(30 + 60 * t), int(64 + 90 * t), int(150 + hue // 3 + 40 * t) % 256)) * width
    sun_x, sun_y, radius = int(width * (0.25 + (seed % 5) / 10)), int(height * 0.35), int(height * 0.16)
    for y in range(max(0, sun_y - radius), min(height, sun_y + radius + 1)):
        half = int((radius * radius - (y - sun_y) ** 2) ** 0.5)
        x0, x1 = max(0, sun_x - half), min(width, sun_x + half + 1)
        raster[(y * width + x0) * 3:(y * width + x1) * 3] = bytes((250, 204, 21)) * (x1 - x0)
    ground = bytes((22, (101 + hue // 4) % 256, 52))
    for x in range(width):  # hills: each column is ground below its own height
        top = int(height * 0.7 + ((x * 3 + seed * 11) % 40 - 20) / 2)
        for y in range(max(0, top + 1), height):
            raster[(y * width + x) * 3:(y * width + x) * 3 + 3] = ground
    return png_rgb(width, height, bytes(raster))


def tile(i: int) -> bytes:
    """A small distinct tile for the 1,000-image page (its bytes differ by ``i``)."""
    r, g, b = (i * 37) % 256, (i * 91) % 256, (i * 53 + 80) % 256
    light, dark = bytes((r, g, b)) * 6, bytes((255 - r, g, 255 - b)) * 6
    row_a, row_b = (light + dark) * 2, (dark + light) * 2
    raster = bytearray(b"".join((row_a if (y // 6) % 2 else row_b) for y in range(24)))
    raster[0:3] = bytes((i >> 8 & 255, i & 255, 128))  # one corner pixel makes every tile's bytes unique
    return png_rgb(24, 24, bytes(raster))


def video_bytes() -> bytes:
    """Bytes served as video/mp4 (an ftyp box then filler): only hashing
    matters to the checks, not whether a browser can play them."""
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 0x200) + b"isomiso2"
    body = hashlib.sha256(b"labelcheck demo video").digest() * 64
    free = struct.pack(">I", 8 + len(body)) + b"free" + body
    return ftyp + free


# A 96x64 baseline JPEG (made once with Pillow; stored so none is needed here).
JPEG_B64 = (
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1x"
    "eXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAAR"
    "CABAAGADASIAAhEBAxEB/8QAGQABAQEBAQEAAAAAAAAAAAAAAAUDBAYC/8QAKhAAAgICAAQFAwUAAAAAAAAAAAECAwQREiExUQUGI0GBkaHR"
    "EzJx4fH/xAAZAQADAQEBAAAAAAAAAAAAAAAABAYBAwX/xAAhEQACAgICAgMBAAAAAAAAAAABAwACBBEhMRNREjJBM//aAAwDAQACEQMRAD8A"
    "lgAfnjQAAhANKabL7FCqEpyfskU6fALpR3dbGt6WklxfUXdkqT/S2p1WljPoNyQCzZ5fsUfSyIye+ko8P5JmRjXY0+G6uUG+m+j/AIZicpLj"
    "pdtzWIYvmwmIAGZxgABCAAEINKKp33Qqgtym9IzK/l6lSyLbXrcIpJa7+/2+4vku8KrM9TqlfkYKe5XwsOvCp4Ic5P8AdJ9ZM6QCMve17G1j"
    "smUlaio+NeoMcnHryqXVbHcX9U+6NgZWxqdjuaQCNGePzMaeJkypm965qWtbXcwL3mKlOqq7kmpcD5dd8+vx9yCWOG8vSLnv9k5kq8TDUdQA"
    "BucIAAQgs+XLErb6+e5RUl8f6RjbFvljZNd0ebg967r3QtlJLk2WP2dkM8bBYz2IMcbIryqVbVLcX9U+zNiMtU1Oj3KQEEbEAHxbZCmuVlkl"
    "GEVttmAEnQgTrkyX5isSxqq+e5T4l8L+zz51eIZbzMqVumo61FP2RyljhIKEVpbuTuS0NabDqAAOReAAEIAAQm+Ll3YlnFTLW+qfNMr0+P1u"
    "Pr0yT0ucHvffr0IIFH4aXndxz7ndWSxXFTxPQWeP0qPpU2Se+kmo/kk5mffmNfqyXCntQitJHKDEYKEH5UrzNbktaNWPEAAci8AAIT//2Q=="
)


def gb_label(produce_id: str, label: str = "1") -> dict:
    return {"Label": label, "ContentProducer": "labelcheck-demo", "ProduceID": produce_id}


def build_media() -> dict[str, tuple[bytes, str]]:
    """Every demo file by name: (bytes, media type)."""
    media = {
        "verified.png": picture(1),
        "tampered.png": picture(2),
        "shown.png": picture(3),
        "other.png": picture(4),  # the bytes the mismatched claim is really for
        "unknown.png": picture(5),
        "revoked.png": picture(6),
        "revoked.webp.png": picture(7),
        "meta.png": picture(8),
        "dynamic-1.png": picture(9),
        "dynamic-2.png": picture(10),
        "dynamic-3.png": picture(11),
        "placeholder.png": picture(12),
        "poster.png": picture(13, 320, 180),
        "plain-1.png": picture(14),
        "plain-2.png": picture(15),
        "plain-3.png": picture(16),
    }
    out = {name: (data, "image/png") for name, data in media.items()}
    out["clip.mp4"] = (video_bytes(), "video/mp4")
    for i in range(MANY):
        out[f"many/{i}.png"] = (tile(i), "image/png")
    try:  # the GB 45438 implicit-label pages need server.labels
        from labelcheck.labels import embed_label
    except ImportError:
        return out
    jpeg = base64.b64decode(JPEG_B64)
    out["gb45438.png"] = (embed_label(picture(20), gb_label("demo-png-1"), "image/png"), "image/png")
    out["gb45438.jpg"] = (embed_label(jpeg, gb_label("demo-jpeg-1", "2"), "image/jpeg"), "image/jpeg")
    out["conflict.png"] = (embed_label(picture(21), gb_label("demo-conflict-1", "3"), "image/png"), "image/png")
    out["plain-labelled.png"] = (embed_label(picture(22), gb_label("demo-mixed-1", "3"), "image/png"), "image/png")
    return out


# --- a C2PA-signed image ------------------------------------------------------


def c2pa_image(cfg, jpeg: bytes) -> bytes | None:
    """``jpeg`` with a C2PA manifest (c2pa.created, IPTC trainedAlgorithmicMedia)
    signed by a demo certificate chain; made once and kept in data/demo/ so
    every worker serves the same bytes. The chain's root is written beside it
    (``c2pa-anchors.pem``) for ``--c2pa-anchors``. None when c2pa-python or
    cryptography is missing."""
    out = cfg.data_dir / "demo" / "c2pa.jpg"
    with registry_lock(cfg.data_dir):
        if out.exists():
            return out.read_bytes()
        try:
            signed, root_pem = _c2pa_sign(jpeg)
        except ImportError:
            return None
        out.parent.mkdir(parents=True, exist_ok=True)
        (out.parent / "c2pa-anchors.pem").write_bytes(root_pem)
        tmp = out.with_suffix(".tmp")
        tmp.write_bytes(signed)
        tmp.replace(out)
        return signed


def _c2pa_sign(jpeg: bytes) -> tuple[bytes, bytes]:
    """Sign with a fresh root and ES256 end-entity certificate fit for C2PA
    (C2PA 2.1 §14.5.1: v3, not a CA, digitalSignature, an EKU from its list)."""
    import datetime
    import io

    import c2pa
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "labelcheck demo")])

    def usage(**on: bool) -> x509.KeyUsage:
        names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                 "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
        return x509.KeyUsage(**{k: on.get(k, False) for k in names})

    now = datetime.datetime.now(datetime.timezone.utc)
    valid = {"not_valid_before": now - datetime.timedelta(days=1), "not_valid_after": now + datetime.timedelta(days=3650)}
    root_key, ee_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = (x509.CertificateBuilder(subject_name=name("labelcheck demo root"), issuer_name=name("labelcheck demo root"),
                                    public_key=root_key.public_key(), serial_number=x509.random_serial_number(), **valid)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    ee = (x509.CertificateBuilder(subject_name=name("labelcheck demo signer"), issuer_name=root.subject,
                                  public_key=ee_key.public_key(), serial_number=x509.random_serial_number(), **valid)
          .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
          .add_extension(usage(digital_signature=True), critical=True)
          .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ee_key.public_key()), critical=False)
          .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
          .sign(root_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    chain = ee.public_bytes(pem) + root.public_bytes(pem)
    key = ee_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    manifest = {
        "claim_generator_info": [{"name": "labelcheck-demo", "version": "1"}],
        "title": "labelcheck demo",
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [{
            "action": "c2pa.created",
            "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"}]}}],
    }
    settings = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
                "builder": {"thumbnail": {"enabled": False}}}
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", chain, key, None))
    with c2pa.Builder(manifest, context=c2pa.Context.from_dict(settings)) as builder:
        out = io.BytesIO()
        builder.sign(signer, "image/jpeg", io.BytesIO(jpeg), out)
    return out.getvalue(), root.public_bytes(pem)


# --- keys and the registry -------------------------------------------------


def _key(cfg, name: str):
    """A demo key kept in ``data/demo/NAME.key``, created once for all workers."""
    path = cfg.data_dir / "demo" / f"{name}.key"
    with registry_lock(cfg.data_dir):
        if not path.exists():
            keys.write_key_pair(keys.generate_key(name), path.parent)
    return keys.load_signer(path)


def ensure_revoked_producer(svc, signer) -> None:
    """Register ``signer`` and revoke it through the registry (two ledger
    entries), unless an earlier start did so already."""
    producer = Producer(name="labelcheck demo (revoked)", vkey=signer.vkey, filing=REVOKED_FILING,
                        roles=("producer",))

    def add(reg):
        return None if reg.lookup(signer.key_id) is not None else registry_add(reg, producer, now_text())

    def revoke(reg):
        found = reg.lookup(signer.key_id)
        if found is None or found.revoked_at is not None:
            return None
        now = now_text()
        return registry_revoke(reg, signer.key_id, now, now)

    svc.change_registry(add)
    svc.change_registry(revoke)


@dataclass
class Demo:
    media: dict[str, tuple[bytes, str]]
    producer: object  # note.Signer of each kind
    unknown: object
    revoked: object

    def __post_init__(self) -> None:
        self._claims: dict[str, dict[str, dict]] = {}
        self._lock = threading.Lock()

    def sha(self, name: str) -> str:
        return hashlib.sha256(self.media[name][0]).hexdigest()

    def claims(self, base: str) -> dict[str, dict]:
        """Every demo claim for pages served from ``base`` (scheme://host/)."""
        with self._lock:
            if base not in self._claims:
                if len(self._claims) > 16:  # a handful of host names at most
                    self._claims.clear()
                self._claims[base] = self._sign_all(base)
            return self._claims[base]

    def _sign_all(self, base: str) -> dict[str, dict]:
        url = lambda name: f"{base}demo/media/{name}"  # noqa: E731

        def claim(signer, name, *, sha_of=None, label="1", filing="DEMO-0000", **extra):
            sha = self.sha(sha_of or name)
            payload = build_payload(sha, self.media[sha_of or name][1], label, issuer=signer, url=url(name),
                                    filing=filing, synthesis=["other_generation"],
                                    produce_id=f"demo-{name.replace('/', '-')}", **extra)
            return sign_envelope(payload, signer)

        out = {
            "verified.png": claim(self.producer, "verified.png"),
            "tampered.png": _tamper(claim(self.producer, "tampered.png")),
            "shown.png": claim(self.producer, "shown.png", sha_of="other.png"),
            "unknown.png": claim(self.unknown, "unknown.png", filing="DEMO-UNKNOWN"),
            "revoked.png": claim(self.revoked, "revoked.png", filing=REVOKED_FILING),
            "dynamic-1.png": claim(self.producer, "dynamic-1.png"),
            "dynamic-2.png": claim(self.producer, "dynamic-2.png", label="2"),
            "dynamic-3.png": claim(self.producer, "dynamic-3.png", label="3"),
            "clip.mp4": claim(self.producer, "clip.mp4"),
        }
        if "conflict.png" in self.media:
            out["conflict.png"] = claim(self.producer, "conflict.png", label="1")
        for i in range(MANY):
            out[f"many/{i}.png"] = claim(self.producer, f"many/{i}.png")
        return out


def _tamper(envelope: dict) -> dict:
    """The envelope with one bit of its signature flipped."""
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[10] ^= 0x01
    tampered = json.loads(json.dumps(envelope))
    tampered["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode("ascii")
    return tampered


# --- pages -----------------------------------------------------------------


def attr(envelope: dict) -> str:
    """The data-labelcheck-claim value: base64url of the envelope JSON, unpadded."""
    return base64.urlsafe_b64encode(json.dumps(envelope, separators=(",", ":")).encode()).decode().rstrip("=")


def script_json(value) -> str:
    """JSON safe inside a <script> element (no "</" can end it early)."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def claim_script(value, **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{html.escape(v)}"' for k, v in attrs.items())
    return f'<script type="{CLAIM_TYPE}"{extra}>{script_json(value)}</script>'


def media_url(name: str) -> str:
    return f"/demo/media/{name}"


def img(name: str, *, claim: dict | None = None, alt: str = "", **extra: str) -> str:
    attrs = f' data-labelcheck-claim="{attr(claim)}"' if claim else ""
    attrs += "".join(f' {k.replace("_", "-")}="{html.escape(v)}"' for k, v in extra.items())
    return f'<img src="{media_url(name)}" alt="{html.escape(alt)}" width="240" height="160"{attrs}>'


def figure(content: str, caption: str, expect: str) -> str:
    return (f'<figure data-expect="{html.escape(expect)}">{content}'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


STYLE = """
body { font: 15px/1.5 system-ui, "Noto Sans CJK SC", sans-serif; margin: 24px; max-width: 980px; color: #111827; }
figure { display: inline-block; margin: 0 16px 16px 0; vertical-align: top; }
figcaption { font-size: 13px; color: #4b5563; max-width: 260px; }
.grid img { width: 24px; height: 24px; margin: 1px; }
code { background: #f3f4f6; padding: 0 3px; }
"""


def page(title: str, body: str, head: str = "") -> Response:
    doc = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
           f"<style>{STYLE}</style>{head}</head><body><p><a href=\"/demo/\">labelcheck demo</a></p>"
           f"<h1>{html.escape(title)}</h1>{body}</body></html>")
    return Response(doc, mimetype="text/html")


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
        abort(404)
    return entry[2]()


@bp.get("/media/<path:name>")
def media(name: str) -> Response:
    found = _demo().media.get(name)
    if found is None:
        abort(404)
    data, media_type = found
    response = Response(data, mimetype=media_type)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


# --- registration ------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _media() -> dict[str, tuple[bytes, str]]:
    return build_media()


DEMO_PRODUCER = "demo-producer"


def ensure_demo_producer(svc: Services):
    """The demo producer's signer: ``data/demo-producer.key`` (0600), created
    when absent and registered in trust.json (a ``registry`` ledger entry)."""
    cfg = svc.config
    with registry_lock(cfg.data_dir):
        if not cfg.demo_key_path.exists():
            keys.write_key_pair(keys.generate_key(DEMO_PRODUCER), cfg.data_dir)
    signer = keys.load_signer(cfg.demo_key_path)
    if svc.registry.lookup(signer.key_id) is None:
        producer = Producer(name="labelcheck demo producer", vkey=signer.vkey,
                            filing="DEMO-0000", roles=("producer",))

        def mutate(reg):
            if reg.lookup(producer.key_id) is not None:  # another worker won the race
                return None
            return registry_add(reg, producer, now_text())

        svc.change_registry(mutate)
    return signer


def register(app: Flask, svc: Services) -> None:
    """Mount the demo under /demo/ (called by create_app when demo is on)."""
    config = svc.config
    producer = ensure_demo_producer(svc)
    unknown = _key(config, UNKNOWN_PRODUCER)
    revoked = _key(config, REVOKED_PRODUCER)
    ensure_revoked_producer(svc, revoked)
    media = dict(_media())
    signed = c2pa_image(config, base64.b64decode(JPEG_B64))
    if signed is not None:
        media["c2pa.jpg"] = (signed, "image/jpeg")
    app.extensions[EXTENSION_KEY] = Demo(media, producer, unknown, revoked)
    app.register_blueprint(bp)
