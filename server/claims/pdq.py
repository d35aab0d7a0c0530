"""PDQ perceptual hashes of images (docs/protocol.md §2, §12).

PDQ is Meta's open 256-bit perceptual hash (the ThreatExchange ``pdq``
reference, "The TMK+PDQF Video-Hashing Algorithm and the PDQ Image Similarity
Algorithm", 2019). It is computed here through the ``pdqhash`` binding of the
reference C++ code, and written as Meta's hex form: 64 lowercase hex digits,
the most significant bit of the hash first. Hashes of two images are compared
by Hamming distance: near-duplicates (re-encoded, resized, stripped) stay
within about 31 of 256 bits, unrelated images are near 128.

``pdqhash``, ``numpy`` and Pillow are optional dependencies: without them
:func:`available` is False and :func:`image_pdq` raises PdqUnavailable.
Claims carrying a ``content.pdq`` stay checkable without them.
"""

from __future__ import annotations

import io
import re
from typing import BinaryIO

try:  # optional: perceptual hashing needs all three
    import numpy as np
    import pdqhash
    from PIL import Image, ImageOps
except ImportError as exc:
    np = pdqhash = Image = ImageOps = None
    _MISSING = str(exc)

PDQ_HEX = re.compile(r"[0-9a-f]{64}")
HASH_BITS = 256
MAX_PIXELS = 64_000_000  # larger images are not decoded (decompression bombs)
WORKING_SIZE = 512  # images are reduced to at most 512 px a side before hashing, as the reference does
DEFAULT_THRESHOLD = 31  # the reference's usual match threshold, in bits


class PdqUnavailable(RuntimeError):
    """The optional PDQ dependencies (pdqhash, numpy, Pillow) are not installed."""


def available() -> bool:
    """Whether :func:`image_pdq` can compute hashes here."""
    return pdqhash is not None


def image_pdq(source: bytes | BinaryIO) -> tuple[str, int] | None:
    """``(pdq_hex, quality)`` of an image (bytes or a binary file), or None
    when it is not an image Pillow can decode within MAX_PIXELS. ``quality``
    is the reference's 0-100 score; under 50 the hash says little (flat or
    tiny images). Raises PdqUnavailable without the optional packages."""
    if pdqhash is None:
        raise PdqUnavailable(f"PDQ needs the optional packages pdqhash, numpy and Pillow ({_MISSING})")
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    try:
        with Image.open(fp) as img:
            if img.width * img.height > MAX_PIXELS:
                return None
            img.draft("RGB", (WORKING_SIZE * 2, WORKING_SIZE * 2))  # JPEG: decode at a reduced scale
            pixels = _rgb(ImageOps.exif_transpose(img) or img)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError):
        return None
    pixels.thumbnail((WORKING_SIZE, WORKING_SIZE), Image.Resampling.BILINEAR)
    bits, quality = pdqhash.compute(np.ascontiguousarray(np.asarray(pixels, dtype=np.uint8)))
    # pdqhash lists bit 255 first: packing big-endian gives Meta's hex form.
    return np.packbits(bits.astype(np.uint8)).tobytes().hex(), int(quality)


def _rgb(img):
    """The image as RGB; transparent parts are laid on white, as a page shows them."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def is_pdq(value: object) -> bool:
    """True for 64 lowercase hex digits."""
    return isinstance(value, str) and PDQ_HEX.fullmatch(value) is not None


def distance(a: str, b: str) -> int:
    """Hamming distance, in bits, between two PDQ hashes in hex."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
