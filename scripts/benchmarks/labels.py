"""Label reading time on big media, against reading the same files' first 64 KB.

    scripts/bench labels [--mp4-mb 200] [--jpeg-mb 20] [--runs 30] [--dir .bench]

Two labelled files are generated once under ``--dir`` (git-ignored): an MP4
whose ``moov`` (with the GB 45438 label) sits after a ``--mp4-mb`` MB
``mdat``, and a JPEG of about ``--jpeg-mb`` MB (noise, so the scan data is
big), plus 1 MB twins of both with the same layout. Each measure opens the
file and either runs ``read_labels`` or reads the first 64 KB; the two run
alternately and the best of ``--runs`` wall times counts (page cache warm
for both sides). The ratio read_labels / first-64-KB is the target (aim: at
most 2); ``vs 1 MB`` compares read_labels on the big file with its 1 MB
twin (about 1 when only metadata is read, whatever the size). Prints a
table, then one JSON line.
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

from server.labels import embed_label, read_labels  # noqa: E402

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


def best_pair(a, b, runs: int) -> tuple[float, float]:
    """Best wall time of ``a`` and of ``b``, run alternately so both see the same machine."""
    best_a = best_b = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        a()
        mid = time.perf_counter()
        b()
        end = time.perf_counter()
        best_a, best_b = min(best_a, mid - start), min(best_b, end - mid)
    return best_a, best_b


def measure(path: Path, runs: int) -> dict:
    def labels():
        with open(path, "rb") as fh:
            found = read_labels(fh)
        if [s.status for s in found] != ["declared"]:
            raise SystemExit(f"{path}: expected one declared label, got {[s.to_dict() for s in found]}")

    def head():
        with open(path, "rb") as fh:
            fh.read(HEAD)

    labels()
    head()
    t_labels, t_head = best_pair(labels, head, runs)
    return {"bytes": path.stat().st_size, "read_labels_s": t_labels, "first_64k_s": t_head, "ratio": t_labels / t_head}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mp4-mb", type=int, default=200, help="MP4 size in MB (default 200)")
    ap.add_argument("--jpeg-mb", type=int, default=20, help="JPEG size in MB (default 20)")
    ap.add_argument("--runs", type=int, default=500, help="timed runs per measure; the best counts")
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

    print(f"{'file':<8}{'MB':>9}{'read_labels µs':>16}{'first 64 KB µs':>16}{'ratio':>8}{'vs 1 MB':>9}")
    for name, r in results.items():
        print(f"{name:<8}{r['bytes'] / (1 << 20):>9.1f}{r['read_labels_s'] * 1e6:>16.0f}{r['first_64k_s'] * 1e6:>16.0f}{r['ratio']:>8.2f}{r['vs_1mb']:>9.2f}")
    worst = max(r["ratio"] for r in results.values())
    print(f"aim: ratio <= 2 (worst {worst:.2f})")
    print(json.dumps({
        "benchmark": "labels", "target_ratio": 2.0, "worst_ratio": round(worst, 3),
        **{f"{n}_{k}": (round(v, 7) if isinstance(v, float) else v) for n, r in results.items() for k, v in r.items()},
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
