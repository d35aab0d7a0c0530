"""What verifying a ledger bundle proved, and the format's names and limits.

Shared by the writer (``bundle_write``) and the verifier (``bundle``,
``bundle_complete``, ``bundle_filtered``) of format ``labelcheck-bundle/1``
(docs/protocol.md §4; the format is described in ``bundle``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from labelcheck.util import b64

from . import checkpoint
from .filters import Filter

FORMAT = "labelcheck-bundle/1"
MAX_HEADER = 1 << 20
MAX_ENTRY = 1 << 20  # an entry line longer than this is refused, not buffered
MAX_LINE = 4 << 20  # a filtered line: an entry (<= 1 MiB, escaped) and its proof

# Called with (index, leaf hash, parsed entry) for each entry whose own checks
# held, in index order. What it was handed counts only if the report is ``ok``:
# a complete bundle's root is compared after its last entry.
EntrySink = Callable[[int, bytes, dict], None]


class BundleError(Exception):
    """An unusable argument (key, trusted checkpoint) or an unreadable bundle."""


@dataclass
class BundleReport:
    """What ``verify_bundle`` proved, or the first thing that failed."""

    origin: str = ""
    size: int = 0  # entries verified
    checkpoint: checkpoint.Checkpoint | None = None
    key_id: str = ""
    trusted_size: int | None = None
    problems: list[str] = field(default_factory=list)
    first_bad_index: int | None = None
    complete: bool = True
    filter: dict | None = None  # a filtered bundle's filter, as its header states it

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, index: int, problem: str) -> None:
        """Record ``problem`` at entry ``index``, the first bad one."""
        self.problems.append(problem)
        self.first_bad_index = index

    def summary(self) -> str:
        """What was proved: "complete log of N entries" or "M entries, each
        included in the log of size N" (a filtered bundle), or what failed."""
        if not self.ok:
            return "bundle verification FAILED: " + "; ".join(self.problems)
        signed = f"origin {self.origin}, root {b64.encode(self.checkpoint.root)} signed by {self.key_id}"
        if self.complete:
            text = f"complete log of {self.size} entries, {signed}"
        else:
            text = (f"{self.size} entries, each included in the log of size {self.checkpoint.size}, {signed}; "
                    f"each matches the filter {Filter.parse(self.filter).describe()} (a filtered bundle "
                    "does not prove that no matching entry was left out)")
        if self.trusted_size is not None:
            text += f"; consistent with the trusted checkpoint at size {self.trusted_size} (the log only grew)"
        return text


def forked(size: int) -> str:
    """The problem when the first ``size`` entries miss the trusted root."""
    return f"the first {size} entries do not match the trusted checkpoint: the log was rewritten or forked"
