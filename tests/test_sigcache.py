"""The per-process memory of verified signatures: a success is reused only
for the very key, signature and message; failures are checked every time."""

from __future__ import annotations

import nacl.exceptions
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelcheck.claims import sigcache
from test_keys import RFC8032_VECTORS


@pytest.fixture(autouse=True)
def cold():
    sigcache.forget()
    yield
    sigcache.forget()


def keypair():
    sk = nacl.signing.SigningKey.generate()
    return sk, sk.verify_key


class CountingKey:
    """A VerifyKey that counts the real verifications it does."""

    def __init__(self, vk):
        self.vk, self.calls = vk, 0

    def __bytes__(self):
        return bytes(self.vk)

    def verify(self, message, signature):
        self.calls += 1
        return self.vk.verify(message, signature)


def test_a_success_is_remembered_and_reused():
    sk, vk = keypair()
    key = CountingKey(vk)
    sig = sk.sign(b"claim").signature
    assert sigcache.verify(key, b"claim", sig) and sigcache.verify(key, b"claim", sig)
    assert key.calls == 1


def test_a_failure_is_never_remembered():
    sk, vk = keypair()
    key = CountingKey(vk)
    bad = bytes(64)
    assert not sigcache.verify(key, b"claim", bad)
    assert not sigcache.verify(key, b"claim", bad)
    assert key.calls == 2


@pytest.mark.parametrize("change", ["message", "signature", "key"])
def test_a_remembered_success_says_nothing_about_other_inputs(change):
    sk, vk = keypair()
    sig = sk.sign(b"claim").signature
    assert sigcache.verify(vk, b"claim", sig)
    other_sk, other_vk = keypair()
    if change == "message":
        assert not sigcache.verify(vk, b"claim!", sig)
    elif change == "signature":
        assert not sigcache.verify(vk, b"claim", sig[:-1] + bytes([sig[-1] ^ 1]))
    else:  # the same message and signature under another producer's key
        assert not sigcache.verify(other_vk, b"claim", sig)


def test_wrong_length_signatures_are_refused_without_verifying():
    sk, vk = keypair()
    key = CountingKey(vk)
    assert not sigcache.verify(key, b"claim", sk.sign(b"claim").signature[:63])
    assert key.calls == 0


def test_a_signature_cut_short_cannot_borrow_bytes_from_the_message():
    """Signature and message go to libsodium as one buffer: a 63-byte signature
    with its last byte put in front of the message must not verify."""
    sk, vk = keypair()
    sig = sk.sign(b"claim").signature
    assert not sigcache.verify(vk, sig[63:] + b"claim", sig[:63])
    assert not sigcache.verify(vk, b"claim"[1:], sig + b"claim"[:1])
    assert sigcache.verify(vk, b"claim", sig)


def test_the_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(sigcache, "CAPACITY", 8)
    sk, vk = keypair()
    key = CountingKey(vk)
    messages = [b"claim %d" % i for i in range(20)]
    sigs = [sk.sign(m).signature for m in messages]
    for m, s in zip(messages, sigs):
        assert sigcache.verify(key, m, s)
    assert len(sigcache._verified) <= 8
    assert sigcache.verify(key, messages[0], sigs[0])  # evicted long ago: verified again
    assert key.calls == 21


@pytest.fixture(params=["cffi", "pynacl"])
def path(request, monkeypatch):
    """Each way ``verify`` may reach libsodium: cffi's crypto_sign_open (the
    default), PyNaCl's public verify (another build of PyNaCl)."""
    if request.param == "cffi":
        assert sigcache._lib is not None, "PyNaCl's cffi module exports crypto_sign_open"
    else:
        monkeypatch.setattr(sigcache, "_lib", None)
    return request.param


@pytest.mark.parametrize("sk, pk, msg, sig", RFC8032_VECTORS)
def test_rfc8032_vectors_verify_and_their_tampered_copies_do_not(path, sk, pk, msg, sig):
    vk, message, signature = nacl.signing.VerifyKey(bytes.fromhex(pk)), bytes.fromhex(msg), bytes.fromhex(sig)
    assert sigcache.verify(vk, message, signature)
    sigcache.forget()
    assert not sigcache.verify(vk, message + b"\x00", signature)
    for i in (0, 31, 32, 63):  # R and S, each end
        assert not sigcache.verify(vk, message, signature[:i] + bytes([signature[i] ^ 0x40]) + signature[i + 1:])


def test_a_signature_with_s_not_reduced_is_refused(path):
    """RFC 8032 §5.1.7 step 1: S must be below the group order L; S + L
    verifies the same equation, so only that check refuses it (malleability)."""
    sk, vk = keypair()
    sig = sk.sign(b"claim").signature
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(sig[32:], "little") + order
    assert s < 2**256
    assert not sigcache.verify(vk, b"claim", sig[:32] + s.to_bytes(32, "little"))


@settings(max_examples=150, deadline=None)
@given(message=st.binary(max_size=300), flip=st.integers(0, 64 * 8 - 1), tamper=st.booleans())
def test_the_default_path_answers_as_pynacl_does(message, flip, tamper):
    sk = nacl.signing.SigningKey(bytes(range(32)))
    sig = sk.sign(message).signature
    if tamper:
        sig = bytearray(sig)
        sig[flip // 8] ^= 1 << (flip % 8)
        sig = bytes(sig)
    try:
        sk.verify_key.verify(message, sig)
        expected = True
    except nacl.exceptions.BadSignatureError:
        expected = False
    sigcache.forget()
    assert sigcache.verify(sk.verify_key, message, sig) is expected
