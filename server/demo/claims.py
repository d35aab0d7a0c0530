"""The demo's signed claims. A claim's ``content.url`` must be the absolute
URL the browser loads (docs/protocol.md §2), so the claims are signed lazily
for each host the pages are asked on, and kept for a handful of hosts."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass

from labelcheck.claims import build_payload, sign_envelope
from labelcheck.demo.media import MANY
from labelcheck.demo.producers import REVOKED_FILING
from labelcheck.ledger import note
from labelcheck.util import b64


@dataclass
class Demo:
    media: dict[str, tuple[bytes, str]]
    producer: note.Signer
    unknown: note.Signer
    revoked: note.Signer

    def __post_init__(self) -> None:
        self._claims: dict[str, dict[str, dict]] = {}
        self._lock = threading.Lock()

    def sha(self, name: str) -> str:
        return hashlib.sha256(self.media[name][0]).hexdigest()

    def claims(self, base: str) -> dict[str, dict]:
        """Every demo claim for pages served from ``base`` (scheme://host/)."""
        with self._lock:
            if base not in self._claims:
                if len(self._claims) > 16:  # a handful of host names at most
                    self._claims.clear()
                self._claims[base] = self._sign_all(base)
            return self._claims[base]

    def _sign_all(self, base: str) -> dict[str, dict]:
        url = lambda name: f"{base}demo/media/{name}"  # noqa: E731

        def claim(signer, name, *, sha_of=None, label="1", filing="DEMO-0000", **extra):
            sha = self.sha(sha_of or name)
            payload = build_payload(sha, self.media[sha_of or name][1], label, issuer=signer, url=url(name),
                                    filing=filing, synthesis=["other_generation"],
                                    produce_id=f"demo-{name.replace('/', '-')}", **extra)
            return sign_envelope(payload, signer)

        out = {
            "verified.png": claim(self.producer, "verified.png"),
            "tampered.png": _tamper(claim(self.producer, "tampered.png")),
            "shown.png": claim(self.producer, "shown.png", sha_of="other.png"),
            "unknown.png": claim(self.unknown, "unknown.png", filing="DEMO-UNKNOWN"),
            "revoked.png": claim(self.revoked, "revoked.png", filing=REVOKED_FILING),
            "dynamic-1.png": claim(self.producer, "dynamic-1.png"),
            "dynamic-2.png": claim(self.producer, "dynamic-2.png", label="2"),
            "dynamic-3.png": claim(self.producer, "dynamic-3.png", label="3"),
            "swap-1.png": claim(self.producer, "swap-1.png"),
            "swap-2.png": claim(self.producer, "swap-2.png", label="2"),
            "clip.mp4": claim(self.producer, "clip.mp4"),
        }
        if "conflict.png" in self.media:
            out["conflict.png"] = claim(self.producer, "conflict.png", label="1")
        for i in range(MANY):
            out[f"many/{i}.png"] = claim(self.producer, f"many/{i}.png")
        return out


def _tamper(envelope: dict) -> dict:
    """The envelope with one bit of its signature flipped."""
    sig = bytearray(b64.decode(envelope["signatures"][0]["sig"]))
    sig[10] ^= 0x01
    tampered = json.loads(json.dumps(envelope))
    tampered["signatures"][0]["sig"] = b64.encode(bytes(sig))
    return tampered
