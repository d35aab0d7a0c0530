"""C2SP tlog-checkpoint text, strict parsing, signing and opening (ledger.checkpoint)."""

from __future__ import annotations

import base64
import json

import pytest
from conftest import shared_file

from labelcheck.ledger import merkle
from labelcheck.ledger.checkpoint import Checkpoint, CheckpointError, open_checkpoint, sign_checkpoint
from labelcheck.ledger.note import NoteError, Signer, UnverifiedNoteError, Verifier

ROOT = base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
SPEC_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"

# Derived from the RFC 6962 8-leaf tree, signed with Go's public test key PeterNeumann.
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
TREE8_NOTE = (
    "example.com/rfc6962-test-tree\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\n"
    "\u2014 PeterNeumann x08go3YoGKXcVPo+Ahw0I66RUllE0XeROymrPaJZlXWiPZpX9c9D73aZJVehbExUFBluIGVFcIboyWQ15tEyALIsxQI=\n"
)
TREE8_ROOT = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate("labelcheck.example/ledger")


def test_text_matches_the_spec_example():
    cp = Checkpoint("example.com/behind-the-sofa", 20852163, ROOT)
    assert cp.text() == SPEC_TEXT
    assert Checkpoint.parse(SPEC_TEXT) == cp


def test_extensions_round_trip():
    cp = Checkpoint("log", 0, merkle.EMPTY_ROOT, ("ext one", "\u2713 two"))
    assert cp.text() == f"log\n0\n{base64.b64encode(merkle.EMPTY_ROOT).decode()}\next one\n\u2713 two\n"
    assert Checkpoint.parse(cp.text()) == cp
    assert Checkpoint.parse(cp.text().encode()) == cp


B64 = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "log\n1\n",  # no root line
        f"log\n1\n{B64}",  # no final newline
        f"\n1\n{B64}\n",  # empty origin
        f"log\n01\n{B64}\n",  # leading zero
        f"log\n00\n{B64}\n",
        f"log\n+1\n{B64}\n",
        f"log\n-1\n{B64}\n",
        f"log\n 1\n{B64}\n",
        f"log\n1 \n{B64}\n",
        f"log\n\n{B64}\n",  # empty size
        f"log\n0x10\n{B64}\n",
        f"log\n1e3\n{B64}\n",
        f"log\n\u0661\n{B64}\n",  # a non-ASCII digit
        f"log\n9223372036854775808\n{B64}\n",  # 2**63: beyond Go's int64
        "log\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",  # unpadded
        "log\n1\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n",  # URL-safe alphabet
        "log\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n",  # non-canonical trailing bits
        "log\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n",  # 31 bytes
        f"log\n1\n{base64.b64encode(bytes(33)).decode()}\n",  # 33 bytes
        f"log\n1\n {B64}\n",
        f"log\n1\n{B64}\n\n",  # empty extension line
        f"log\n1\n{B64}\next\n\n",
        f"lo\tg\n1\n{B64}\n",  # control character in the origin
        f"log\n1\n{B64}\ne\rxt\n",
    ],
)
def test_strict_parsing_refuses(text):
    with pytest.raises(CheckpointError):
        Checkpoint.parse(text)


def test_size_bounds():
    top = 2**63 - 1
    assert Checkpoint.parse(f"log\n{top}\n{B64}\n").size == top
    assert Checkpoint.parse(f"log\n0\n{B64}\n").size == 0


@pytest.mark.parametrize(
    "args",
    [
        ("", 1, ROOT),
        ("a\nb", 1, ROOT),
        (None, 1, ROOT),
        ("log", -1, ROOT),
        ("log", 2**63, ROOT),
        ("log", 1.0, ROOT),
        ("log", True, ROOT),
        ("log", "1", ROOT),
        ("log", 1, ROOT[:31]),
        ("log", 1, ROOT.hex()),
        ("log", 1, ROOT, ("",)),
        ("log", 1, ROOT, ("two\nlines",)),
        ("log", 1, ROOT, "a string, not lines"),
        ("log", 1, ROOT, (3,)),
    ],
)
def test_invalid_checkpoints_cannot_be_built(args):
    with pytest.raises(CheckpointError):
        Checkpoint(*args)


def test_parse_refuses_non_text():
    with pytest.raises(CheckpointError):
        Checkpoint.parse(b"\xfflog\n1\n" + B64.encode() + b"\n")
    with pytest.raises(CheckpointError):
        Checkpoint.parse(None)


def test_sign_and_open(signer):
    cp = Checkpoint(signer.name, 12345, ROOT)
    msg = sign_checkpoint(cp, signer)
    assert msg.startswith((cp.text() + "\n\u2014 " + signer.name + " ").encode())
    assert open_checkpoint(msg, signer.verifier()) == cp
    assert open_checkpoint(msg, Verifier.from_vkey(signer.vkey), origin=signer.name) == cp
    assert open_checkpoint(msg, [Signer.generate("other").verifier(), signer.verifier()]) == cp


def test_open_refuses_wrong_origin_key_or_tampering(signer):
    msg = sign_checkpoint(Checkpoint(signer.name, 7, ROOT), signer)
    with pytest.raises(CheckpointError):
        open_checkpoint(msg, signer.verifier(), origin="another.example/log")
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(msg, Signer.generate(signer.name).verifier())
    with pytest.raises(NoteError):
        open_checkpoint(msg.replace(b"\n7\n", b"\n8\n"), signer.verifier())


def test_a_signed_note_that_is_no_checkpoint_is_refused(signer):
    from labelcheck.ledger.note import sign

    with pytest.raises(CheckpointError):
        open_checkpoint(sign("log\n01\n" + B64 + "\n", signer), signer.verifier())


def test_derived_rfc6962_checkpoint_from_go_test_key():
    cp = open_checkpoint(TREE8_NOTE.encode(), Verifier.from_vkey(PETER_VKEY), origin="example.com/rfc6962-test-tree")
    assert (cp.size, cp.root) == (8, TREE8_ROOT)
    # Ed25519 is deterministic: signing the same checkpoint gives the same bytes.
    assert sign_checkpoint(cp, Signer.from_skey(PETER_SKEY)) == TREE8_NOTE.encode()


def test_shared_derived_checkpoints():
    data = json.loads(shared_file("vectors", "signed_note.json").read_text(encoding="utf-8"))
    derived = data["derived_checkpoints"]
    v = Verifier.from_vkey(derived["vkey"])
    tree = merkle.MemoryHashes()
    for leaf in json.loads(shared_file("vectors", "rfc6962.json").read_text())["leaf_inputs"]:
        tree.append_data(bytes.fromhex(leaf))
    for case in derived["checkpoints"]:
        cp = open_checkpoint(case["note"].encode("utf-8"), v)
        assert cp.size == case["size"]
        assert base64.b64encode(cp.root).decode() == case["root_b64"]
        assert cp.root == tree.root(cp.size)


def test_checkpoints_chain_with_consistency_proofs(signer):
    """The intended use: two signed checkpoints of one growing log, one proof between them."""
    tree = merkle.MemoryHashes()
    notes = []
    for size in (3, 10):
        while tree.size < size:
            tree.append_data(f"entry {tree.size}".encode())
        notes.append(sign_checkpoint(Checkpoint(signer.name, tree.size, tree.root()), signer))
    old, new = (open_checkpoint(n, signer.verifier(), origin=signer.name) for n in notes)
    merkle.verify_consistency(old.size, new.size, old.root, new.root, tree.prove_consistency(old.size, new.size))
