"""C2SP signed notes (ledger.note): public vectors, round trips and refusals."""

from __future__ import annotations

import base64
import json
import struct

import pytest
from conftest import shared_file

from labelcheck.ledger import note
from labelcheck.ledger.note import NoteError, Signer, UnverifiedNoteError, Verifier, open_note, sign

# From C2SP signed-note.md (Verifier keys / Example).
C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = (
    "This is an example message.\n\n"
    "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
# From Go's golang.org/x/mod/sumdb/note example_test.go (a public test key).
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = GO_TEXT + (
    "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def sig_line(name: str, hash32: int, sig: bytes) -> str:
    return f"\u2014 {name} {base64.b64encode(struct.pack('>I', hash32) + sig).decode()}\n"


@pytest.fixture(scope="module")
def alice() -> Signer:
    return Signer.generate("alice.example/log")


@pytest.fixture(scope="module")
def bob() -> Signer:
    return Signer.generate("bob.example")


# --- public vectors ------------------------------------------------------------------


def test_c2sp_example_opens():
    v = Verifier.from_vkey(C2SP_VKEY)
    assert (v.name, v.hash, v.key_id) == ("example.com/foo", 0x530D903A, "example.com/foo+530d903a")
    opened = open_note(C2SP_NOTE.encode(), [v])
    assert opened.text == "This is an example message.\n"
    assert [(s.name, s.hash) for s in opened.sigs] == [("example.com/foo", 0x530D903A)]
    assert opened.unverified_sigs == []


def test_go_example_key_and_signature_are_byte_identical():
    signer = Signer.from_skey(GO_SKEY)
    assert signer.skey == GO_SKEY
    assert signer.vkey == GO_VKEY
    assert Verifier.from_vkey(GO_VKEY).vkey == GO_VKEY
    # Ed25519 is deterministic: the same key and text give Go's exact bytes.
    assert sign(GO_TEXT, signer) == GO_NOTE.encode()
    assert open_note(GO_NOTE.encode(), [signer.verifier()]).text == GO_TEXT


def test_shared_signed_note_vectors():
    data = json.loads(shared_file("vectors", "signed_note.json").read_text(encoding="utf-8"))
    for case in data["notes"]:
        v = Verifier.from_vkey(case["vkey"])
        msg = case["note"].encode("utf-8")
        if case["expect_valid"] is False:
            with pytest.raises(NoteError):
                open_note(msg, [v])
            continue
        opened = open_note(msg, [v])
        assert msg.decode().startswith(opened.text)
        assert [s.name for s in opened.sigs] == [v.name]
        if "skey" in case:
            signer = Signer.from_skey(case["skey"])
            assert signer.vkey == case["vkey"]
            assert sign(opened.text, signer) == msg
    derived = data["derived_checkpoints"]
    v = Verifier.from_vkey(derived["vkey"])
    for cp in derived["checkpoints"]:
        assert open_note(cp["note"].encode("utf-8"), [v]).text.split("\n")[1] == str(cp["size"])


# --- round trips -----------------------------------------------------------------------


def test_round_trip_keys_and_notes(alice, bob):
    assert Signer.from_skey(alice.skey) == alice
    assert Verifier.from_vkey(alice.vkey) == alice.verifier()
    assert alice.vkey.startswith(alice.key_id + "+")
    text = "labelcheck\n42\nsome body \u2713 unicode\n"
    msg = sign(text, alice, bob)
    opened = open_note(msg, [alice.verifier(), bob.verifier()])
    assert opened.text == text
    assert [s.name for s in opened.sigs] == [alice.name, bob.name]


def test_text_with_a_blank_line_round_trips(alice):
    text = "first\n\nsecond\n"
    assert open_note(sign(text, alice), [alice.verifier()]).text == text


def test_generate_refuses_bad_names():
    for name in ["", "a+b", "a b", "tab\tname", "nl\n"]:
        with pytest.raises(NoteError):
            Signer.generate(name)


# --- keys that fail to parse -------------------------------------------------------------

GOOD_PUB = base64.b64encode(b"\x01" + bytes(32)).decode()


def _vkey(name: str, key: bytes) -> str:
    return f"{name}+{note.key_hash(name, key):08x}+{base64.b64encode(key).decode()}"


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "justaname",
        "name+c74f20a3",  # no key
        "+c74f20a3+" + GOOD_PUB,  # empty name
        "Peter Neumann+c74f20a3+" + GOOD_PUB,  # white space in the name
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # 7 hex digits
        "PeterNeumann+c74f20a3x+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+g74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # not hex
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # not canonical lowercase
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # hash mismatch
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  # bad base64
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T!",
        "PeterNeumann+c74f20a3+",  # empty key
        _vkey("x", b"\x02" + bytes(32)),  # unknown algorithm
        _vkey("x", b"\x01" + bytes(31)),  # short key
        _vkey("x", b"\x01" + bytes(33)),  # long key
        _vkey("x", b"\x01"),  # algorithm only
    ],
)
def test_malformed_verifier_keys_refused(vkey):
    with pytest.raises(NoteError):
        Verifier.from_vkey(vkey)


@pytest.mark.parametrize(
    "skey",
    [
        "",
        GO_SKEY.replace("PRIVATE+KEY+", ""),
        GO_SKEY.replace("PRIVATE", "PUBLIC"),
        GO_SKEY.replace("+KEY+", "+KEYS+"),
        GO_SKEY.replace("c74f20a3", "c74f20a4"),  # hash does not match the derived public key
        GO_SKEY.replace("PeterNeumann", "Peter Neumann"),
        GO_SKEY.replace("PeterNeumann", "PaulNeumann"),  # hash covers the name
        GO_SKEY[:-1],  # bad base64
        GO_SKEY.replace("+AYEK", "+AoEK"),  # algorithm byte 0x02
        "PRIVATE+KEY+x+00000000+" + base64.b64encode(b"\x01" + bytes(31)).decode(),
        GO_VKEY,  # a verifier key is not a signer key
    ],
)
def test_malformed_signer_keys_refused(skey):
    with pytest.raises(NoteError):
        Signer.from_skey(skey)


def test_non_string_keys_refused():
    for bad in [None, b"bytes", 42]:
        with pytest.raises(NoteError):
            Verifier.from_vkey(bad)
        with pytest.raises(NoteError):
            Signer.from_skey(bad)
    with pytest.raises(NoteError):
        Verifier("x", 1, b"short")
    with pytest.raises(NoteError):
        Signer("x", 1, b"short")


# --- opening notes -----------------------------------------------------------------------


def test_unknown_signers_are_ignored(alice, bob):
    msg = sign("hello\n", bob, alice)
    opened = open_note(msg, [alice.verifier()])
    assert [s.name for s in opened.sigs] == [alice.name]
    assert [(s.name, s.hash) for s in opened.unverified_sigs] == [(bob.name, bob.hash)]


def test_known_key_with_bad_signature_refused(alice, bob):
    msg = sign("hello\n", alice, bob)
    tampered = msg.replace(b"hello", b"hullo")
    with pytest.raises(NoteError) as err:
        open_note(tampered, [alice.verifier()])
    assert not isinstance(err.value, UnverifiedNoteError)
    # A valid signature by another known key does not excuse a bad one.
    forged = sign("hello\n", bob) + sig_line(alice.name, alice.hash, bytes(64)).encode()
    with pytest.raises(NoteError) as err:
        open_note(forged, [alice.verifier(), bob.verifier()])
    assert not isinstance(err.value, UnverifiedNoteError)


def test_same_name_other_key_is_not_trusted(alice):
    impostor = Signer.generate(alice.name)
    with pytest.raises(UnverifiedNoteError):
        open_note(sign("hello\n", impostor), [alice.verifier()])


def test_note_without_known_signature_refused(alice, bob):
    with pytest.raises(UnverifiedNoteError) as err:
        open_note(sign("hello\n", bob), [alice.verifier()])
    assert err.value.note.text == "hello\n"
    assert [s.name for s in err.value.note.unverified_sigs] == [bob.name]
    with pytest.raises(UnverifiedNoteError):
        open_note(sign("hello\n", alice), [])


def test_duplicate_signatures_counted_once(alice):
    msg = sign("hello\n", alice)
    line = msg.split(b"\n\n", 1)[1]
    opened = open_note(msg + line, [alice.verifier()])
    assert len(opened.sigs) == 1


def test_ambiguous_verifiers_refused(alice):
    # Two different keys under one name and key hash: which one is meant is unknowable.
    twin = Verifier(alice.name, alice.hash, bytes(32))
    with pytest.raises(NoteError):
        open_note(sign("hello\n", alice), [alice.verifier(), twin])


def test_more_than_100_signatures_refused(alice):
    others = "".join(sig_line(f"other{i}", i, bytes(64)) for i in range(99))
    ok = sign("hello\n", alice) + others.encode()  # 100 signatures: accepted
    assert len(open_note(ok, [alice.verifier()]).unverified_sigs) == 99
    with pytest.raises(NoteError):
        open_note(ok + sig_line("one-too-many", 7, bytes(64)).encode(), [alice.verifier()])


@pytest.mark.parametrize("char", ["\x00", "\t", "\r", "\x1b", "\x1f"])
def test_control_characters_refused(alice, char):
    with pytest.raises(NoteError):
        sign(f"hello{char}world\n", alice)
    good = sign("hello world\n", alice)
    with pytest.raises(NoteError):
        open_note(good.replace(b" ", char.encode(), 1), [alice.verifier()])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m.replace(b"\n\n", b"\n"),  # no blank line before the signatures
        lambda m: m[:-1],  # signature block not ending in a newline
        lambda m: m.split(b"\n\n")[0] + b"\n\n",  # empty signature block
        lambda m: m.replace("\u2014 ".encode(), b"- "),  # not an em dash
        lambda m: m.replace("\u2014 ".encode(), "\u2014".encode()),  # no space after it
        lambda m: m[:-3] + b"!=\n",  # bad base64
        lambda m: m.split(b"\n\n")[0] + b"\n\n" + "\u2014 x AAAA\n".encode(),  # shorter than hash + 1
        lambda m: m.split(b"\n\n")[0] + b"\n\n" + "\u2014 x \n".encode(),  # no signature
        lambda m: m.split(b"\n\n")[0] + b"\n\n" + "\u2014 a+b AAAAAAAA\n".encode(),  # bad name
        lambda m: m + b"\n",  # a trailing empty line
        lambda m: b"\xff" + m,  # not UTF-8
    ],
)
def test_malformed_notes_refused(alice, mutate):
    msg = sign("hello\n", alice)
    with pytest.raises(NoteError):
        open_note(mutate(msg), [alice.verifier()])


def test_text_must_end_in_newline(alice):
    with pytest.raises(NoteError):
        sign("no newline", alice)
    with pytest.raises(NoteError):
        open_note("not bytes", [alice.verifier()])
