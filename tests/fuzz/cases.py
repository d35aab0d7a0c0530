"""Hostile media for the label readers, each built from a description.

Every case is deterministic. ``SMALL`` cases are also kept as files under
``corpus/`` (written by ``python tests/fuzz/make_corpus.py``, each under
20 KB) so outside fuzzers can start from them; ``LARGE`` ones are built when
a test needs them.
"""

from __future__ import annotations

import struct
import zlib

import media_factory as mf
from labelcheck.labels import png as pngmod

TC260 = "http://www.tc260.org.cn/ns/AIGC/1.0/"
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"


def _rdf(body: str) -> bytes:
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:TC260="{TC260}">{body}</rdf:Description></rdf:RDF></x:xmpmeta>'
    ).encode()


def nested_xmp(depth: int) -> bytes:
    """``<TC260:AIGC>`` opened ``depth`` times inside itself, text in each."""
    return _rdf("<TC260:AIGC>x" * depth + "</TC260:AIGC>" * depth)


def _itxt(text: bytes, compressed: bool = True) -> bytes:
    body = zlib.compress(text, 9) if compressed else text
    return pngmod.chunk(b"iTXt", pngmod.XMP_KEYWORD + b"\x00" + (b"\x01" if compressed else b"\x00") + b"\x00\x00\x00" + body)


def _png_with(chunks: bytes) -> bytes:
    base = mf.png(4, 4)
    return base[:33] + chunks + base[33:]  # after IHDR


def _app1(payload: bytes) -> bytes:
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _jpeg_with(segments: bytes) -> bytes:
    base = mf.jpeg(8, 8)
    return base[:2] + segments + base[2:]


def png_deep_itxt(depth: int = 12_000) -> bytes:
    """A small PNG whose compressed iTXt XMP nests TC260:AIGC ``depth`` deep."""
    return _png_with(_itxt(nested_xmp(depth)))


def png_conflicting_packet(count: int = 3_000) -> bytes:
    """One compressed XMP packet with ``count`` labels alternating Label 1 and 2."""
    labels = [mf.aigc_json(dict(mf.LABEL, Label=str(1 + i % 2))) for i in range(count)]
    return _png_with(_itxt(_rdf("".join(f"<TC260:AIGC>{v}</TC260:AIGC>" for v in labels))))


def png_conflicting_chunks(count: int = 3_000) -> bytes:
    """``count`` iTXt XMP chunks, labels alternating Label 1 and 2."""
    out = b"".join(_itxt(mf.xmp_packet(aigc=mf.aigc_json(dict(mf.LABEL, Label=str(1 + i % 2))))) for i in range(count))
    return _png_with(out)


def png_zip_bomb(chunks: int = 12, megabytes: int = 1) -> bytes:
    """iTXt chunks each inflating to ``megabytes`` MB of spaces (a zip bomb)."""
    bomb = _itxt(b"<x:xmpmeta>AIGC" + b" " * (megabytes << 20))
    return _png_with(bomb * chunks)


def jpeg_deep_packets(packets: int = 100, depth: int = 2_500) -> bytes:
    """``packets`` XMP APP1 segments, each nesting TC260:AIGC ``depth`` deep."""
    segment = _app1(XMP_HEADER + nested_xmp(depth))
    return _jpeg_with(segment * packets)


def jpeg_many_packets(packets: int = 3_000) -> bytes:
    """``packets`` small XMP APP1 segments with alternating labels."""
    segs = b"".join(_app1(XMP_HEADER + mf.xmp_packet(aigc=mf.aigc_json(dict(mf.LABEL, Label=str(1 + i % 2))))) for i in range(packets))
    return _jpeg_with(segs)


def wav_many_chunks(count: int = 30_000) -> bytes:
    """A WAV with ``count`` AIGC chunks after its samples."""
    label = mf.aigc_json().encode()
    return mf.wav(100, extra_chunks=[(b"AIGC", label)] * count)


def mp3_many_labels(count: int = 5_000, major: int = 4) -> bytes:
    """An ID3 tag with ``count`` TXXX:AIGC frames."""
    frame = mf.id3_frame(b"TXXX", mf.txxx("AIGC", mf.aigc_json()), major)
    return mf.mp3(2, tag=mf.id3_tag([frame] * count, major))


def mp3_tiny_frames(count: int = 100_000) -> bytes:
    """An ID3v2.3 tag of ``count`` one-byte frames."""
    return mf.mp3(2, tag=mf.id3_tag([mf.id3_frame(b"TIT2", b"\x00", 3)] * count, 3))


def jpeg_soi_only() -> bytes:
    return b"\xff\xd8\xff"


def jpeg_headless_exif() -> bytes:
    return _jpeg_with(_app1(b"Exif\x00\x00II*\x00"))


def mp3_empty_txxx(major: int) -> bytes:
    return mf.mp3(2, tag=mf.id3_tag([mf.id3_frame(b"TXXX", b"", major)], major))


SMALL = {
    "png_deep_itxt.png": lambda: png_deep_itxt(12_000),
    "png_deep_itxt_2k.png": lambda: png_deep_itxt(60_000),
    "png_conflicting_packet.png": lambda: png_conflicting_packet(3_000),
    "png_zip_bomb.png": lambda: png_zip_bomb(12),
    "jpeg_soi_only.jpg": jpeg_soi_only,
    "jpeg_headless_exif.jpg": jpeg_headless_exif,
    "jpeg_deep_packet.jpg": lambda: jpeg_deep_packets(1, 700),
    "mp3_empty_txxx_v23.mp3": lambda: mp3_empty_txxx(3),
    "mp3_empty_txxx_v24.mp3": lambda: mp3_empty_txxx(4),
}
LARGE = {
    "jpeg_deep_packets.jpg": jpeg_deep_packets,
    "jpeg_many_packets.jpg": jpeg_many_packets,
    "png_conflicting_chunks.png": png_conflicting_chunks,
    "png_zip_bomb_large.png": lambda: png_zip_bomb(200),
    "wav_many_chunks.wav": wav_many_chunks,
    "mp3_many_labels.mp3": mp3_many_labels,
    "mp3_tiny_frames.mp3": mp3_tiny_frames,
}
