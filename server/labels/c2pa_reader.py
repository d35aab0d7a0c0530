"""C2PA manifest stores, validated with c2pa-python (the C2PA reference library).

Settings are fixed for a server that must not reach out: remote manifest
fetching off, OCSP fetching off, trust anchors only from the configured PEM
file (``trust.trust_anchors``). Without anchors a good manifest is at best
``Valid`` (C2PA 2.1 §15: well-formed and intact, signer not trusted).

The reader is only called when the container walk found an embedded
manifest store, so media without C2PA never pays for it. Validating a
manifest hashes the asset (C2PA ``c2pa.hash.data``/``bmff``), which the
reference library does over the stream.
"""

from __future__ import annotations

import functools
import os
from typing import BinaryIO

from .signals import Signal
from .xmp import source_type_category, source_type_is_ai

SOURCE = "c2pa"


@functools.lru_cache(maxsize=8)
def _context(anchors_path: str | None, _stamp: tuple | None, _pid: int):
    import c2pa

    verify = {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_trust": True}
    config: dict = {"verify": verify}
    if anchors_path:
        with open(anchors_path, encoding="utf-8") as fh:
            config["trust"] = {"trust_anchors": fh.read()}
    return c2pa.Context.from_dict(config)


def context(anchors_path: str | None):
    """A c2pa Context for ``anchors_path``, rebuilt when the PEM file changes.

    Keyed by process id too: a forked server worker builds its own (native
    handles do not cross fork).
    """
    stamp = None
    if anchors_path:
        st = os.stat(anchors_path)
        stamp = (st.st_mtime_ns, st.st_size)
    return _context(anchors_path, stamp, os.getpid())


def digital_source_type(manifest: dict | None) -> str | None:
    """The first ``digitalSourceType`` in the manifest's ``c2pa.actions`` assertions."""
    for assertion in (manifest or {}).get("assertions") or []:
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            dst = action.get("digitalSourceType")
            if dst:
                return dst
    return None


def read(fp: BinaryIO, media_type: str, anchors_path: str | None) -> Signal | None:
    """The C2PA signal for ``fp``, or None when it has no manifest store."""
    import c2pa

    try:
        ctx = context(anchors_path)
    except OSError as exc:
        return Signal(SOURCE, "invalid", None, ["c2pa_invalid", "trust_anchors_unreadable"], {"c2pa": {"error": str(exc)}})
    fp.seek(0)
    try:
        reader = c2pa.Reader.try_create(media_type, fp, context=ctx)
        if reader is None:
            return None
        with reader:
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
            manifest = reader.get_active_manifest()
    except c2pa.C2paError as exc:
        return Signal(
            SOURCE,
            "invalid",
            None,
            ["c2pa_invalid", "manifest.unreadable"],
            {"c2pa": {"validation_state": None, "failures": [], "error": str(exc)[:500]}},
        )
    failures = list(dict.fromkeys(f.get("code") for f in (results.get("activeManifest") or {}).get("failure") or []))
    dst = digital_source_type(manifest)
    info = (manifest or {}).get("signature_info") or {}
    detail = {
        "c2pa": {
            "validation_state": state,
            "failures": failures,
            "digital_source_type": dst,
            "ai": source_type_is_ai(dst),
            "signer": info.get("common_name") or info.get("issuer"),
            "issuer": info.get("issuer"),
            "claim_generator": (manifest or {}).get("claim_generator"),
        }
    }
    category = source_type_category(dst)
    if state == "Trusted":
        return Signal(SOURCE, "trusted", category, ["c2pa_trusted"], detail)
    if state == "Valid":
        return Signal(SOURCE, "valid", category, ["c2pa_untrusted"], detail)
    return Signal(SOURCE, "invalid", None, ["c2pa_invalid", *failures], detail)
