"""Write the small crafted cases to ``tests/fuzz/corpus/`` (run from the repository root).

    .venv/bin/python tests/fuzz/make_corpus.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from fuzz import cases  # noqa: E402


def main() -> int:
    out = HERE / "corpus"
    out.mkdir(exist_ok=True)
    for name, make in cases.SMALL.items():
        data = make()
        assert len(data) < 20 << 10, f"{name} is {len(data)} bytes"
        (out / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
