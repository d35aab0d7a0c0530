"""Label reading time on big media, against reading the same files' first 64 KB.

    scripts/bench labels [--mp4-mb 200] [--jpeg-mb 20] [--runs 2000] [--dir .bench]

Two labelled files are generated once under ``--dir`` (git-ignored): an MP4
whose ``moov`` (with the GB 45438 label) sits after a ``--mp4-mb`` MB
``mdat``, and a JPEG of about ``--jpeg-mb`` MB (noise, so the scan data is
big), plus 1 MB twins of both with the same layout.

Method. Each timed call opens the file, does its work and closes it, on
both sides: ``read_labels`` on the new handle, or ``read(65536)`` on it.
Opening is part of what a caller holding a path pays for either job, and
timing it on both sides keeps the two measures alike. The same comparison
on one already-open handle (``read_labels`` against ``seek(0)`` plus the
64 KB read) is printed beside it, so the fixed cost of ``open`` cannot hide
how much work the reader itself does. Both sides run ``--runs`` times,
interleaved A B B A so neither always follows the other, after one untimed
call each (page cache warm for both). The median and the 90th percentile
of each side are reported; the target ratio is median read_labels over
median first-64-KB from the same run (aim: at most 2), and the ratio of
the 90th percentiles is printed too. ``vs 1 MB`` compares read_labels on
the big file with its 1 MB twin (about 1 when only metadata is read,
whatever the size). Prints a table, then one JSON line.

What is measured is the common case for labelcheck: both files carry the
label as ``embed_label`` writes it, so the JPEG's XMP packet and the MP4's
``udta`` are recognised byte for byte (``labels.xmp_fast``,
``isobmff._written_value``); a packet or box of another shape is parsed
(expat, the box walk) and costs more. The files are opened with
``open(path, "rb")``, which the reader reads with ``pread``; the MP4 walk
learns where the file ends from those reads (the block at a box's end holds
the next header), so no ``fstat`` is made.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import media_factory as mf  # noqa: E402

from labelcheck.labels import embed_label, read_labels  # noqa: E402

LABEL = dict(mf.LABEL, ReservedCode1="urn:uuid:00000000-0000-4000-8000-000000000000")
HEAD = 64 << 10


def make_mp4(path: Path, megabytes: int) -> None:
    """ftyp, a big mdat (samples then zeros), then moov holding the label."""
    small = embed_label(mf.mp4(moov_first=False).data, LABEL)
    ftyp_len = struct.unpack(">I", small[:4])[0]
    mdat_len = struct.unpack(">I", small[ftyp_len : ftyp_len + 4])[0]
    padding = max(0, (megabytes << 20) - mdat_len)
    with open(path, "wb") as fh:
        fh.write(small[:ftyp_len])
        fh.write(struct.pack(">I4s", mdat_len + padding, b"mdat"))
        fh.write(small[ftyp_len + 8 : ftyp_len + mdat_len])
        zeros = bytes(1 << 20)
        for _ in range(padding >> 20):
            fh.write(zeros)
        fh.write(bytes(padding & ((1 << 20) - 1)))
        fh.write(small[ftyp_len + mdat_len :])  # moov: stco offsets unchanged


def make_jpeg(path: Path, megabytes: int) -> None:
    """A noise JPEG of about ``megabytes`` MB, labelled."""
    from PIL import Image

    pixels = max(64 * 64, int((megabytes << 20) / 1.17))  # noise at q95 is ~1.17 bytes/pixel
    width = max(64, int((pixels * 4 / 3) ** 0.5))
    height = max(64, pixels // width)
    im = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=95)
    path.write_bytes(embed_label(out.getvalue(), LABEL))


def ensure(path: Path, make, mb: int) -> Path:
    """``path``, generated when missing or far from ``mb`` MB."""
    if not path.exists() or abs(path.stat().st_size - (mb << 20)) > (mb << 20) // 4:
        print(f"generating {path} ...", file=sys.stderr)
        make(path, mb)
    return path


def timed_pair(a, b, runs: int) -> tuple[list[float], list[float]]:
    """Wall times of ``runs`` calls of ``a`` and of ``b``, interleaved A B B A."""
    ta, tb = [], []
    clock = time.perf_counter
    for i in range(runs):
        first, second, t_first, t_second = (a, b, ta, tb) if i % 2 == 0 else (b, a, tb, ta)
        start = clock()
        first()
        mid = clock()
        second()
        end = clock()
        t_first.append(mid - start)
        t_second.append(end - mid)
    return ta, tb


def quantile(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def check(path: Path) -> None:
    with open(path, "rb") as fh:
        found = read_labels(fh)
    if [s.status for s in found] != ["declared"]:
        raise SystemExit(f"{path}: expected one declared label, got {[s.to_dict() for s in found]}")


def measure(path: Path, runs: int) -> dict:
    """Medians and 90th percentiles, opening the file on both sides and on one open handle."""
    check(path)

    def labels():
        with open(path, "rb") as fh:
            read_labels(fh)

    def head():
        with open(path, "rb") as fh:
            fh.read(HEAD)

    out = {"bytes": path.stat().st_size}
    with open(path, "rb") as handle:

        def labels_on_handle():
            read_labels(handle)

        def head_on_handle():
            handle.seek(0)
            handle.read(HEAD)

        for mode, (a, b) in {"": (labels, head), "handle_": (labels_on_handle, head_on_handle)}.items():
            a(), b()  # untimed: warm the page cache and the code paths
            ta, tb = timed_pair(a, b, runs)
            out[f"{mode}read_labels_s"], out[f"{mode}first_64k_s"] = quantile(ta, 0.5), quantile(tb, 0.5)
            out[f"{mode}read_labels_p90_s"], out[f"{mode}first_64k_p90_s"] = quantile(ta, 0.9), quantile(tb, 0.9)
            out[f"{mode}ratio"] = out[f"{mode}read_labels_s"] / out[f"{mode}first_64k_s"]
            out[f"{mode}ratio_p90"] = out[f"{mode}read_labels_p90_s"] / out[f"{mode}first_64k_p90_s"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mp4-mb", type=int, default=200, help="MP4 size in MB (default 200)")
    ap.add_argument("--jpeg-mb", type=int, default=20, help="JPEG size in MB (default 20)")
    ap.add_argument("--runs", type=int, default=2000, help="timed runs per measure (median and p90 reported)")
    ap.add_argument("--dir", default=str(ROOT / ".bench"), help="where the files are generated")
    args = ap.parse_args(argv)

    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "mp4": (make_mp4, args.mp4_mb, "mp4"),
        "jpeg": (make_jpeg, args.jpeg_mb, "jpg"),
    }
    results = {}
    for name, (make, mb, ext) in files.items():
        big, small = (ensure(folder / f"labels-{size}mb.{ext}", make, size) for size in (mb, 1))
        results[name] = measure(big, args.runs)
        results[name]["vs_1mb"] = results[name]["read_labels_s"] / measure(small, args.runs)["read_labels_s"]

    us = 1e6
    print(f"{'':<18}{'MB':>7}{'read_labels µs':>20}{'first 64 KB µs':>20}{'ratio':>13}{'vs 1 MB':>9}")
    print(f"{'':<18}{'':>7}{'median / p90':>20}{'median / p90':>20}{'median / p90':>13}")
    for name, r in results.items():
        for mode, label in (("", "open+close"), ("handle_", "open handle")):
            print(
                f"{name + ' ' + label:<18}{r['bytes'] / (1 << 20):>7.1f}"
                f"{r[mode + 'read_labels_s'] * us:>12.1f} / {r[mode + 'read_labels_p90_s'] * us:<5.1f}"
                f"{r[mode + 'first_64k_s'] * us:>12.1f} / {r[mode + 'first_64k_p90_s'] * us:<5.1f}"
                f"{r[mode + 'ratio']:>7.2f} / {r[mode + 'ratio_p90']:<4.2f}"
                + (f"{r['vs_1mb']:>8.2f}" if not mode else "")
            )
    worst = max(r["ratio"] for r in results.values())
    print(f"aim: median ratio (open+close) <= 2; worst {worst:.2f}")
    print(json.dumps({
        "benchmark": "labels", "target_ratio": 2.0, "worst_ratio": round(worst, 3),
        **{f"{n}_{k}": (round(v, 7) if isinstance(v, float) else v) for n, r in results.items() for k, v in r.items()},
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
