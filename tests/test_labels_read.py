"""Reading labels inside media: GB 45438 (XMP, EXIF, MP4, ID3, WAV), IPTC, and damaged metadata."""

from __future__ import annotations

import io
import json
import struct
import tempfile
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import media_factory as mf
from labelcheck.labels import Signal, embed_label, page_meta_signal, read_labels
from labelcheck.labels.read import sniff

IPTC = mf.IPTC


def read(data: bytes, **kw) -> list[Signal]:
    return read_labels(io.BytesIO(data), **kw)


def only(data: bytes, **kw) -> Signal:
    found = read(data, **kw)
    assert len(found) == 1, [s.to_dict() for s in found]
    return found[0]


# --- GB 45438 in every container ---------------------------------------------


@pytest.mark.parametrize("wrap", [False, True], ids=["inner", "wrapper"])
@pytest.mark.parametrize("maker", ["png", "jpeg", "webp"])
def test_xmp_label_in_images(maker, wrap):
    packet = mf.xmp_packet(aigc=mf.aigc_json(wrap=wrap))
    s = only(getattr(mf, maker)(xmp=packet))
    assert (s.source, s.status, s.category, s.reasons) == ("gb45438_xmp", "declared", "confirmed", ["gb45438_label"])
    assert s.detail["aigc"] == mf.LABEL
    assert s.detail["container"] == maker


def test_xmp_attribute_form_and_label_categories():
    for label, category in (("1", "confirmed"), ("2", "possible"), ("3", "suspected")):
        packet = mf.xmp_packet(aigc=mf.aigc_json(dict(mf.LABEL, Label=label)), attribute=True)
        s = only(mf.jpeg(xmp=packet))
        assert (s.status, s.category, s.detail["aigc"]["Label"]) == ("declared", category, label)


def test_png_compressed_itxt_xmp():
    text = mf.xmp_packet(aigc=mf.aigc_json())
    body = b"XML:com.adobe.xmp\x00\x01\x00\x00\x00" + zlib.compress(text)
    chunk = struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body))
    data = mf.png()
    data = data[:33] + chunk + data[33:]  # after IHDR
    assert only(data).detail["aigc"] == mf.LABEL


@pytest.mark.parametrize("unicode", [False, True], ids=["ascii", "unicode"])
@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_exif_user_comment_label_in_jpeg(byte_order, unicode):
    exif = mf.exif_user_comment(mf.aigc_json(wrap=True), byte_order, prefix=True, unicode=unicode)
    s = only(mf.jpeg(exif=exif))
    assert (s.source, s.status, s.category) == ("gb45438_exif", "declared", "confirmed")
    assert s.detail["aigc"] == mf.LABEL


def test_exif_label_in_png_and_webp():
    exif = mf.exif_user_comment(mf.aigc_json(wrap=True))
    assert only(mf.png(exif=exif)).source == "gb45438_exif"
    assert only(mf.webp(exif=b"Exif\x00\x00" + exif)).source == "gb45438_exif"


def test_exif_user_comment_without_label_is_no_signal():
    assert read(mf.jpeg(exif=mf.exif_user_comment("holiday at the lake", prefix=True))) == []


def test_mp4_label_both_layouts():
    from labelcheck.labels import isobmff

    item = isobmff.label_item(mf.aigc_json().encode())
    meta = mf.full(b"meta", isobmff.HDLR_MDIR + mf.box(b"ilst", item))
    for moov_first in (True, False):
        data = mf.mp4(moov_first=moov_first, udta=mf.box(b"udta", meta)).data
        s = only(data)
        assert (s.source, s.category, s.detail["aigc"]) == ("gb45438_mp4", "confirmed", mf.LABEL)


def test_mp4_quicktime_mdta_keys_layout():
    """A QuickTime ``mdta`` meta (plain box, keys + indexed ilst) is read too."""
    hdlr = mf.full(b"hdlr", b"\x00" * 4 + b"mdta" + b"\x00" * 12 + b"\x00")
    keys = mf.full(b"keys", struct.pack(">I", 2) + struct.pack(">I", 8 + 19) + b"mdta" + b"com.apple.quicktime" + struct.pack(">I", 12) + b"mdtaAIGC")
    data_box = mf.box(b"data", struct.pack(">II", 1, 0) + mf.aigc_json(wrap=True).encode())
    ilst = mf.box(b"ilst", mf.box(struct.pack(">I", 2), data_box))
    meta = mf.box(b"meta", hdlr + keys + ilst)  # QuickTime: no FullBox header
    assert only(mf.mp4(udta=mf.box(b"udta", meta)).data).detail["aigc"] == mf.LABEL


@pytest.mark.parametrize("major,encoding", [(3, 0), (3, 1), (4, 3)])
def test_id3_txxx_label(major, encoding):
    tag = mf.id3_tag([mf.id3_frame(b"TIT2", b"\x03song", major), mf.id3_frame(b"TXXX", mf.txxx("AIGC", mf.aigc_json(), encoding), major)], major, padding=64)
    s = only(mf.mp3(tag=tag))
    assert (s.source, s.category, s.detail["aigc"]) == ("gb45438_id3", "confirmed", mf.LABEL)


def test_id3_other_txxx_is_ignored():
    tag = mf.id3_tag([mf.id3_frame(b"TXXX", mf.txxx("comment", "{}"))])
    assert read(mf.mp3(tag=tag)) == []


def test_wav_aigc_chunk():
    data = mf.wav(extra_chunks=[(b"LIST", b"INFOISFT\x06\x00\x00\x00Lavf\x00\x00"), (b"AIGC", mf.aigc_json().encode())])
    s = only(data)
    assert (s.source, s.category, s.detail["aigc"]) == ("gb45438_wav", "confirmed", mf.LABEL)


def test_no_labels_anywhere():
    for data in (mf.png(), mf.jpeg(), mf.webp(), mf.wav(), mf.mp3(), mf.mp4().data, b"", b"plain text"):
        assert read(data) == []


def test_iptc_digital_source_type_forms():
    uri = IPTC + "trainedAlgorithmicMedia"
    for packet in (mf.xmp_packet(dst=uri), mf.xmp_packet(dst=uri, attribute=True)):
        s = only(mf.jpeg(xmp=packet))
        assert (s.source, s.status, s.category) == ("iptc_dst", "declared", "confirmed")
        assert s.detail["digital_source_type"] == uri and s.detail["ai"] is True
    resource = '<Iptc4xmpExt:DigitalSourceType rdf:resource="' + IPTC + 'digitalCapture"/>'
    s = only(mf.png(xmp=mf.xmp_packet(extra=resource)))
    assert (s.category, s.detail["ai"]) == (None, False)


def test_label_and_iptc_in_one_packet():
    found = read(mf.webp(xmp=mf.xmp_packet(aigc=mf.aigc_json(), dst=IPTC + "compositeSynthetic")))
    assert sorted(s.source for s in found) == ["gb45438_xmp", "iptc_dst"]


def test_spooled_temporary_file_is_read():
    spool = tempfile.SpooledTemporaryFile(max_size=1024)
    spool.write(mf.png(64, 64, xmp=mf.xmp_packet(aigc=mf.aigc_json())))
    assert only_from(spool).source == "gb45438_xmp"


def only_from(fp) -> Signal:
    found = read_labels(fp)
    assert len(found) == 1
    return found[0]


def test_media_type_hint_is_only_a_fallback():
    data = mf.png(xmp=mf.xmp_packet(aigc=mf.aigc_json()))
    assert only(data, media_type="audio/mpeg").source == "gb45438_xmp"  # magic bytes win
    assert sniff(mf.mp4().data[:16]) == "mp4" and sniff(mf.wav()[:16]) == "wav" and sniff(mf.mp3()[:16]) == "mp3"


# --- page meta tag -----------------------------------------------------------


def test_page_meta_inner_and_wrapper():
    for content in (mf.aigc_json(), mf.aigc_json(wrap=True)):
        s = page_meta_signal(content)
        assert (s.source, s.status, s.category, s.detail["aigc"]) == ("gb45438_meta", "declared", "confirmed", mf.LABEL)


@pytest.mark.parametrize(
    "content,code",
    [
        ("{not json", "label_invalid_json"),
        ('["1"]', "label_not_object"),
        (json.dumps(dict(mf.LABEL, Label="4")), "label_invalid"),
        (json.dumps(dict(mf.LABEL, Label=1)), "label_invalid"),
        (json.dumps({"Label": "1"}), "label_invalid"),
        (json.dumps(dict(mf.LABEL, ProduceID="a\x07b")), "label_invalid"),
        (json.dumps(dict(mf.LABEL, ContentProducer="x" * 300)), "label_invalid"),
        (json.dumps(dict(mf.LABEL, ContentPropagator="platform")), "label_invalid"),
        ("x" * 10000, "label_too_large"),
        (None, "label_invalid_json"),
    ],
)
def test_page_meta_malformed(content, code):
    s = page_meta_signal(content)
    assert (s.status, s.category, s.reasons) == ("malformed", None, ["malformed", code])
    assert s.detail["error"]


# --- malformed metadata: a clear reason, never an exception --------------------


def _malformed(found, code):
    bad = [s for s in found if s.status == "malformed"]
    assert bad, [s.to_dict() for s in found]
    assert bad[0].reasons == ["malformed", code], bad[0].to_dict()
    return bad[0]


@pytest.mark.parametrize(
    "aigc,code",
    [("{\"Label\": \"1\",", "label_invalid_json"), (json.dumps(dict(mf.LABEL, Label="9")), "label_invalid"), ("\"just a string\"", "label_not_object")],
)
def test_bad_label_json_in_xmp(aigc, code):
    s = _malformed(read(mf.jpeg(xmp=mf.xmp_packet(aigc=aigc))), code)
    assert s.source == "gb45438_xmp"


def test_xml_bomb_and_external_entity_are_refused():
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>'
    xxe = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&e;</x:xmpmeta>'
    for packet in (bomb, xxe):
        _malformed(read(mf.png(xmp=packet)), "xmp_dtd_refused")


def test_broken_xml_and_huge_packet():
    _malformed(read(mf.webp(xmp=b"<x:xmpmeta><TC260:AIGC>unclosed")), "xmp_invalid")
    assert read(mf.webp(xmp=b"<x:xmpmeta><unclosed>")) == []  # no label property: not parsed
    huge = mf.xmp_packet(aigc=mf.aigc_json(), extra="<dc:x>" + "a" * (1 << 20) + "</dc:x>")
    _malformed(read(mf.png(xmp=huge)), "xmp_too_large")


def test_truncated_jpeg_app1():
    data = mf.jpeg(xmp=mf.xmp_packet(aigc=mf.aigc_json()))
    cut = data[: data.index(b"TC260:AIGC")]
    _malformed(read(cut), "truncated")


def test_jpeg_segment_length_too_small():
    data = mf.jpeg()
    bad = data[:2] + b"\xff\xe1\x00\x01" + data[2:]
    _malformed(read(bad), "bad_length")


def test_png_absurd_chunk_length_and_bad_crc():
    data = mf.png(xmp=mf.xmp_packet(aigc=mf.aigc_json()))
    at = data.index(b"iTXt") - 4
    absurd = data[:at] + b"\x7f\xff\xff\xff" + data[at + 4 :]
    _malformed(read(absurd), "bad_length")
    crc_at = at + 8 + struct.unpack(">I", data[at : at + 4])[0]
    flipped = data[:crc_at] + bytes([data[crc_at] ^ 1]) + data[crc_at + 1 :]
    _malformed(read(flipped), "bad_crc")


def test_exif_with_absurd_entry_count():
    exif = bytearray(mf.exif_user_comment(mf.aigc_json(wrap=True), prefix=True))
    exif[6 + 8 : 6 + 10] = b"\xff\xff"  # IFD0 entry count
    _malformed(read(mf.jpeg(exif=bytes(exif))), "bad_length")


def test_id3_absurd_frame_size_and_non_syncsafe_size():
    frame = b"TXXX" + struct.pack(">I", 0x7FFFFFF) + b"\x00\x00" + mf.txxx("AIGC", mf.aigc_json())
    tag = b"ID3\x03\x00\x00" + mf._syncsafe(len(frame)) + frame
    _malformed(read(mf.mp3(tag=tag)), "bad_length")
    _malformed(read(b"ID3\x03\x00\x00\xff\xff\xff\xff" + mf.mp3_frames(2)), "bad_length")


def test_id3_tag_size_past_the_end():
    _malformed(read(b"ID3\x03\x00\x00\x7f\x7f\x7f\x7f" + mf.mp3_frames(1)), "truncated")
    _malformed(read(b"ID3\x03\x00\x00\x00\x01\x00\x00" + mf.mp3_frames(1)), "truncated")


def test_mp4_box_with_absurd_size():
    data = mf.mp4().data
    bad = data + struct.pack(">I4s", 1, b"free")  # largesize header cut off
    _malformed(read(bad), "truncated")
    huge = data + struct.pack(">I4sQ", 1, b"mdat", 1 << 60)
    _malformed(read(huge), "bad_length")


def test_mp4_udta_too_large_is_refused_without_reading_it():
    data = mf.mp4().data + struct.pack(">I4s", 8 + 8 + (17 << 20), b"moov") + struct.pack(">I4s", 8 + (17 << 20), b"udta") + b"\x00" * (17 << 20)
    _malformed(read(data), "too_large")


def test_wav_chunk_past_the_end_and_label_too_large():
    data = mf.wav(extra_chunks=[(b"AIGC", mf.aigc_json().encode())])
    at = data.index(b"AIGC")
    bad = data[: at + 4] + struct.pack("<I", 1 << 30) + data[at + 8 :]
    _malformed(read(bad), "bad_length")
    big = mf.wav(extra_chunks=[(b"AIGC", b"{" + b" " * (70 << 10) + b"}")])
    _malformed(read(big), "too_large")


def test_webp_chunk_past_the_end():
    data = mf.webp(xmp=mf.xmp_packet(aigc=mf.aigc_json()))
    at = data.index(b"XMP ")
    bad = data[: at + 4] + struct.pack("<I", 1 << 30) + data[at + 8 :]
    _malformed(read(bad), "bad_length")


def test_label_before_damage_is_kept():
    """A good XMP label followed by a damaged segment: both are reported."""
    data = mf.jpeg(xmp=mf.xmp_packet(aigc=mf.aigc_json()))
    sos = data.index(b"\xff\xda")
    bad = data[:sos] + b"\xff\xe2\x00\x01" + data[sos:]
    found = read(bad)
    assert [s.status for s in found] == ["declared", "malformed"]


def test_unreadable_stream_is_no_signal():
    class Broken(io.RawIOBase):
        def readable(self):
            return True

        def seek(self, *a):
            raise OSError("gone")

    assert read_labels(Broken()) == []


@pytest.mark.parametrize("seed", range(60))
def test_random_corruption_never_raises(seed):
    import random

    rng = random.Random(seed)
    bases = [
        mf.jpeg(xmp=mf.xmp_packet(aigc=mf.aigc_json()), exif=mf.exif_user_comment(mf.aigc_json(wrap=True), prefix=True)),
        mf.png(xmp=mf.xmp_packet(aigc=mf.aigc_json())),
        mf.webp(xmp=mf.xmp_packet(aigc=mf.aigc_json())),
        mf.mp3(tag=mf.id3_tag([mf.id3_frame(b"TXXX", mf.txxx("AIGC", mf.aigc_json()))])),
        mf.wav(extra_chunks=[(b"AIGC", mf.aigc_json().encode())]),
        embed_label(mf.mp4(udta=mf.ilst_tool_udta()).data, mf.LABEL),
    ]
    data = bytearray(bases[seed % len(bases)])
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(4, min(len(data), 600))
        data[i] = rng.randrange(256)
    if seed % 3 == 0:
        data = data[: rng.randrange(8, len(data))]
    for s in read(bytes(data)):
        assert s.status in ("declared", "malformed")
        assert isinstance(s.to_dict(), dict)


def test_file_position_is_restored():
    fp = io.BytesIO(mf.png(xmp=mf.xmp_packet(aigc=mf.aigc_json())))
    fp.seek(17)
    assert len(read_labels(fp)) == 1 and fp.tell() == 17

MAGICS = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x01\x00\x00WEBP", b"RIFF\x00\x01\x00\x00WAVE", b"\x00\x00\x00\x18ftypisom", b"ID3\x03\x00\x00"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(MAGICS), st.binary(max_size=512))
def test_arbitrary_bytes_behind_a_magic_never_raise(magic, tail):
    for s in read(magic + tail):
        assert s.status in ("declared", "malformed") and s.reasons


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_meta_content_never_raises(text):
    s = page_meta_signal(text)
    assert s.status in ("declared", "malformed")
    if s.status == "declared":
        assert s.detail["aigc"]["Label"] in ("1", "2", "3")


def test_id3v22_tag_is_skipped_not_malformed():
    tag = b"ID3\x02\x00\x00" + mf._syncsafe(10) + b"TT2\x00\x00\x04\x00abc"
    assert read(mf.mp3(tag=tag)) == []


class CountingReader(io.BytesIO):
    """A BytesIO that counts the bytes handed out."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.bytes_read = 0

    def read(self, n=-1):
        chunk = super().read(n)
        self.bytes_read += len(chunk)
        return chunk


@pytest.mark.parametrize("kind", ["mp4-moov-last", "mp4-faststart", "mp3-cover-art", "jpeg", "png", "wav", "webp"])
def test_only_metadata_is_read(kind):
    big = 6 << 20
    label = mf.aigc_json()
    if kind.startswith("mp4"):
        from labelcheck.labels import isobmff

        meta = mf.full(b"meta", isobmff.HDLR_MDIR + mf.box(b"ilst", isobmff.label_item(label.encode())))
        data = mf.mp4(moov_first=kind == "mp4-faststart", udta=mf.box(b"udta", meta), mdat_padding=big).data
    elif kind == "mp3-cover-art":
        art = mf.id3_frame(b"APIC", b"\x00image/jpeg\x00\x03\x00" + bytes(big))
        data = mf.mp3(tag=mf.id3_tag([art, mf.id3_frame(b"TXXX", mf.txxx("AIGC", label))]))
    elif kind == "wav":
        data = embed_label(mf.wav(frames=10) + b"", mf.LABEL)
        at = data.index(b"data")  # grow the sample chunk to `big` bytes of silence
        size = struct.unpack_from("<I", data, at + 4)[0]
        data = data[: at + 4] + struct.pack("<I", size + big) + data[at + 8 : at + 8 + size] + bytes(big) + data[at + 8 + size :]
        data = data[:4] + struct.pack("<I", len(data) - 8) + data[8:]
    else:
        import os

        from PIL import Image

        out = io.BytesIO()
        Image.frombytes("RGB", (1000, 1000), os.urandom(3_000_000)).save(out, {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[kind], quality=95)
        data = embed_label(out.getvalue(), mf.LABEL)
    assert len(data) > 900 << 10
    fp = CountingReader(data)
    [signal] = read_labels(fp)
    assert signal.status == "declared", signal.to_dict()
    assert fp.bytes_read < 200 << 10, f"read {fp.bytes_read} of {len(data)} bytes"
