"""Plain files are read with pread: same labels, the caller's position kept.

``read_labels`` reads a file opened with ``open(path, "rb")`` (or an
unbuffered ``FileIO``) with ``os.pread`` instead of seek and read; every
other stream takes the seek path. Both must give the same signals and leave
the file where the caller had it, whatever the format.
"""

from __future__ import annotations

import io
import os
import struct

import pytest

import media_factory as mf
from labelcheck.labels import _io, embed_label, read_labels
from labelcheck.labels.signals import Malformed


def media() -> dict[str, bytes]:
    return {
        "jpeg": embed_label(mf.jpeg(), mf.LABEL),
        "mp4": embed_label(mf.mp4(moov_first=False).data, mf.LABEL),
        "mp4 moov first": embed_label(mf.mp4().data, mf.LABEL),
        "png": embed_label(mf.png(), mf.LABEL),
        "wav": embed_label(mf.wav(), mf.LABEL),
    }


@pytest.mark.parametrize("name", list(media()))
def test_every_kind_of_handle_reads_alike_and_keeps_its_position(tmp_path, name):
    data = media()[name]
    path = tmp_path / "m"
    path.write_bytes(data)
    expected = [s.to_dict() for s in read_labels(io.BytesIO(data))]
    assert [s["detail"].get("aigc") for s in expected] == [mf.LABEL]
    openers = {
        "rb": lambda: open(path, "rb"),  # pread
        "unbuffered": lambda: open(path, "rb", buffering=0),  # pread
        "r+b": lambda: open(path, "r+b"),  # seek and read: its buffer may hold unwritten bytes
    }
    for how, opener in openers.items():
        with opener() as fh:
            fh.seek(7)
            fh.read(3)
            assert [s.to_dict() for s in read_labels(fh)] == expected, how
            assert fh.tell() == 10, how
            assert fh.read(5) == data[10:15], how  # the buffered position is still right


def test_which_handles_are_read_with_pread(tmp_path):
    path = tmp_path / "m"
    path.write_bytes(b"x" * 10)
    with open(path, "rb") as fh:
        assert _io.direct_fd(fh) == fh.fileno()
    with open(path, "rb", buffering=0) as fh:
        assert _io.direct_fd(fh) == fh.fileno()
    with open(path, "r+b") as fh:
        assert _io.direct_fd(fh) is None
    assert _io.direct_fd(io.BytesIO(b"x")) is None
    assert _io.direct_fd(io.BufferedReader(io.BytesIO(b"x"))) is None
    fh = open(path, "rb")
    fh.close()
    assert _io.direct_fd(fh) is None
    assert read_labels(fh) == []  # a closed file is not a label, nor an error


def test_pread_reads_to_the_end_and_no_further(tmp_path):
    path = tmp_path / "m"
    path.write_bytes(bytes(range(256)) * 100)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert _io.pread(fd, 100, 25_550) == (bytes(range(256)) * 100)[25_550:]
        assert _io.pread(fd, 10, 25_600) == b""
        assert _io.pread(fd, 4, 1) == b"\x01\x02\x03\x04"
    finally:
        os.close(fd)


def test_truncated_media_read_by_pread_is_reported(tmp_path):
    # The MP4's moov cut short: the window learns the end from the short read.
    data = media()["mp4"]
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[:-40])
    with open(path, "rb") as fh:
        [signal] = read_labels(fh)
    assert signal.status == "malformed"
    assert [s.to_dict() for s in read_labels(io.BytesIO(data[:-40]))] == [signal.to_dict()]


def test_a_pipe_is_not_read(tmp_path):
    r, w = os.pipe()
    os.write(w, embed_label(mf.jpeg(), mf.LABEL)[:1000])
    os.close(w)
    with open(r, "rb") as fh:
        assert read_labels(fh) == []  # not seekable: nothing read, nothing raised


def test_window_over_pread_raises_on_short_data(tmp_path):
    path = tmp_path / "m"
    path.write_bytes(b"a" * 100)
    with open(path, "rb") as fh:
        w = _io.Window(fh, "gb45438_mp4", fd=fh.fileno())
        assert w.get(90, 10, "tail") == b"a" * 10
        with pytest.raises(Malformed) as err:
            w.get(95, 10, "past the end")
        assert err.value.code == "truncated"
        assert w.size == 100


def _box_edges(data: bytes) -> list[int]:
    """Every top-level box boundary of ``data`` and each box's header end."""
    edges, pos = [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        edges += [pos, pos + 8]
        if size < 8:
            break
        pos += size
    return edges + [pos]


def _mp4_layouts() -> dict[str, bytes]:
    big = 3 * _io.BLOCK  # mdat past the first block: its end is checked by a read, not the head
    last = embed_label(mf.mp4(moov_first=False, mdat_padding=big).data, mf.LABEL)
    first = embed_label(mf.mp4(mdat_padding=big).data, mf.LABEL)
    large = struct.pack(">I4sQ", 1, b"free", 16 + 20) + bytes(20)  # a 64-bit size
    return {
        "moov last": last,
        "faststart": first,
        "moov last, 64-bit box and stray bytes": large + last + b"\x00\x00\x00",
        "faststart, then a box to the end": first + struct.pack(">I4s", 0, b"free") + bytes(100),
        "moov alone, then an empty box": last[last.index(b"moov") - 4 :] + struct.pack(">I4s", 8, b"free"),
        "64-bit mdat, then moov": struct.pack(">I4sQ", 1, b"mdat", 16 + big) + bytes(big) + last[last.index(b"moov") - 4 :],
    }


@pytest.mark.parametrize("name", list(_mp4_layouts()))
def test_mp4_read_with_pread_reports_cut_files_like_a_known_size(tmp_path, name):
    # A plain file's end is found by the walk's own reads, not by its size:
    # every cut must give the verdict (truncated, bad_length, the label, or
    # nothing) and the message the size would, as the BytesIO path does.
    data = _mp4_layouts()[name]
    cuts = {c + d for c in _box_edges(data) for d in (-9, -8, -7, -1, 0, 1, 7, 8, 9)}
    cuts |= {_io.BLOCK + d for d in (-8, -1, 0, 1)} | {len(data)}
    path = tmp_path / "cut.mp4"
    seen = set()
    for cut in sorted(c for c in cuts if 0 < c <= len(data)):
        path.write_bytes(data[:cut])
        expected = [s.to_dict() for s in read_labels(io.BytesIO(data[:cut]))]
        with open(path, "rb") as fh:
            assert [s.to_dict() for s in read_labels(fh)] == expected, cut
        seen.add(tuple(s["reasons"][-1] if s["status"] == "malformed" else s["status"] for s in expected))
    assert ("declared",) in seen and ("bad_length",) in seen  # the cuts do reach both outcomes


@pytest.mark.parametrize("name", ["moov last", "faststart", "64-bit mdat, then moov"])
def test_mp4_read_with_pread_needs_no_size_lookup(tmp_path, monkeypatch, name):
    # Its end comes from the reads the walk makes anyway: no fstat per file.
    path = tmp_path / "m.mp4"
    path.write_bytes(_mp4_layouts()[name])
    fstat = os.fstat
    with open(path, "rb") as fh, monkeypatch.context() as patch:
        media = fh.fileno()

        def no_fstat(fd, *args, **kwargs):
            assert fd != media, "the media file's size was looked up"
            return fstat(fd, *args, **kwargs)  # others' (pytest's output capture)

        patch.setattr(os, "fstat", no_fstat)
        signals = read_labels(fh)
    assert [s.detail.get("aigc") for s in signals] == [mf.LABEL]
