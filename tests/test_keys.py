"""Producer keys: RFC 8032 Ed25519 vectors, C2SP key formats, key files."""

from __future__ import annotations

import os
import stat

import nacl.signing
import pytest

from labelcheck.ledger import note
from labelcheck.ledger import keyfile as keys

# RFC 8032 §7.1, TEST 1-3: (secret key, public key, message, signature), hex.
RFC8032_VECTORS = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555f"
        "b8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da08"
        "5ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18"
        "ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]

# Go's golang.org/x/mod/sumdb/note example_test.go publishes this test key pair.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"


@pytest.mark.parametrize("sk, pk, msg, sig", RFC8032_VECTORS)
def test_rfc8032_vectors_with_pynacl(sk, pk, msg, sig):
    key = nacl.signing.SigningKey(bytes.fromhex(sk))
    assert key.verify_key.encode().hex() == pk
    assert key.sign(bytes.fromhex(msg)).signature.hex() == sig
    key.verify_key.verify(bytes.fromhex(msg), bytes.fromhex(sig))


@pytest.mark.parametrize("sk, pk, msg, sig", RFC8032_VECTORS)
def test_rfc8032_vectors_with_note_signer(sk, pk, msg, sig):
    seed, pub = bytes.fromhex(sk), bytes.fromhex(pk)
    signer = note.Signer("rfc8032", note.key_hash("rfc8032", b"\x01" + pub), seed)
    assert signer.public_key == pub
    assert signer.sign(bytes.fromhex(msg)).hex() == sig
    # Through the key strings, as a key file would carry them.
    reloaded = note.Signer.from_skey(signer.skey)
    verifier = note.Verifier.from_vkey(signer.vkey)
    assert reloaded.sign(bytes.fromhex(msg)).hex() == sig
    assert verifier.verify(bytes.fromhex(msg), bytes.fromhex(sig))
    assert not verifier.verify(bytes.fromhex(msg) + b"x", bytes.fromhex(sig))


def test_go_note_example_key_loads(tmp_path):
    (tmp_path / "go.key").write_text(GO_SKEY + "\n")
    signer = keys.load_signer(tmp_path / "go.key")
    assert signer.vkey == GO_VKEY
    assert signer.key_id == "PeterNeumann+c74f20a3"
    assert keys.load_verifier(GO_VKEY).key_id == "PeterNeumann+c74f20a3"


def test_keygen_writes_private_0600_and_public(tmp_path):
    signer = keys.generate_key("acme-gen")
    key_path, pub_path = keys.write_key_pair(signer, tmp_path / "k")
    assert key_path.name == "acme-gen.key" and pub_path.name == "acme-gen.pub"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert key_path.read_text() == signer.skey + "\n"
    assert pub_path.read_text() == signer.vkey + "\n"
    assert keys.load_signer(key_path).skey == signer.skey
    assert keys.load_verifier(pub_path).vkey == signer.vkey
    assert keys.load_verifier(str(pub_path)).key_id == signer.key_id


def test_private_key_created_0600_even_with_open_umask(tmp_path, monkeypatch):
    """The mode is given to open(2) itself: no window where the key is readable."""
    calls = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *a, **kw):
        calls.append((str(path), flags, mode))
        return real_open(path, flags, mode, *a, **kw)

    monkeypatch.setattr(os, "open", spy)
    old = os.umask(0)
    try:
        key_path, _ = keys.write_key_pair(keys.generate_key("acme"), tmp_path)
    finally:
        os.umask(old)
    path, flags, mode = next(c for c in calls if c[0].endswith(".key"))
    assert mode == 0o600 and flags & os.O_EXCL and flags & os.O_CREAT
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_write_key_pair_never_overwrites(tmp_path):
    keys.write_key_pair(keys.generate_key("acme"), tmp_path)
    before = (tmp_path / "acme.key").read_text()
    with pytest.raises(keys.KeyFileError, match="already exists"):
        keys.write_key_pair(keys.generate_key("acme"), tmp_path)
    assert (tmp_path / "acme.key").read_text() == before


@pytest.mark.parametrize("name", ["", "a+b", "has space", "tab\tname"])
def test_generate_key_refuses_bad_names(name):
    with pytest.raises(keys.KeyFileError):
        keys.generate_key(name)


def test_load_signer_errors_are_clear(tmp_path):
    signer = keys.generate_key("acme")
    _, pub = keys.write_key_pair(signer, tmp_path)
    with pytest.raises(keys.KeyFileError, match="does not exist"):
        keys.load_signer(tmp_path / "missing.key")
    with pytest.raises(keys.KeyFileError, match="public"):
        keys.load_signer(pub)
    with pytest.raises(keys.KeyFileError, match="directory"):
        keys.load_signer(tmp_path)
    (tmp_path / "bad.key").write_text(signer.skey[:-4] + "AAA=\n")  # hash no longer matches
    with pytest.raises(keys.KeyFileError, match="bad.key"):
        keys.load_signer(tmp_path / "bad.key")
    (tmp_path / "bin.key").write_bytes(b"\xff\xfe" * 10)
    with pytest.raises(keys.KeyFileError, match="not ASCII"):
        keys.load_signer(tmp_path / "bin.key")
    (tmp_path / "big.key").write_bytes(b"A" * 10000)
    with pytest.raises(keys.KeyFileError, match="too large"):
        keys.load_signer(tmp_path / "big.key")


def test_load_verifier_errors_are_clear(tmp_path):
    signer = keys.generate_key("acme")
    with pytest.raises(keys.KeyFileError, match="private"):
        keys.load_verifier(signer.skey)
    with pytest.raises(keys.KeyFileError, match="key hash"):
        keys.load_verifier("other" + signer.vkey[4:])
    with pytest.raises(keys.KeyFileError, match="does not exist"):
        keys.load_verifier(tmp_path / "none.pub")


# --- key names with '/' (C2SP names such as example.com/acme) ---------------------


def test_a_name_with_slashes_makes_folders_inside_out(tmp_path):
    signer = keys.generate_key("example.com/acme")
    key_path, pub_path = keys.write_key_pair(signer, tmp_path / "keys")
    assert key_path == tmp_path / "keys/example.com/acme.key"
    assert pub_path == tmp_path / "keys/example.com/acme.pub"
    assert keys.load_signer(key_path).key_id == signer.key_id
    assert keys.load_verifier(pub_path).key_id == signer.key_id
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    # A second key in the same folder, and the same name refused.
    keys.write_key_pair(keys.generate_key("example.com/other"), tmp_path / "keys")
    with pytest.raises(keys.KeyFileError, match="already exists"):
        keys.write_key_pair(keys.generate_key("example.com/acme"), tmp_path / "keys")


@pytest.mark.parametrize("name, why", [
    ("../x", "'..'"), ("a/../../x", "'..'"), ("./x", "'.'"), ("a//b", "empty"), ("a/", "empty"),
    ("/tmp/x", "absolute"), ("..", "'..'"),
])
def test_names_that_leave_out_are_refused(tmp_path, name, why):
    out = tmp_path / "keys"
    with pytest.raises(keys.KeyFileError, match=why):
        keys.write_key_pair(keys.generate_key(name), out)
    assert not any(p.suffix in (".key", ".pub") for p in tmp_path.rglob("*"))
    assert not (tmp_path / "x.key").exists()


def test_a_symlink_inside_out_that_points_outside_is_refused(tmp_path):
    out, outside = tmp_path / "keys", tmp_path / "elsewhere"
    out.mkdir()
    outside.mkdir()
    (out / "example.com").symlink_to(outside)
    with pytest.raises(keys.KeyFileError, match="outside"):
        keys.write_key_pair(keys.generate_key("example.com/acme"), out)
    with pytest.raises(keys.KeyFileError, match="outside"):  # no folder is made through it either
        keys.write_key_pair(keys.generate_key("example.com/deeper/acme"), out)
    assert list(outside.iterdir()) == []


def test_a_symlink_inside_out_that_stays_inside_is_followed(tmp_path):
    out = tmp_path / "keys"
    (out / "real").mkdir(parents=True)
    (out / "alias").symlink_to(out / "real")
    key_path, _ = keys.write_key_pair(keys.generate_key("alias/acme"), out)
    assert (out / "real/acme.key").read_text() == key_path.read_text()


def test_a_key_file_name_that_is_a_dangling_symlink_is_not_followed(tmp_path):
    target = tmp_path / "stolen"
    (tmp_path / "acme.key").symlink_to(target)
    with pytest.raises(keys.KeyFileError, match="already exists"):
        keys.write_key_pair(keys.generate_key("acme"), tmp_path)
    assert not target.exists()


def test_the_ledger_key_and_producer_keys_share_one_error(tmp_path):
    path = tmp_path / "ledger.key"
    keys.load_or_create(path, "log.example")
    path.chmod(0o644)
    with pytest.raises(keys.KeyFileError, match="readable by others"):
        keys.load(path)
    with pytest.raises(ValueError):  # one KeyFileError, a ValueError like the others
        keys.load_or_create(tmp_path / "new.key", "bad name")
