"""Coverage-guided fuzzing of ``read_labels`` with atheris (libFuzzer), for long runs.

    .venv/bin/python tests/fuzz/atheris_labels.py -max_total_time=600 WORKDIR tests/fuzz/corpus

libFuzzer adds what it finds to the first folder given: pass a scratch
folder first, the kept corpus after it. Each input must be read without an
exception, in under a second, and give a merged result of a few KB; a
failing input is written as ``crash-*`` in the current folder.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

with atheris.instrument_imports():
    from fuzz import harness

SECONDS = 1.0


def one_input(data: bytes) -> None:
    start = time.perf_counter()
    for reader in ("read_labels", "xmp", "exif"):
        harness.READERS[reader](data)
    took = time.perf_counter() - start
    if took > SECONDS:
        raise AssertionError(f"{took:.2f} s on {len(data)} bytes")


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
