"""A separate process that appends to a ledger, for crash and concurrency tests.

    python tests/ledger_child.py DATA_DIR ORIGIN TAG COUNT [BATCH] [START_FILE]

Appends COUNT records (forever when COUNT < 0) of BATCH records each,
tagged ``{"tag": TAG, "n": k}``, and prints one line per acknowledged entry,
``<index> <base64 leaf hash> <k>``, flushed as soon as append() returns, so the
parent knows exactly what was acknowledged. When START_FILE is given it waits
for that file to exist first, so several children start together.
"""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labelcheck.ledger import Ledger  # noqa: E402


def main(argv: list[str]) -> None:
    data_dir, origin, tag, count = argv[0], argv[1], argv[2], int(argv[3])
    batch = int(argv[4]) if len(argv) > 4 else 1
    start_file = argv[5] if len(argv) > 5 else None
    ledger = Ledger.open_dir(data_dir, origin=origin)
    if start_file:
        while not os.path.exists(start_file):
            time.sleep(0.005)
    out = sys.stdout
    k = 0
    while count < 0 or k < count:
        records = [{"tag": tag, "n": k + i} for i in range(batch)]
        receipts = ledger.append(records)
        out.write("".join(f"{r.index} {base64.b64encode(r.leaf_hash).decode()} {k + i}\n"
                          for i, r in enumerate(receipts)))
        out.flush()
        k += batch
        if k % 50 == 0:
            ledger.checkpoint()  # also exercise signing under the kill
    ledger.close()


if __name__ == "__main__":
    main(sys.argv[1:])
