"""Ed25519 (RFC 8032 §5.1.7) verification that remembers what verified.

The same claim reaches a server once per viewer of the page that shows it,
so a popular claim would have its signature checked thousands of times.
Verification is deterministic, so a success can be remembered: keyed by the
public key, the signature and the SHA-256 of the signed message (a second
message with the same digest is a SHA-256 collision). Failures are never
remembered (they cost nothing to an honest producer). The cache is per
process and bounded; it holds no viewer data.
"""

from __future__ import annotations

import ctypes
import hashlib
from collections import OrderedDict

import nacl.exceptions
import nacl.signing

try:  # libsodium as PyNaCl binds it: crypto_sign_open may be given no output buffer
    from nacl._sodium import ffi as _ffi, lib as _lib
except ImportError:  # another build of PyNaCl: its public verify, the same check
    _lib = None


def _verify_detached_holding_the_gil():
    """libsodium's ``crypto_sign_verify_detached`` from PyNaCl's own copy of
    it, called through ``ctypes.PyDLL``, which keeps the GIL (cffi releases
    it around every call). The server checks the claims of a group on one
    thread (``pipeline.coalesce``): letting go of the GIL for each 60 us
    verification only handed it to another thread and back, two switches a
    claim, while the other core is busy with the other worker (measured:
    about 5% less machine time a single-item request, 7% a batch). None
    where PyNaCl's module does not export the function."""
    try:
        import nacl._sodium

        func = ctypes.PyDLL(nacl._sodium.__file__).crypto_sign_verify_detached
    except (ImportError, OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p]
    func.restype = ctypes.c_int
    return func


_detached = _verify_detached_holding_the_gil()

CAPACITY = 4096  # remembered successes per process, oldest out first

# Oldest first. A plain dict would do the order too, but taking its first key
# scans past every slot freed at its front since its last resize: about 2.8 us
# an eviction when full, against 0.4 us for an OrderedDict's popitem.
_verified: OrderedDict[tuple[bytes, bytes, bytes], None] = OrderedDict()


def verify(key: nacl.signing.VerifyKey, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``key``'s Ed25519 signature of ``message``."""
    if len(signature) != 64:
        return False
    remembered = (bytes(key), signature, hashlib.sha256(message).digest())
    if remembered in _verified:
        return True
    if _detached is not None and type(key) is nacl.signing.VerifyKey and type(message) is bytes:
        # RFC 8032 §5.1.7 with libsodium's checks: what crypto_sign_open
        # (PyNaCl's VerifyKey.verify) runs on the signature and message.
        if _detached(signature, message, len(message), remembered[0]) != 0:
            return False
    elif _lib is not None and type(key) is nacl.signing.VerifyKey:
        # What VerifyKey.verify calls (crypto_sign_open, RFC 8032 §5.1.7 with
        # libsodium's checks), without the copy of the message it returns.
        signed = signature + message
        if _lib.crypto_sign_open(_ffi.NULL, _ffi.NULL, signed, len(signed), remembered[0]) != 0:
            return False
    else:
        try:
            key.verify(message, signature)
        except nacl.exceptions.BadSignatureError:
            return False
    if len(_verified) >= CAPACITY:
        try:  # the oldest goes; another thread may have taken it
            _verified.popitem(last=False)
        except KeyError:
            pass
    _verified[remembered] = None
    return True


def forget() -> None:
    """Drop every remembered success (for tests and benchmarks of the cold path)."""
    _verified.clear()
