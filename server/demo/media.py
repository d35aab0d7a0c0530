"""The demo's media, generated at start-up with the standard library alone:
PNGs (ISO/IEC 15948) drawn pixel by pixel, a stand-in MP4, a stored JPEG,
and copies carrying GB 45438 implicit labels (docs/protocol.md §3)."""

from __future__ import annotations

import functools
import hashlib
import struct
import zlib

from labelcheck.labels import embed_label
from labelcheck.util import b64

MANY = 1000  # images on the /demo/many page


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


def demo_jpeg() -> bytes:
    return b64.decode(JPEG_B64)


def gb_label(produce_id: str, label: str = "1") -> dict:
    return {"Label": label, "ContentProducer": "labelcheck-demo", "ProduceID": produce_id}


@functools.lru_cache(maxsize=1)
def build_media() -> dict[str, tuple[bytes, str]]:
    """Every demo file by name: (bytes, media type). Made once per process;
    callers copy the dict before adding to it."""
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
        "swap-1.png": picture(17),
        "swap-2.png": picture(18),
    }
    out = {name: (data, "image/png") for name, data in media.items()}
    out["clip.mp4"] = (video_bytes(), "video/mp4")
    for i in range(MANY):
        out[f"many/{i}.png"] = (tile(i), "image/png")
    jpeg = demo_jpeg()
    out["gb45438.png"] = (embed_label(picture(20), gb_label("demo-png-1"), "image/png"), "image/png")
    out["gb45438.jpg"] = (embed_label(jpeg, gb_label("demo-jpeg-1", "2"), "image/jpeg"), "image/jpeg")
    out["conflict.png"] = (embed_label(picture(21), gb_label("demo-conflict-1", "3"), "image/png"), "image/png")
    out["plain-labelled.png"] = (embed_label(picture(22), gb_label("demo-mixed-1", "3"), "image/png"), "image/png")
    return out
