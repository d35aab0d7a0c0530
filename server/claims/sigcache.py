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

import hashlib
from collections import OrderedDict

import nacl.exceptions
import nacl.signing

try:  # libsodium as PyNaCl binds it: crypto_sign_open may be given no output buffer
    from nacl._sodium import ffi as _ffi, lib as _lib
except ImportError:  # another build of PyNaCl: its public verify, the same check
    _lib = None

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
    if _lib is not None and type(key) is nacl.signing.VerifyKey:
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
