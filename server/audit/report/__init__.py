"""The offline audit report: a verified ledger bundle as one HTML file.

``build_report`` first verifies the bundle (``ledger.bundle.verify_bundle``:
signature, every entry or every inclusion proof, the root, and growth from a
trusted checkpoint when one is given) and refuses one that fails; then it
reads the bundle again, counting as it streams (``gather``), and draws the
counts (``render``: inline SVG, inline CSS, no script, no network).

Modules: ``gather`` (streaming counts, re-checked against the verified
checkpoint), ``svg`` (the charts), ``render`` (the page), ``strings`` (English
and Simplified Chinese).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Callable

from labelcheck.ledger import bundle, note

from .gather import AuditData, GatherError
from .gather import gather as count_bundle
from .render import render
from .strings import LANGS

Progress = Callable[[int, int], None]


class ReportError(Exception):
    """The bundle failed verification (``problems`` says why) or could not be read."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []


def audit_data(path: str | os.PathLike, verifier: note.Verifier, *, trusted_checkpoint: bytes | None = None,
               top: int = 50, verify_progress: Progress | None = None,
               gather_progress: Progress | None = None) -> AuditData:
    """Verify the bundle at ``path``, then count it. Raises ReportError."""
    try:
        with open(path, "rb") as fp:
            result = bundle.verify_bundle(fp, verifier.vkey, trusted_checkpoint, progress=verify_progress)
    except OSError as exc:
        raise ReportError(f"cannot read bundle {path}: {exc.strerror or exc}") from None
    except bundle.BundleError as exc:
        raise ReportError(str(exc)) from None
    if not result.ok:
        raise ReportError(result.summary(), result.problems)
    try:
        with open(path, "rb") as fp:
            return count_bundle(fp, result.checkpoint, verifier, top=top, trusted_size=result.trusted_size,
                          progress=gather_progress)
    except OSError as exc:
        raise ReportError(f"cannot read bundle {path}: {exc.strerror or exc}") from None
    except GatherError as exc:
        raise ReportError(f"refusing to report: {exc}", [str(exc)]) from None


def build_report(path: str | os.PathLike, verifier: note.Verifier, *, lang: str = "en",
                 trusted_checkpoint: bytes | None = None, top: int = 50, now: datetime | None = None,
                 verify_progress: Progress | None = None, gather_progress: Progress | None = None) -> str:
    """The HTML report of the bundle at ``path``, verified with ``verifier``.

    Raises ReportError when the bundle does not verify, and ValueError for a
    language other than ``LANGS``.
    """
    if lang not in LANGS:
        raise ValueError(f"unknown report language {lang!r}; use one of {', '.join(LANGS)}")
    data = audit_data(path, verifier, trusted_checkpoint=trusted_checkpoint, top=top,
                      verify_progress=verify_progress, gather_progress=gather_progress)
    return render(data, lang, now=now)


__all__ = ["LANGS", "AuditData", "GatherError", "ReportError", "audit_data", "build_report", "count_bundle", "render"]
