"""What outside tools (ExifTool, ffmpeg) and careful users see of written labels.

UTF-8 rather than JSON escapes; a WAV label no decoder takes for samples; an
EXIF UserComment holding the bare label object; no silent damage to a C2PA
manifest; ``embed --out`` keeping the input's permissions.
"""

from __future__ import annotations

import io
import os
import struct

import pytest
from click.testing import CliRunner

import media_factory as mf
from labelcheck.cli import main
from labelcheck.labels import embed_label, id3, read_labels, wav
from labelcheck.labels.embed import SignedMedia

CJK = dict(mf.LABEL, ContentProducer="生成AI公司")
MEDIA = {
    "jpeg": lambda: mf.jpeg(),
    "png": lambda: mf.png(),
    "webp": lambda: mf.webp(),
    "mp4": lambda: mf.mp4().data,
    "mp3 v2.3": lambda: mf.mp3(tag=mf.id3_tag([mf.id3_frame(b"TIT2", b"\x00t", 3)], 3)),
    "mp3 v2.4": lambda: mf.mp3(tag=mf.id3_tag([mf.id3_frame(b"TIT2", b"\x00t", 4)], 4)),
    "wav": lambda: mf.wav(),
}


@pytest.mark.parametrize("kind", list(MEDIA))
def test_non_ascii_label_is_written_as_text_not_escapes(kind):
    out = embed_label(MEDIA[kind](), CJK)
    assert b"\\u751f" not in out
    if kind == "mp3 v2.3":  # ID3v2.3 has no UTF-8: UTF-16 with a BOM
        assert "生成AI公司".encode("utf-16-le") in out
    else:
        assert "生成AI公司".encode("utf-8") in out
    [s] = read_labels(io.BytesIO(out))
    assert (s.status, s.detail["aigc"]) == ("declared", CJK)


def test_id3_frame_encodings():
    assert id3.txxx_frame(4, "生")[10] == 3 and id3.txxx_frame(3, "生")[10] == 1
    assert id3.txxx_frame(3, "ascii")[10] == 0  # ASCII stays ISO-8859-1, readable everywhere


def _chunk_order(data: bytes) -> list[bytes]:
    return [fourcc for fourcc, _s, _e in wav.chunks(data)]


def test_wav_label_goes_before_the_samples():
    original = mf.wav(extra_chunks=[(b"LIST", b"INFOISFT\x05\x00\x00\x00Lavf\x00\x00")])
    out = embed_label(original, mf.LABEL)
    order = _chunk_order(out)
    assert order.index(b"AIGC") < order.index(b"data") and order[-1] == b"LIST"
    assert mf.wav_samples(out) == mf.wav_samples(original)
    again = embed_label(out, dict(mf.LABEL, Label="2"))
    assert _chunk_order(again).count(b"AIGC") == 1 and mf.wav_samples(again) == mf.wav_samples(original)


def test_wav_with_an_empty_data_chunk_ends_with_its_data_chunk():
    """A decoder reading a size-0 data chunk to the end of the file gets no label bytes."""
    empty = mf.wav(0)
    out = embed_label(empty, mf.LABEL)
    fourcc, size = struct.unpack_from("<4sI", out, len(out) - 8)
    assert (fourcc, size) == (b"data", 0)
    assert mf.wav_samples(out) == b"" and [s.status for s in read_labels(io.BytesIO(out))] == ["declared"]


@pytest.mark.parametrize("unicode", [False, True])
def test_exif_user_comment_with_the_bare_label_is_read(unicode):
    blob = mf.exif_user_comment(mf.aigc_json(), unicode=unicode, prefix=True)
    [s] = read_labels(io.BytesIO(mf.jpeg(exif=blob)))
    assert (s.source, s.status, s.detail["aigc"]) == ("gb45438_exif", "declared", mf.LABEL)


def test_exif_comments_that_are_not_labels_are_ignored():
    for text in ('{"comment": "holiday"}', '{"Label": "vacation"}', "Label: 1", '{"Label": broken'):
        assert read_labels(io.BytesIO(mf.jpeg(exif=mf.exif_user_comment(text, prefix=True)))) == [], text


def test_embedding_blanks_a_bare_exif_label():
    data = mf.jpeg(exif=mf.exif_user_comment(mf.aigc_json(dict(mf.LABEL, Label="3")), prefix=True))
    out = embed_label(data, mf.LABEL)
    assert [(s.source, s.detail["aigc"]["Label"]) for s in read_labels(io.BytesIO(out))] == [("gb45438_xmp", "1")]


@pytest.fixture(scope="module")
def signed():
    return mf.c2pa_sign(mf.jpeg(48, 32))


def test_embed_refuses_a_file_with_a_c2pa_manifest(signed):
    with pytest.raises(SignedMedia, match="C2PA manifest.*assertion.dataHash.mismatch"):
        embed_label(signed, mf.LABEL)
    assert embed_label(signed, mf.LABEL, force=True) != signed


def test_cli_embed_refuses_signed_media_unless_forced(signed, tmp_path):
    src = tmp_path / "signed.jpg"
    src.write_bytes(signed)
    args = ["embed", str(src), "--label", "1", "--producer", "p", "--produce-id", "i"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1 and "C2PA manifest" in r.output and "--force" in r.output
    assert src.read_bytes() == signed  # untouched
    r = CliRunner().invoke(main, [*args, "--force"])
    assert r.exit_code == 0, r.output
    assert [s.source for s in read_labels(io.BytesIO(src.read_bytes()))].count("gb45438_xmp") == 1


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600])
def test_cli_embed_out_keeps_the_input_mode(tmp_path, mode):
    src, out = tmp_path / "a.png", tmp_path / "b.png"
    src.write_bytes(mf.png())
    os.chmod(src, mode)
    r = CliRunner().invoke(main, ["embed", str(src), "--label", "1", "--producer", "p", "--produce-id", "i", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert os.stat(out).st_mode & 0o777 == mode
    assert [s.status for s in read_labels(io.BytesIO(out.read_bytes()))] == ["declared"]


def test_cli_embed_out_replaces_a_symlink_not_its_target(tmp_path):
    src, victim, out = tmp_path / "a.png", tmp_path / "victim", tmp_path / "b.png"
    src.write_bytes(mf.png())
    victim.write_bytes(b"keep")
    out.symlink_to(victim)
    r = CliRunner().invoke(main, ["embed", str(src), "--label", "1", "--producer", "p", "--produce-id", "i", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert victim.read_bytes() == b"keep" and not out.is_symlink()
