"""Verifying a filtered bundle: each entry, its inclusion proof and the filter.

For format ``labelcheck-bundle/1`` with ``"complete": false`` (described in
``bundle``; docs/protocol.md §4): each line is an entry with its RFC 9162
§2.1.3 inclusion proof in the signed tree, indexes strictly increase, every
entry meets the header's filter, and growth from a trusted checkpoint is shown
by the header's §2.1.4 consistency proof.
"""

from __future__ import annotations

import json
from binascii import a2b_base64
from typing import BinaryIO

from . import checkpoint, merkle
from .bundle_report import MAX_LINE, BundleReport, EntrySink
from .filters import Filter
from .verify import PROGRESS_EVERY, EntryError, Progress, parse_entry


def verify_filtered(fp: BinaryIO, cp: checkpoint.Checkpoint, header: dict, trusted: checkpoint.Checkpoint | None,
                    report: BundleReport, progress: Progress | None, sink: EntrySink | None = None) -> None:
    """Check a filtered bundle's growth proof, then each line; see the module docstring."""
    if trusted is not None and not _check_growth(header.get("consistency"), trusted, cp, report):
        return None
    match, last = Filter.parse(report.filter).value_matcher(), -1
    for line in iter(lambda: fp.readline(MAX_LINE + 1), b""):
        where = f"the line after entry {last}" if last >= 0 else "the first entry line"
        if not line.endswith(b"\n"):
            what = "is longer than 4 MiB" if len(line) > MAX_LINE else "is cut short (no newline)"
            report.problems.append(f"{where} {what}")
            return None
        try:
            index, data, proof = _filtered_line(line, where)
        except _LineError as exc:
            return report.fail(exc.index, str(exc))
        if index <= last:
            return report.fail(index, f"entry {index} after entry {last}: indexes must strictly increase "
                                      "(an entry is repeated or out of order)")
        if index >= cp.size:
            return report.fail(index, f"entry {index} is beyond the log of size {cp.size}")
        try:
            value = parse_entry(data, index)
        except EntryError as exc:
            return report.fail(index, str(exc))
        if not match(value):
            return report.fail(index, f"entry {index} does not match the bundle's filter "
                                      f"{Filter.parse(report.filter).describe()}")
        leaf = merkle.leaf_hash(data)
        try:
            merkle.verify_inclusion(index, cp.size, leaf, proof, cp.root)
        except merkle.ProofError as exc:
            return report.fail(index, f"entry {index} is not proven included in the log of size "
                                      f"{cp.size} (the entry or its proof was changed): {exc}")
        if sink is not None:
            sink(index, leaf, value)
        last, report.size = index, report.size + 1
        if progress and report.size % PROGRESS_EVERY == 0:
            progress(index + 1, cp.size)
    if progress:
        progress(cp.size, cp.size)
    return None


class _LineError(Exception):
    """A filtered line that is not an entry with its proof; ``index`` when known."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.index = index


def _filtered_line(line: bytes, where: str) -> tuple[int, bytes, list[bytes]]:
    """(index, entry bytes, proof) of one filtered line; _LineError otherwise."""
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise _LineError(f"{where} is not JSON") from None
    if not isinstance(obj, dict) or sorted(obj) != ["entry", "inclusion", "index"]:
        raise _LineError(f"{where} is not an entry with its inclusion proof (keys entry, inclusion, index)")
    index, entry, hashes = obj["index"], obj["entry"], obj["inclusion"]
    if type(index) is not int or index < 0:
        raise _LineError(f"{where} has no valid index")
    if not isinstance(entry, str) or not isinstance(hashes, list):
        raise _LineError(f"entry {index}: the line is not an entry (a string) with its inclusion proof (a list)",
                         index)
    proof = _hashes(hashes)
    if proof is None:
        raise _LineError(f"entry {index}: its inclusion proof is not a list of base64 SHA-256 hashes", index)
    try:
        return index, entry.encode("utf-8"), proof
    except UnicodeEncodeError:
        raise _LineError(f"entry {index} is not valid Unicode text", index) from None


def _hashes(items: list) -> list[bytes] | None:
    if not all(type(h) is str for h in items):
        return None
    try:
        out = [a2b_base64(h, strict_mode=True) for h in items]
    except ValueError:  # binascii.Error, or a non-ASCII str
        return None
    return out if all(len(h) == 32 for h in out) else None


def _check_growth(proof, trusted: checkpoint.Checkpoint, cp: checkpoint.Checkpoint, report: BundleReport) -> bool:
    """RFC 9162 §2.1.4.2: the trusted tree is a prefix of the bundle's (from the header's proof)."""
    if trusted.size in (0, cp.size):
        return True  # the empty tree is a prefix of every tree; equal sizes were compared already
    if not isinstance(proof, dict) or proof.get("from") != trusted.size:
        report.problems.append(
            f"a filtered bundle shows growth only by a consistency proof from the trusted size {trusted.size}, "
            "and this one has none for it (export it again with consistency_from set to that size)")
        return False
    hashes = _hashes(proof.get("hashes")) if isinstance(proof.get("hashes"), list) else None
    try:
        if hashes is None:
            raise merkle.ProofError("the hashes are not a list of base64 SHA-256 hashes")
        merkle.verify_consistency(trusted.size, cp.size, trusted.root, cp.root, hashes)
    except merkle.ProofError as exc:
        report.problems.append(f"the log at size {cp.size} is not proven to extend the trusted checkpoint at "
                               f"size {trusted.size}: the log was rewritten or forked ({exc})")
        return False
    return True
