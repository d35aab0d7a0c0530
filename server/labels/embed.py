"""Write a GB 45438 implicit label into media, losslessly.

Only the metadata segment changes: image, audio and video data are copied
byte for byte, and the file ends up with exactly one label (an earlier one
is replaced, an EXIF UserComment label is blanked). Where each format keeps
the label:

====== =================================================================
JPEG   APP1 XMP packet, property ``TC260:AIGC``
PNG    iTXt ``XML:com.adobe.xmp`` right after IHDR
WebP   ``XMP `` chunk, VP8X XMP flag set (VP8X added to simple files)
MP4    ``moov/udta/meta`` iTunes freeform item ``cn.org.tc260``/``AIGC``
MP3    ID3v2 ``TXXX`` frame described ``AIGC``
WAV    RIFF chunk ``AIGC``
====== =================================================================

Order for producers: embed the label first, then sign the final bytes (a
labelcheck claim's ``content.sha256`` or a C2PA manifest), since any later
change of the bytes breaks both. ``ReservedCode1`` may carry the claim id.
"""

from __future__ import annotations

import io
import struct

from . import aigc as annex_e
from . import id3, isobmff, jpeg, png, wav, webp
from .read import carries_c2pa, detect
from .signals import Malformed


class LabelError(ValueError):
    """The label or the media cannot be written; the message says why."""


class SignedMedia(LabelError):
    """The media carries a C2PA manifest that writing would invalidate."""


def embed_label(data: bytes, aigc: dict, media_type: str | None = None, *, force: bool = False) -> bytes:
    """``data`` with ``aigc`` (Annex E fields, inner object or ``{"AIGC": …}``) as its one GB 45438 label.

    The format is sniffed from the bytes (``media_type`` only when they say
    nothing). Raises LabelError for a label that breaks Annex E's rules (see
    ``aigc.check_for_writing``), an unsupported or damaged file, or metadata
    that cannot hold the label. Raises SignedMedia, unless ``force``, when
    the file carries a C2PA manifest store: its hard binding covers the bytes
    the label would change, so the manifest would fail validation
    (``assertion.dataHash.mismatch``).
    """
    try:
        clean = annex_e.check_for_writing(annex_e.unwrap(aigc))
    except annex_e.AigcError as exc:
        raise LabelError(f"label: {exc}") from None
    kind = detect(io.BytesIO(data), media_type)
    if kind is None:
        raise LabelError("unrecognised media format (JPEG, PNG, WebP, MP4/MOV, MP3 and WAV are supported)")
    if not force and carries_c2pa(io.BytesIO(data), media_type):
        raise SignedMedia(
            "the file carries a C2PA manifest: writing the label changes the bytes it signs, so it would "
            "no longer validate (assertion.dataHash.mismatch); embed the label first, then sign"
        )
    value = annex_e.dumps(clean)
    try:
        if kind == "jpeg":
            return jpeg.embed(data, clean)
        if kind == "png":
            return png.embed(data, clean)
        if kind == "webp":
            return webp.embed(data, clean)
        if kind in ("mp4", "mov"):
            return isobmff.embed(data, value.encode("utf-8"))
        if kind == "mp3":
            return id3.embed(data, value)
        return wav.embed(data, value.encode("utf-8"))
    except Malformed as exc:
        raise LabelError(f"{kind}: {exc}") from None
    except (IndexError, KeyError, ValueError, struct.error) as exc:  # damaged files
        raise LabelError(f"{kind}: damaged file: {exc}") from None

