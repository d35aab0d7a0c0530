"""Run one label reader on one input under watch: no exception, bounded time and memory.

``READERS`` names every reader entry point: ``read_labels`` (each
container: JPEG, PNG, WebP, MP4, MP3/ID3, WAV), the XMP and EXIF block
readers, and the C2PA entry point. The block readers may raise
``Malformed`` (their documented way to say "damaged"; the container
walkers turn it into a signal); nothing else may escape any of them.
"""

from __future__ import annotations

import io
import json
import time
import tracemalloc
from dataclasses import dataclass

from labelcheck.labels import c2pa_reader, exif, merge, read_labels, xmp
from labelcheck.labels.signals import Malformed

MAX_RESULT = 16 << 10  # bytes of one merged result as JSON: "a few KB"


def _read(data: bytes):
    found = read_labels(io.BytesIO(data))
    result = merge(None, found)
    size = len(json.dumps(result, ensure_ascii=False))
    assert size <= MAX_RESULT, f"merged result is {size} bytes"
    return found


def _xmp(data: bytes):
    return xmp.signals(data, "jpeg")


def _exif(data: bytes):
    try:
        return exif.signals(data, "jpeg")
    except Malformed:
        return []


def _c2pa(data: bytes):
    for mime in ("image/jpeg", "image/png", "video/mp4"):
        c2pa_reader.read(io.BytesIO(data), mime, None)


READERS = {"read_labels": _read, "xmp": _xmp, "exif": _exif, "c2pa": _c2pa}


@dataclass
class Run:
    seconds: float
    peak: int  # bytes, tracemalloc peak while the reader ran
    result: object


def run(reader: str, data: bytes) -> Run:
    """Run ``READERS[reader]`` on ``data``; any exception propagates."""
    fn = READERS[reader]
    tracemalloc.start()
    try:
        start = time.perf_counter()
        result = fn(data)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return Run(seconds, peak, result)


def check(reader: str, data: bytes, *, seconds: float, megabytes: float) -> Run:
    """``run``, asserting the time and memory bounds. A slow run is tried
    once more and the faster counts, so a pause of a busy machine is not
    taken for slow reading."""
    r = run(reader, data)
    if r.seconds > seconds:
        again = run(reader, data)
        r = again if again.seconds < r.seconds else r
    assert r.seconds <= seconds, f"{reader}: {r.seconds:.2f} s on {len(data)} bytes"
    assert r.peak <= megabytes * (1 << 20), f"{reader}: {r.peak / (1 << 20):.1f} MB on {len(data)} bytes"
    return r
