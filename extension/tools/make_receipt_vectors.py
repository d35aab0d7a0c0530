"""Receipt test vectors for extension/test/receipt.test.js, made with the
server's own ledger code (labelcheck.ledger: C2SP signed notes and
checkpoints, RFC 9162 proofs), so the extension checks what the server signs
(docs/protocol.md §10).

    .venv/bin/python extension/tools/make_receipt_vectors.py [OUT.json]

Writes ``{"vkey", "other_vkey", "good": [receipt...], "bad": [{"why", "code",
"receipt"}...]}``; without OUT, extension/test/receipt-vectors.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from labelcheck.ledger import checkpoint, merkle, note
from labelcheck.util import b64

ORIGIN = "labelcheck.test/ledger"


def receipt(tree: merkle.MemoryHashes, index: int, size: int, signer: note.Signer, extra=()) -> dict:
    cp = checkpoint.Checkpoint(ORIGIN, size, tree.root(size))
    return {"index": index, "leaf_hash": b64.encode(tree.read_hashes([merkle.stored_hash_index(0, index)])[0]),
            "checkpoint": note.sign(cp.text(), signer, *extra).decode(),
            "inclusion": [b64.encode(h) for h in tree.prove_inclusion(index, size)]}


def flip(text: str) -> str:
    """Another valid base64 hash: the first byte changed."""
    raw = bytearray(b64.decode(text))
    raw[0] ^= 1
    return b64.encode(bytes(raw))


def vectors() -> dict:
    signer = note.Signer.generate(ORIGIN)
    other = note.Signer.generate(ORIGIN)  # same name, another key: another key hash
    witness = note.Signer.generate("witness.example")
    tree = merkle.MemoryHashes()
    for i in range(21):
        tree.append_data(f"entry {i}".encode())
    good = [receipt(tree, i, n, signer) for n, i in [(1, 0), (2, 1), (7, 6), (8, 3), (13, 12), (21, 0), (21, 16),
                                                      (21, 20)]]
    good.append(receipt(tree, 5, 21, signer, extra=(witness,)))  # a cosignature by a key not pinned is ignored
    base = receipt(tree, 9, 21, signer)
    bad = []

    def add(why, code, **changes):
        bad.append({"why": why, "code": code, "receipt": dict(base, **changes)})

    add("another leaf", "bad_proof", leaf_hash=flip(base["leaf_hash"]))
    add("another index", "bad_proof", index=8)
    add("index past the tree", "bad_proof", index=21)
    add("a proof hash changed", "bad_proof", inclusion=[base["inclusion"][0], flip(base["inclusion"][1]),
                                                       *base["inclusion"][2:]])
    add("proof too short", "bad_proof", inclusion=base["inclusion"][:-1])
    add("proof too long", "bad_proof", inclusion=[*base["inclusion"], base["inclusion"][0]])
    text, _, sigs = base["checkpoint"].partition("\n\n")
    add("size changed under the signature", "bad_signature", checkpoint=text.replace("\n21\n", "\n22\n") + "\n\n" + sigs)
    add("signed by another key only", "no_signature",
        checkpoint=checkpoint.sign_checkpoint(checkpoint.Checkpoint(ORIGIN, 21, tree.root(21)), other).decode())
    # The pinned key signing a tree head of another log (origin): not this ledger's.
    add("another log's checkpoint", "wrong_origin", checkpoint=note.sign(
        checkpoint.Checkpoint("other.example/log", 21, tree.root(21)).text(), signer).decode())
    add("no signature block", "malformed", checkpoint=text + "\n")
    add("leaf hash not base64", "malformed", leaf_hash="not base64!")
    add("leaf hash not canonical", "malformed", leaf_hash=base["leaf_hash"][:-2] + "B=")
    add("no inclusion proof", "malformed", inclusion=None)
    add("index not a number", "malformed", index="9")
    return {"vkey": signer.vkey, "other_vkey": other.vkey, "good": good, "bad": bad}


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "test" / "receipt-vectors.json"
    out.write_text(json.dumps(vectors(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
