"""Verifying a complete bundle's entries: every entry, its chain link and the root.

For format ``labelcheck-bundle/1`` (described in ``bundle``; docs/protocol.md
§4): exactly N entry lines follow the header, entry i carries ``index`` i and,
as ``prev``, the base64 leaf hash of entry i-1; their RFC 9162 §2.1.1 root must
equal the signed one, and, given a trusted checkpoint of size T, the root of
the first T entries its root. Streams with O(log N) tree state.

Large bundles are checked by forked worker processes (``verify_parallel``):
checking each entry is nearly all the work, and it needs no state but the
entry itself, so workers take blocks of whole lines and return the hashes of
the aligned complete subtrees tiling them (``subtrees``). Entries of a
learned shape are accepted without parsing (``entry_shape``); any other goes
through the full check, which names the problem. The main process keeps
everything ordered: the chain link between blocks, the tree, the trusted
root, the first problem, and the entries handed to the caller's sink.
"""

from __future__ import annotations

import binascii
import collections
import hashlib
import json
import multiprocessing
from typing import BinaryIO, Iterator

from labelcheck.util import b64

from . import checkpoint, merkle, subtrees
from .entry_shape import Shapes
from .bundle_report import MAX_ENTRY, BundleReport, EntrySink, forked
from .verify import PROGRESS_EVERY, EntryError, Progress, check_prev, check_value, parse_entry

BLOCK = 4 << 20  # bytes of whole lines handed to a worker at a time
_decode = json.JSONDecoder().decode  # entries a worker accepted are canonical JSON: plain json reads them


def verify_entries(fp: BinaryIO, cp: checkpoint.Checkpoint, trusted: checkpoint.Checkpoint | None,
                   report: BundleReport, progress: Progress | None, sink: EntrySink | None = None) -> None:
    """Check the entries in this process, handing each good one to ``sink``."""
    tree = merkle.RootBuilder()
    append, readline, sha = tree.append, fp.readline, hashlib.sha256
    shapes = Shapes()
    match, b64 = shapes.match, binascii.b2a_base64
    trusted_at = trusted.size if trusted is not None else -1
    prev = None
    for n in range(cp.size):
        if n == trusted_at and tree.root() != trusted.root:
            return report.fail(n, forked(trusted.size))
        line = readline(MAX_ENTRY + 1)
        if not line.endswith(b"\n"):
            what = "is longer than 1 MiB" if len(line) > MAX_ENTRY else "is missing (the bundle ends early)"
            return report.fail(n, f"entry {n} {what}")
        entry = line[:-1]
        # Without a sink nothing needs the value: a learned shape is enough (entry_shape).
        got = match(entry) if sink is None else None
        if got is None or got[0] != b"%d" % n or got[1] != (b"" if prev is None else b64(prev, newline=False)):
            try:
                value = check_value(entry, n, prev)
            except EntryError as exc:
                return report.fail(n, str(exc))
            if sink is None:
                shapes.learn(value)
        prev = sha(b"\x00" + entry).digest()  # RFC 9162 §2.1.1 leaf hash
        append(prev)
        if sink is not None:
            sink(n, prev, value)
        report.size = n + 1
        if progress and report.size % PROGRESS_EVERY == 0:
            progress(report.size, cp.size)
    if readline(1) and not (cp.size == trusted_at and tree.root() != trusted.root):
        report.problems.append(f"data after entry {cp.size - 1}, the last one the checkpoint covers")
        return None
    return check_root(tree, cp, trusted, trusted_at, report, progress)


def check_root(tree: merkle.RootBuilder | subtrees.Frontier, cp: checkpoint.Checkpoint,
               trusted: checkpoint.Checkpoint | None, trusted_at: int, report: BundleReport,
               progress: Progress | None) -> None:
    """After the last entry: the root at the trusted size (if it is the whole
    log) and the root of all entries against the signed one (RFC 9162 §2.1.1)."""
    if cp.size == trusted_at and tree.root() != trusted.root:
        return report.fail(cp.size, forked(trusted.size))
    if tree.root() != cp.root:
        report.problems.append(
            f"the {cp.size} entries hash to root {b64.encode(tree.root())}, not the signed {b64.encode(cp.root)}"
        )
    if progress:
        progress(report.size, cp.size)
    return None


# Parallel verification --------------------------------------------------------


def check_block(start: int, block: bytes, cut: int = -1, want_leaves: bool = False):
    """Check the entries in ``block`` (whole lines), the first being ``start``.

    Returns (the first problem as (index, message), or None; the first
    entry's ``prev`` value; the leaf hash of the last good entry, or None;
    the aligned subtrees tiling the good entries, as ``subtrees.range_nodes``
    with ``cut``; their leaf hashes concatenated if ``want_leaves``, else
    b""). The first ``prev`` is left to the caller, who knows the leaf before
    the block.
    """
    lines = block.split(b"\n")
    lines.pop()  # the block ends in a newline
    leaves, prev, first_prev = [], None, None
    shapes = Shapes()  # one per block: learning has a budget (entry_shape.MAX_LEARNED)
    sha, match, b64 = hashlib.sha256, shapes.match, binascii.b2a_base64
    for j, data in enumerate(lines):
        index = start + j
        # The fast path: a learned shape gives index and prev without parsing (entry_shape).
        got = match(data) if len(data) <= MAX_ENTRY else None
        if got is not None and got[0] == b"%d" % index and (not j or got[1] == b64(prev, newline=False)):
            if not j:
                first_prev = got[1].decode("utf-8")
        else:
            if len(data) > MAX_ENTRY:
                return (index, f"entry {index} is longer than 1 MiB"), *_block_result(
                    start, leaves, first_prev, cut, want_leaves)
            try:
                value = parse_entry(data, index)
                if j:
                    check_prev(value, index, prev)
            except EntryError as exc:
                return (index, str(exc)), *_block_result(start, leaves, first_prev, cut, want_leaves)
            shapes.learn(value)
            if not j:
                first_prev = value.get("prev")
        prev = sha(b"\x00" + data).digest()
        leaves.append(prev)
    return None, *_block_result(start, leaves, first_prev, cut, want_leaves)


def _block_result(start: int, leaves: list[bytes], first_prev, cut: int, want_leaves: bool) -> tuple:
    return (first_prev, leaves[-1] if leaves else None, subtrees.range_nodes(start, leaves, cut),
            b"".join(leaves) if want_leaves else b"")


def blocks(fp: BinaryIO, size: int) -> Iterator[tuple[int, bytes | None, str | None]]:
    """(start index, block of whole lines, None) for exactly ``size`` lines; where
    the lines do not add up, a last (index, None, problem) item instead."""
    seen, carry = 0, b""
    while seen < size:
        chunk = fp.read(BLOCK)
        data = carry + chunk
        cut = data.rfind(b"\n") + 1
        block, carry = data[:cut], data[cut:]
        count = block.count(b"\n")
        if seen + count > size:  # keep exactly ``size`` lines; the rest is trailing data
            at = -1
            for _ in range(size - seen):
                at = block.index(b"\n", at + 1)
            block, carry = block[: at + 1], block[at + 1 :] + carry
            count = size - seen
        if count:
            yield seen, block, None
            seen += count
        if seen < size and len(carry) > MAX_ENTRY:
            yield seen, None, f"entry {seen} is longer than 1 MiB"
            return
        if seen < size and not chunk:
            yield seen, None, f"entry {seen} is missing (the bundle ends early)"
            return
    if carry or fp.read(1):
        yield size, None, f"data after entry {size - 1}, the last one the checkpoint covers"


def verify_parallel(fp: BinaryIO, cp: checkpoint.Checkpoint, trusted: checkpoint.Checkpoint | None,
                    report: BundleReport, progress: Progress | None, workers: int,
                    sink: EntrySink | None = None) -> None:
    """Check the entries in ``workers`` forked processes, handing each good one to ``sink`` here."""
    tree = subtrees.Frontier()
    trusted_at = trusted.size if trusted is not None else -1
    state = {"prev": None}

    def absorb(start: int, block: bytes, result) -> bool:
        """Fold one block's result in, in order; False once a problem is found."""
        problem, first_prev, last, nodes, leaves = result
        if problem is None or problem[0] > start:
            want = "" if state["prev"] is None else b64.encode(state["prev"])
            if first_prev != want:
                report.fail(start, f"entry {start}: prev {first_prev!r} is not the leaf hash of entry "
                            f"{start - 1} ({want!r}): the chain is broken (entry {start - 1} or this entry was changed)")
                return False
        for level, h in nodes:  # split at trusted_at by the worker, so the tree passes through it
            if tree.size == trusted_at and tree.root() != trusted.root:
                report.fail(tree.size, forked(trusted.size))
                return False
            tree.append(level, h)
        if sink is not None and leaves:
            for j, line in zip(range(len(leaves) // 32), block.split(b"\n")):
                sink(start + j, leaves[32 * j : 32 * j + 32], _decode(line.decode("utf-8")))
        if problem is not None and tree.size == trusted_at and tree.root() != trusted.root:
            report.fail(tree.size, forked(trusted.size))  # as the one-process path sees it first
            return False
        if last is not None:
            state["prev"] = last
        report.size = tree.size
        if problem is not None:
            report.fail(problem[0], problem[1])
            return False
        if progress:
            progress(tree.size, cp.size)
        return True

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        pending: collections.deque = collections.deque()
        for start, block, problem in blocks(fp, cp.size):
            if block is None:
                while pending:
                    s, b, r = pending.popleft()
                    if not absorb(s, b, r.get()):
                        return
                if tree.size == trusted_at and tree.root() != trusted.root:
                    return report.fail(tree.size, forked(trusted.size))
                if start < cp.size:
                    return report.fail(start, problem)
                report.problems.append(problem)
                return None
            # The parent keeps a block only to hand its entries to a sink.
            job = pool.apply_async(check_block, (start, block, trusted_at, sink is not None))
            pending.append((start, block if sink else None, job))
            while len(pending) > 2 * workers:
                s, b, r = pending.popleft()
                if not absorb(s, b, r.get()):
                    return
        while pending:
            s, b, r = pending.popleft()
            if not absorb(s, b, r.get()):
                return
    return check_root(tree, cp, trusted, trusted_at, report, progress)
