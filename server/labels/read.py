"""Find every label in a media file: sniff the container, walk its metadata.

``read_labels`` never raises: damaged metadata becomes a ``malformed``
signal, and labels read before the damage are kept. Memory is bounded by
the per-format payload limits; only metadata is read (the container walkers
seek past image, audio and video data).
"""

from __future__ import annotations

import logging
from typing import BinaryIO

from . import _io, c2pa_reader, id3, isobmff, jpeg, png, wav, webp
from .budget import Budget, Found, Limit
from .signals import Malformed, Signal, malformed

log = logging.getLogger(__name__)

FORMATS = {
    "jpeg": (jpeg.scan, "image/jpeg", "gb45438_xmp"),
    "png": (png.scan, "image/png", "gb45438_xmp"),
    "webp": (webp.scan, "image/webp", "gb45438_xmp"),
    "mp4": (isobmff.scan, "video/mp4", "gb45438_mp4"),
    "mov": (isobmff.scan, "video/quicktime", "gb45438_mp4"),
    "mp3": (id3.scan, "audio/mpeg", "gb45438_id3"),
    "wav": (wav.scan, "audio/wav", "gb45438_wav"),
}
# Walkers that take the first block read for the sniff instead of reading it
# again, and a descriptor to read the rest with pread.
TAKES_HEAD = frozenset({jpeg.scan, isobmff.scan})
HEAD = _io.BLOCK  # one read: the sniff, and often every header a JPEG or MP4 walk needs
MEDIA_TYPES = {
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/png": "png",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "audio/mp4": "mp4",
    "image/heic": "mp4",
    "image/avif": "mp4",
    "video/quicktime": "mov",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/vnd.wave": "wav",
}
QT_TOP = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


def sniff(head: bytes) -> str | None:
    """The container format from the first bytes (magic numbers), or None."""
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == png.SIGNATURE:
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[4:8] == b"ftyp":
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if head[4:8] in QT_TOP:
        return "mov"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def detect(fp: BinaryIO, media_type: str | None = None) -> str | None:
    """Magic bytes first; the declared media type only when they say nothing."""
    fp.seek(0)
    return _kind(fp.read(16), media_type)


def _kind(head: bytes, media_type: str | None) -> str | None:
    kind = sniff(head)
    if kind is None and media_type:
        kind = MEDIA_TYPES.get(media_type.split(";")[0].strip().lower())
    return kind


def carries_c2pa(fp: BinaryIO, media_type: str | None = None) -> bool:
    """True when the container walk finds an embedded C2PA manifest store
    (valid or not); False for other media and for damaged containers."""
    fp.seek(0)
    head = fp.read(HEAD)
    kind = _kind(head, media_type)
    if kind is None:
        return False
    scan = FORMATS[kind][0]
    found = Found(Budget())
    try:
        return bool(scan(fp, found, head=head) if scan in TAKES_HEAD else scan(fp, found))
    except Malformed:
        return False


def read_labels(fp: BinaryIO, media_type: str | None = None, *, c2pa_anchors: str | None = None,
                budget: Budget | None = None) -> list[Signal]:
    """Every label signal in the seekable binary file ``fp`` (see the package doc).

    ``budget``: what the reading may cost (default: ``budget.Budget()``'s
    limits); when it runs out the last signal is a ``limit`` one. ``fp`` is
    left where it was: a plain file is read with ``pread`` where it can be,
    without moving it.
    """
    fd = _io.direct_fd(fp)
    start = None  # where to put fp back, once it has been moved
    try:
        if fd is None:
            start = fp.tell()
            fp.seek(0)
            head = fp.read(HEAD)
        else:
            head = _io.pread(fd, HEAD, 0)
        kind = _kind(head, media_type)
        if kind is not None and start is None and FORMATS[kind][0] not in TAKES_HEAD:
            start = fp.tell()  # this walker seeks
    except Exception as exc:  # an unreadable stream is not a label
        log.info("labels: cannot read the stream: %s", exc)
        return []
    try:
        return _read(fp, fd, kind, head, c2pa_anchors, budget or Budget()) if kind else []
    finally:
        if start is not None:
            try:
                fp.seek(start)  # leave the caller's file where it was
            except Exception:
                pass


def _read(fp: BinaryIO, fd: int | None, kind: str, head: bytes, c2pa_anchors: str | None,
          budget: Budget) -> list[Signal]:
    scan, mime, source = FORMATS[kind]
    found = Found(budget)
    has_c2pa = False
    try:
        has_c2pa = scan(fp, found, head=head, fd=fd) if scan in TAKES_HEAD else scan(fp, found)
    except Malformed as exc:
        found.signals.append(exc.signal())  # past the item budget: this one says why reading stopped
    except Exception:  # a walker bug must not lose the verdict, nor show its text
        log.exception("labels: %s walker failed", kind)
        found.signals.append(malformed(source, "unreadable", f"{kind} metadata could not be read"))
    if not has_c2pa:
        return found.signals
    signal = _c2pa(fp, mime, c2pa_anchors, budget)
    if signal is not None:
        found.signals.append(signal)
    return found.signals


def _c2pa(fp: BinaryIO, mime: str, c2pa_anchors: str | None, budget: Budget) -> Signal | None:
    here = None
    try:
        budget.tick("c2pa")
        here = fp.tell()  # the reader seeks: put the file back after it
        return c2pa_reader.read(fp, mime, c2pa_anchors)
    except Limit as exc:
        return exc.signal()
    except Exception:
        log.exception("labels: C2PA reader failed")
        return Signal("c2pa", "invalid", None, ["c2pa_invalid", "manifest.unreadable"], {"c2pa": {"error": "the manifest store could not be read"}})
    finally:
        if here is not None:
            try:
                fp.seek(here)
            except Exception:
                pass
