"""Fuzzing every label reader: no exception, bounded time and memory per input.

Inputs are mutations (flipped, inserted, deleted, duplicated bytes,
truncation) of labelled media of every supported container, of XMP and EXIF
blocks, of a C2PA-signed JPEG, and of the hostile corpus. A short run is
part of the normal suite; ``LABELCHECK_SOAK=1`` runs a long one and, when
atheris is installed, coverage-guided fuzzing of ``read_labels``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import media_factory as mf
from fuzz import harness
from labelcheck.labels import embed_label

CORPUS = Path(__file__).resolve().parent / "fuzz" / "corpus"
SOAK = bool(os.environ.get("LABELCHECK_SOAK"))
SECONDS, MEGABYTES = 1.0, 50


@lru_cache(maxsize=None)
def seeds() -> dict[str, list[bytes]]:
    media = [mf.jpeg(16, 16, exif=mf.exif_user_comment(mf.aigc_json(), prefix=True)), mf.png(8, 8), mf.webp(8, 8),
             mf.mp4(2, 64).data, mf.mp4(2, 64, moov_first=False).data, mf.wav(64),
             mf.mp3(2, tag=mf.id3_tag([mf.id3_frame(b"TIT2", b"\x00t", 4)], 4)), mf.mp3(2)]
    labelled = [embed_label(m, mf.LABEL) for m in media]
    return {
        "read_labels": labelled + [p.read_bytes() for p in sorted(CORPUS.iterdir())],
        "xmp": [mf.xmp_packet(aigc=mf.aigc_json(), dst=mf.IPTC + "trainedAlgorithmicMedia"),
                mf.xmp_packet(aigc=mf.aigc_json(), attribute=True)],
        "exif": [mf.exif_user_comment(mf.aigc_json(wrap=True), prefix=True), mf.exif_user_comment(mf.aigc_json(), ">", unicode=True)],
        "c2pa": [mf.c2pa_sign(mf.jpeg(16, 16))],
    }


@st.composite
def mutated(draw, reader: str) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds()[reader])))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "duplicate", "truncate", "int"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 256))] * draw(st.integers(1, 8))
        elif op == "truncate":
            del data[at:]
        elif op == "int" and len(data) >= at + 4:  # a length field set to an edge value
            data[at : at + 4] = draw(st.sampled_from([b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x00\x00\x01"]))
    return bytes(data[: 256 << 10])


def _fuzz(reader: str, examples: int):
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=mutated(reader))
    def run(data):
        harness.check(reader, data, seconds=SECONDS, megabytes=MEGABYTES)

    run()


SHORT = {"read_labels": 1000, "xmp": 300, "exif": 300, "c2pa": 60}


@pytest.mark.parametrize("reader", list(SHORT))
def test_fuzz_short(reader):
    _fuzz(reader, SHORT[reader])


@pytest.mark.parametrize("reader", ["read_labels", "xmp", "exif"])
def test_random_bytes_behind_every_magic_number(reader):
    magics = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x01\x00WEBP", b"RIFF\x00\x00\x01\x00WAVE",
              b"\x00\x00\x00\x18ftypisom", b"ID3\x04\x00\x00", b"ID3\x03\x00\x80", b"Exif\x00\x00II*\x00", b"<x:xmpmeta>AIGC"]

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(magic=st.sampled_from(magics), tail=st.binary(max_size=512))
    def run(magic, tail):
        harness.check(reader, magic + tail, seconds=SECONDS, megabytes=MEGABYTES)

    run()


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="long fuzzing only with LABELCHECK_SOAK=1")
@pytest.mark.parametrize("reader", list(SHORT))
def test_fuzz_soak(reader):
    _fuzz(reader, SHORT[reader] * 40)


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="long fuzzing only with LABELCHECK_SOAK=1")
def test_atheris_soak(tmp_path):
    pytest.importorskip("atheris")
    work = tmp_path / "found"
    shutil.copytree(CORPUS, work)
    seconds = int(os.environ.get("LABELCHECK_FUZZ_SECONDS", "120"))
    script = Path(__file__).resolve().parent / "fuzz" / "atheris_labels.py"
    r = subprocess.run([sys.executable, str(script), f"-max_total_time={seconds}", "-timeout=5", "-rss_limit_mb=1024", str(work)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=seconds + 120)
    assert r.returncode == 0, r.stderr[-4000:]
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("timeout-*"))
