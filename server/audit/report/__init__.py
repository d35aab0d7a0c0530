"""The offline audit report: a verified ledger bundle as one HTML file.

``build_report`` reads the bundle once: ``ledger.bundle.verify_bundle``
checks it (signature, every entry or every inclusion proof, the root, and
growth from a trusted checkpoint when one is given) and hands each verified
entry to the counters (``gather``) as it streams; a bundle that fails is
refused and its counts dropped. ``render`` then draws the counts (inline SVG,
inline CSS, no script, no network).

Modules: ``gather`` (streaming counts), ``svg`` (the charts), ``render`` (the
page), ``strings`` (English and Simplified Chinese).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import BinaryIO, Callable

from labelcheck.ledger import bundle, note

from .gather import AuditData
from .render import render
from .strings import LANGS

Progress = Callable[[int, int], None]


class ReportError(Exception):
    """The bundle failed verification (``problems`` says why) or could not be read."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []


def count_bundle(fp: BinaryIO, verifier: note.Verifier, *, trusted_checkpoint: bytes | None = None,
                 top: int = 50, progress: Progress | None = None) -> AuditData:
    """Verify the bundle read from ``fp`` and count it in the same pass. Raises ReportError."""
    data = AuditData(top=max(0, top))
    try:
        result = bundle.verify_bundle(fp, verifier.vkey, trusted_checkpoint, progress=progress,
                                      on_entry=data.count)
    except bundle.BundleError as exc:
        raise ReportError(str(exc)) from None
    if not result.ok:
        raise ReportError(result.summary(), result.problems)
    data.finish(result, verifier)
    return data


def audit_data(path: str | os.PathLike, verifier: note.Verifier, *, trusted_checkpoint: bytes | None = None,
               top: int = 50, progress: Progress | None = None) -> AuditData:
    """Verify and count the bundle at ``path`` (``count_bundle``). Raises ReportError."""
    try:
        with open(path, "rb") as fp:
            return count_bundle(fp, verifier, trusted_checkpoint=trusted_checkpoint, top=top, progress=progress)
    except OSError as exc:
        raise ReportError(f"cannot read bundle {path}: {exc.strerror or exc}") from None


def build_report(path: str | os.PathLike, verifier: note.Verifier, *, lang: str = "en",
                 trusted_checkpoint: bytes | None = None, top: int = 50, now: datetime | None = None,
                 progress: Progress | None = None) -> str:
    """The HTML report of the bundle at ``path``, verified with ``verifier``.

    Raises ReportError when the bundle does not verify, and ValueError for a
    language other than ``LANGS``.
    """
    if lang not in LANGS:
        raise ValueError(f"unknown report language {lang!r}; use one of {', '.join(LANGS)}")
    data = audit_data(path, verifier, trusted_checkpoint=trusted_checkpoint, top=top, progress=progress)
    return render(data, lang, now=now)


__all__ = ["LANGS", "AuditData", "ReportError", "audit_data", "build_report", "count_bundle", "render"]
