"""Writing GB 45438 labels: lossless round trips for every format, exactly one label."""

from __future__ import annotations

import io
import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import media_factory as mf
from labelcheck.labels import LabelError, embed_label, read_labels
from labelcheck.labels import id3 as id3mod

LABEL = dict(mf.LABEL, ReservedCode1="urn:uuid:5f0c8e5e-3a64-4b8c-9d0e-0b6f7c1d2e3f")
RELABEL = {"Label": "3", "ContentProducer": "另一家公司", "ProduceID": "p-2", "ContentPropagator": "platform-9", "PropagateID": "v/123"}


def labels(data: bytes):
    return [s for s in read_labels(io.BytesIO(data)) if s.source.startswith("gb45438")]


def assert_one(data: bytes, label: dict) -> None:
    found = labels(data)
    assert len(found) == 1, [s.to_dict() for s in found]
    assert found[0].status == "declared" and found[0].detail["aigc"] == label


def _mp4_with_tool(moov_first: bool) -> mf.Mp4:
    return mf.mp4(moov_first=moov_first, udta=mf.ilst_tool_udta())


IMAGES = {
    "png": lambda: mf.png(40, 30),
    "png-rgba-with-xmp": lambda: mf.png(40, 30, mode="RGBA", xmp=mf.xmp_packet(dst=mf.IPTC + "trainedAlgorithmicMedia")),
    "jpeg": lambda: mf.jpeg(40, 30),
    "jpeg-with-exif-and-xmp": lambda: mf.jpeg(40, 30, xmp=mf.xmp_packet(aigc=mf.aigc_json(dict(mf.LABEL, Label="2"))), exif=mf.exif_user_comment("camera note", prefix=True)),
    "webp-lossy": lambda: mf.webp(40, 30),
    "webp-lossless-alpha": lambda: mf.webp(40, 30, lossless=True, mode="RGBA"),
    "webp-extended": lambda: mf.webp(40, 30, xmp=mf.xmp_packet(aigc=mf.aigc_json()), exif=mf.exif_user_comment("note", prefix=True)),
}


@pytest.mark.parametrize("name", list(IMAGES))
def test_image_round_trip(name):
    original = IMAGES[name]()
    once = embed_label(original, LABEL)
    assert_one(once, LABEL)
    assert mf.pixels(once) == mf.pixels(original)
    twice = embed_label(once, RELABEL)
    assert_one(twice, RELABEL)
    assert mf.pixels(twice) == mf.pixels(original)
    assert embed_label(twice, RELABEL) == twice  # idempotent: same label, same bytes


def test_jpeg_scan_data_is_byte_identical_and_other_metadata_kept():
    original = IMAGES["jpeg-with-exif-and-xmp"]()
    out = embed_label(original, LABEL)
    assert out[out.index(b"\xff\xda") :] == original[original.index(b"\xff\xda") :]
    assert b"Exif\x00\x00" in out and b"camera note" in out
    assert b"<dc:format>image/jpeg</dc:format>" in out  # other XMP properties survive
    assert out.count(b"http://ns.adobe.com/xap/1.0/\x00") == 1


def test_png_idat_is_byte_identical_and_iptc_kept():
    original = IMAGES["png-rgba-with-xmp"]()
    out = embed_label(original, LABEL)
    idat = lambda d: d[d.index(b"IDAT") - 4 : d.index(b"IEND")]  # noqa: E731
    assert idat(out) == idat(original)
    sources = sorted(s.source for s in read_labels(io.BytesIO(out)))
    assert sources == ["gb45438_xmp", "iptc_dst"]


def test_webp_gains_vp8x_with_xmp_flag():
    from labelcheck.labels import webp

    out = embed_label(mf.webp(40, 30, lossless=True, mode="RGBA"), LABEL)
    chunks = webp.chunks(out)
    assert chunks[0][0] == b"VP8X"
    flags, canvas = chunks[0][1][0], chunks[0][1][4:10]
    assert flags & webp.XMP_FLAG and flags & webp.ALPHA_FLAG
    assert (int.from_bytes(canvas[:3], "little") + 1, int.from_bytes(canvas[3:], "little") + 1) == (40, 30)
    assert [f for f, _b in chunks].count(b"XMP ") == 1


def test_exif_label_is_replaced_not_duplicated():
    """A label in EXIF UserComment is blanked when the XMP label is written."""
    exif = mf.exif_user_comment(mf.aigc_json(dict(mf.LABEL, Label="2"), wrap=True), prefix=True)
    for original in (mf.jpeg(exif=exif), mf.png(exif=exif[6:]), mf.webp(exif=exif)):
        assert [s.source for s in labels(original)] == ["gb45438_exif"]
        out = embed_label(original, LABEL)
        assert_one(out, LABEL)
        assert len(out) - len(original) < 2000


@pytest.mark.parametrize("moov_first", [True, False], ids=["faststart", "moov-last"])
def test_mp4_round_trip_keeps_samples(moov_first):
    original = _mp4_with_tool(moov_first)
    once = embed_label(original.data, LABEL)
    assert_one(once, LABEL)
    assert mf.mp4_samples(once) == original.samples  # chunk offsets follow the moved mdat
    assert b"\xa9too" in once and b"Lavf60.3.100" in once  # ffmpeg's tag is kept
    mdat = lambda d: d[d.index(b"mdat") - 4 :][: struct.unpack(">I", d[d.index(b"mdat") - 4 : d.index(b"mdat")])[0]]  # noqa: E731
    assert mdat(once) == mdat(original.data)
    twice = embed_label(once, RELABEL)
    assert_one(twice, RELABEL)
    assert mf.mp4_samples(twice) == original.samples


def test_mp4_without_udta_and_with_co64():
    for co64 in (False, True):
        original = mf.mp4(co64=co64)
        out = embed_label(original.data, LABEL)
        assert_one(out, LABEL)
        assert mf.mp4_samples(out) == original.samples
        assert (b"co64" in out) == co64


def test_mp4_refuses_fragmented_with_moov_in_front():
    data = mf.mp4().data + mf.box(b"moof", b"\x00" * 16)
    with pytest.raises(LabelError, match="fragmented"):
        embed_label(data, LABEL)


@pytest.mark.parametrize("major", [3, 4])
def test_mp3_round_trip_keeps_frames_and_other_tags(major):
    tag = mf.id3_tag([mf.id3_frame(b"TIT2", b"\x03song", major), mf.id3_frame(b"TXXX", mf.txxx("AIGC", mf.aigc_json(dict(mf.LABEL, Label="2"))), major)], major, padding=100)
    original = mf.mp3(tag=tag)
    audio = mf.mp3_frames()
    once = embed_label(original, LABEL)
    assert once.endswith(audio) and once[3] == major
    assert_one(once, LABEL)
    assert b"TIT2" in once
    twice = embed_label(once, RELABEL)
    assert twice.endswith(audio)
    assert_one(twice, RELABEL)


def test_mp3_without_tag_and_with_unsynchronised_tag():
    audio = mf.mp3_frames()
    out = embed_label(audio, LABEL)
    assert out.endswith(audio) and out.startswith(b"ID3\x03")
    assert_one(out, LABEL)
    # A v2.3 tag with tag-wide unsynchronisation (an FF byte escaped as FF 00).
    frame = b"TIT2" + struct.pack(">I", 4) + b"\x00\x00" + b"\x00a\xff\x00b"  # size before escaping
    tag = b"ID3\x03\x00\x80" + mf._syncsafe(len(frame)) + frame
    out = embed_label(tag + audio, LABEL)
    assert out.endswith(audio)
    assert_one(out, LABEL)
    frames = id3mod.frames(3, 0, id3mod.read_tag(io.BytesIO(out))[2])
    assert frames[0][0] == b"TIT2" and frames[0][2] == b"\x00a\xffb"


def test_wav_round_trip_keeps_samples():
    original = mf.wav(extra_chunks=[(b"LIST", b"INFOISFT\x05\x00\x00\x00Lavf\x00\x00")])
    once = embed_label(original, LABEL)
    assert mf.wav_samples(once) == mf.wav_samples(original)
    assert_one(once, LABEL)
    assert b"LIST" in once
    twice = embed_label(once, RELABEL)
    assert mf.wav_samples(twice) == mf.wav_samples(original)
    assert_one(twice, RELABEL)
    assert len(twice) % 2 == 0


def test_wrapper_is_accepted_and_fields_ordered():
    out = embed_label(mf.png(), {"AIGC": {"ProduceID": "x", "ContentProducer": "y", "Label": "2"}})
    text = out[out.index(b"<TC260:AIGC>") + 12 : out.index(b"</TC260:AIGC>")]
    assert json.loads(text) == {"Label": "2", "ContentProducer": "y", "ProduceID": "x"}
    assert text.startswith(b'{"Label":"2"')


@pytest.mark.parametrize(
    "label,match",
    [
        ({"Label": "4", "ContentProducer": "a", "ProduceID": "b"}, "Label"),
        ({"Label": "1", "ContentProducer": "a"}, "ProduceID is missing"),
        ({"Label": "1", "ContentProducer": "a", "ProduceID": "has space"}, "ProduceID"),
        (dict(mf.LABEL, ReservedCode1='quote"'), "ReservedCode1"),
        (dict(mf.LABEL, Extra="x"), "unknown fields"),
        (dict(mf.LABEL, PropagateID="x"), "go together"),
        ("not a dict", "not a JSON object"),
    ],
)
def test_bad_labels_are_refused(label, match):
    with pytest.raises(LabelError, match=match):
        embed_label(mf.png(), label)


def test_bad_media_is_refused_with_label_error():
    for data in (b"", b"GIF89a....", mf.png()[:40], mf.jpeg()[:30], mf.wav()[:30], mf.mp4().data[:100], b"RIFF\x04\x00\x00\x00WEBP"):
        with pytest.raises(LabelError):
            embed_label(data, LABEL)


def test_xmp_with_dtd_is_not_rewritten():
    data = mf.jpeg(xmp=b'<!DOCTYPE x [<!ENTITY a "b">]><x:xmpmeta xmlns:x="adobe:ns:meta/"/>')
    with pytest.raises(LabelError, match="DTD"):
        embed_label(data, LABEL)


def test_jpeg_xmp_too_big_for_app1():
    base = len(mf.xmp_packet(extra="<dc:x></dc:x>"))
    packet = mf.xmp_packet(extra="<dc:x>" + "a" * (65440 - base) + "</dc:x>")
    with pytest.raises(LabelError, match="APP1"):
        embed_label(mf.jpeg(xmp=packet), LABEL)


def test_mp4_second_udta_label_is_removed_and_other_items_kept():
    from labelcheck.labels import isobmff

    stale = mf.full(b"meta", isobmff.HDLR_MDIR + mf.box(b"ilst", isobmff.label_item(mf.aigc_json(dict(mf.LABEL, Label="2")).encode())))
    udta = mf.ilst_tool_udta() + mf.box(b"udta", stale + b"\x00\x00\x00\x00")
    original = mf.mp4(udta=udta)
    assert [s.detail["aigc"]["Label"] for s in labels(original.data)] == ["2"]
    out = embed_label(original.data, LABEL)
    assert_one(out, LABEL)
    assert b"Lavf60.3.100" in out and mf.mp4_samples(out) == original.samples


def test_mp4_with_mdta_udta_meta_is_refused():
    hdlr = mf.full(b"hdlr", b"\x00" * 4 + b"mdta" + b"\x00" * 12 + b"\x00")
    data = mf.mp4(udta=mf.box(b"udta", mf.box(b"meta", hdlr + mf.box(b"keys", b"\x00" * 8)))).data
    with pytest.raises(LabelError, match="mdir"):
        embed_label(data, LABEL)


MAGICS = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x01\x00\x00WEBP", b"RIFF\x00\x01\x00\x00WAVE", b"\x00\x00\x00\x18ftypisom", b"ID3\x03\x00\x00"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(MAGICS), st.binary(max_size=400))
def test_damaged_media_only_ever_raises_label_error(magic, tail):
    try:
        out = embed_label(magic + tail, LABEL)
    except LabelError:
        return
    assert_one(out, LABEL)


@pytest.mark.parametrize("seed", range(30))
def test_corrupted_media_embed_is_label_error_or_one_label(seed):
    import random

    rng = random.Random(seed)
    bases = [IMAGES["jpeg-with-exif-and-xmp"](), IMAGES["png"](), IMAGES["webp-extended"](), mf.wav(), mf.mp3(tag=mf.id3_tag([mf.id3_frame(b"TIT2", b"\x03x")])), _mp4_with_tool(True).data]
    data = bytearray(bases[seed % len(bases)])
    for _ in range(rng.randint(1, 6)):
        i = rng.randrange(4, min(len(data), 400))
        data[i] = rng.randrange(256)
    try:
        out = embed_label(bytes(data), LABEL)
    except LabelError:
        return
    assert_one(out, LABEL)


def test_damaged_exif_is_refused_rather_than_left_beside_the_label():
    exif = bytearray(mf.exif_user_comment(mf.aigc_json(wrap=True), prefix=True))
    exif[6 + 8 : 6 + 10] = b"\xff\xff"  # IFD0 entry count runs past the block
    data = mf.jpeg(exif=bytes(exif))
    with pytest.raises(LabelError, match="EXIF"):
        embed_label(data, LABEL)
