"""Counting what a verified bundle holds, in one streaming pass.

``gather`` reads a ``labelcheck-bundle/1`` file (``ledger.bundle``) that
``verify_bundle`` has already accepted and reduces it to counters: per day
and status, per category, per producer key, per registry event, plus a
bounded top-N of the worst results. Memory does not grow with the number of
entries: counters are keyed by day, status, category and key id (the last
capped at ``MAX_KEYS``), and only ``top`` worst items are kept (a heap).

The file is read a second time after verification, so it is checked again as
it streams, against the checkpoint that verification accepted: a complete
bundle must hash to the same RFC 9162 root (§2.1.1) with exactly ``size``
entries; in a filtered bundle every entry's inclusion proof (§2.1.3.2) must
lead to that root, with indexes strictly increasing (so no entry is counted
twice). A file swapped or edited between the two reads raises GatherError,
so the report never shows numbers that were not verified.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

from labelcheck.ledger import canonical, checkpoint, merkle, note
from labelcheck.ledger.bundle import FORMAT

STATUSES = ("verified", "invalid", "unverified", "declared", "none")
CATEGORIES = ("confirmed", "possible", "suspected", "none")
BAD_STATUSES = {"invalid": 2, "unverified": 1}  # worst-table rank
PASSING_REASONS = frozenset({
    "signature_ok", "content_match", "c2pa_trusted", "countersignature_ok", "key_revoked_later",
})
MAX_KEYS = 10_000  # distinct producer key ids counted one by one
MAX_EVENTS = 1_000  # registry events kept for the time line
MAX_KINDS = 50  # distinct unknown entry kinds counted
MAX_LINE = 4 << 20  # a filtered line holds an entry (<= 1 MiB, escaped) and its proof
MAX_TEXT = 200  # entry strings are cut to this for display
MAX_REASONS = 24
PROGRESS_EVERY = 16_384
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}T")
_DECODER = json.JSONDecoder()

Progress = Callable[[int, int], None]


class GatherError(Exception):
    """The bundle no longer matches the checkpoint it was verified against."""


@dataclass
class ProducerStats:
    total: int = 0
    invalid: int = 0
    mismatch: int = 0
    verified: int = 0


@dataclass
class RegistryEvent:
    index: int
    time: str
    action: str
    key_id: str
    name: str
    filing: str | None


@dataclass(order=True)
class WorstItem:
    """One bad result and its receipt; ordering puts the worst last (heap key)."""

    rank: tuple
    index: int = field(compare=False)
    leaf_hash: str = field(compare=False)
    time: str = field(compare=False)
    status: str = field(compare=False)
    category: str = field(compare=False)
    key_id: str | None = field(compare=False)
    reasons: list[str] = field(compare=False)
    page_origin: str | None = field(compare=False)


@dataclass
class AuditData:
    """Everything the report shows, none of it a list of all entries."""

    checkpoint: checkpoint.Checkpoint
    key_id: str
    vkey: str
    complete: bool = True
    filter: dict | None = None
    trusted_size: int | None = None
    entries: int = 0
    verifications: int = 0
    by_status: Counter = field(default_factory=Counter)
    by_category: Counter = field(default_factory=Counter)
    by_day: dict[str, Counter] = field(default_factory=dict)
    mismatches: int = 0
    producers: dict[str, ProducerStats] = field(default_factory=dict)
    keys_overflow: int = 0  # verifications whose key id was past MAX_KEYS
    names: dict[str, str] = field(default_factory=dict)  # key id -> latest registry name
    revoked: set[str] = field(default_factory=set)  # key ids whose latest registry event is a revocation
    events: list[RegistryEvent] = field(default_factory=list)
    registry_events: int = 0
    other_kinds: Counter = field(default_factory=Counter)
    worst: list[WorstItem] = field(default_factory=list)  # a heap until ``finish``
    bad_results: int = 0
    first_time: str | None = None
    last_time: str | None = None
    top: int = 50

    def finish(self) -> None:
        """Sort the worst items, worst first."""
        self.worst.sort(reverse=True)


def gather(fp: BinaryIO, verified: checkpoint.Checkpoint, verifier: note.Verifier, *,
           top: int = 50, trusted_size: int | None = None, progress: Progress | None = None) -> AuditData:
    """Count the bundle read from ``fp``; see the module docstring.

    ``verified`` is the checkpoint ``verify_bundle`` accepted. Raises
    GatherError when the bundle read now is not that bundle.
    """
    header = _read_header(fp, verified, verifier)
    data = AuditData(checkpoint=verified, key_id=verifier.key_id, vkey=verifier.vkey, top=max(0, top),
                     complete=header.get("complete") is True, trusted_size=trusted_size)
    if data.complete:
        _gather_complete(fp, data, progress)
    else:
        filt = header.get("filter")
        data.filter = filt if isinstance(filt, dict) else {}
        _gather_filtered(fp, data, progress)
    data.finish()
    return data


def _read_header(fp: BinaryIO, verified: checkpoint.Checkpoint, verifier: note.Verifier) -> dict:
    try:
        header = json.loads(fp.readline(MAX_LINE))
    except (ValueError, UnicodeDecodeError):
        raise GatherError("the bundle's first line is no longer a header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise GatherError(f"the bundle is not in format {FORMAT}")
    text = header.get("checkpoint")
    try:
        cp = checkpoint.open_checkpoint(text.encode("utf-8"), verifier)
    except (AttributeError, checkpoint.CheckpointError, note.NoteError) as exc:
        raise GatherError(f"the bundle's checkpoint no longer verifies: {exc}") from None
    if (cp.origin, cp.size, cp.root) != (verified.origin, verified.size, verified.root):
        raise GatherError("the bundle's checkpoint changed after it was verified")
    return header


def _gather_complete(fp: BinaryIO, data: AuditData, progress: Progress | None) -> None:
    size = data.checkpoint.size
    tree = merkle.RootBuilder()
    readline, loads = fp.readline, _DECODER.decode
    for n in range(size):
        line = readline(MAX_LINE)
        if not line.endswith(b"\n"):
            raise GatherError(f"entry {n} is missing: the bundle changed after it was verified")
        entry = line[:-1]
        leaf = tree.append_data(entry)
        try:
            value = loads(entry.decode("utf-8"))
        except ValueError:
            raise GatherError(f"entry {n} is not JSON: the bundle changed after it was verified") from None
        _count(data, n, leaf, value)
        if progress and (n + 1) % PROGRESS_EVERY == 0:
            progress(n + 1, size)
    if readline(1) or tree.root() != data.checkpoint.root:
        raise GatherError("the entries no longer hash to the signed root: the bundle changed after it was verified")
    if progress:
        progress(size, size)


def _gather_filtered(fp: BinaryIO, data: AuditData, progress: Progress | None) -> None:
    cp, last = data.checkpoint, -1
    for line in iter(lambda: fp.readline(MAX_LINE), b""):
        if not line.endswith(b"\n"):
            raise GatherError(f"the line after index {last} is cut short or too long")
        index, entry, proof = _parse_filtered_line(line, last)
        leaf = merkle.leaf_hash(entry)
        try:
            merkle.verify_inclusion(index, cp.size, leaf, proof, cp.root)
        except merkle.ProofError as exc:
            raise GatherError(f"entry {index} is not proven included in the log of size {cp.size}: {exc}") from None
        try:
            value = canonical.parse(entry)
        except canonical.CanonicalError as exc:
            raise GatherError(f"entry {index} is not canonical JSON: {exc}") from None
        if not isinstance(value, dict) or value.get("index") != index:
            raise GatherError(f"the line for index {index} holds an entry for another index")
        _count(data, index, leaf, value)
        last = index
        if progress and data.entries % PROGRESS_EVERY == 0:
            progress(index + 1, cp.size)
    if progress:
        progress(cp.size, cp.size)


def _parse_filtered_line(line: bytes, last: int) -> tuple[int, bytes, list[bytes]]:
    try:
        obj = json.loads(line)
        index, entry, hashes = obj["index"], obj["entry"], obj["inclusion"]
    except (ValueError, TypeError, KeyError):
        raise GatherError(f"the line after index {last} is not an entry with its inclusion proof") from None
    if type(index) is not int or index <= last:
        raise GatherError(f"index {index!r} after {last}: filtered entries must have strictly increasing indexes")
    if not isinstance(entry, str) or not isinstance(hashes, list):
        raise GatherError(f"the line for index {index} is not an entry with its inclusion proof")
    try:
        proof = [base64.b64decode(h, validate=True) for h in hashes]
        return index, entry.encode("utf-8"), proof
    except (TypeError, binascii.Error, UnicodeEncodeError):
        raise GatherError(f"the inclusion proof or entry for index {index} is not well formed") from None


# --- counting ---------------------------------------------------------------


def _text(value, limit: int = MAX_TEXT) -> str | None:
    """An entry value for display: strings only, cut to ``limit`` characters."""
    if not isinstance(value, str):
        return None
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _count(data: AuditData, index: int, leaf: bytes, value) -> None:
    data.entries += 1
    if type(value) is not dict:
        _other(data, "?")
        return
    time = value.get("time")
    day = None
    if type(time) is str and _DAY.match(time):
        day = time[:10]
        if data.first_time is None or time < data.first_time:
            data.first_time = time
        if data.last_time is None or time > data.last_time:
            data.last_time = time
    kind = value.get("kind")
    if kind == "verification":
        _count_verification(data, index, leaf, value, time, day or "unknown")
    elif kind == "registry":
        _count_registry(data, index, value, time)
    else:
        _other(data, kind if isinstance(kind, str) else "?")


def _other(data: AuditData, kind: str) -> None:
    kind = kind[:40]
    if kind in data.other_kinds or len(data.other_kinds) < MAX_KINDS:
        data.other_kinds[kind] += 1
    else:
        data.other_kinds["…"] += 1


def _count_verification(data: AuditData, index: int, leaf: bytes, value: dict, time, day: str) -> None:
    data.verifications += 1
    status = value.get("status")
    status = status if status in STATUSES else "other"
    category = value.get("category")
    category = category if category in CATEGORIES else "none"
    reasons = value.get("reasons")
    if type(reasons) is not list:
        reasons = []
    elif not all(type(r) is str for r in reasons):
        reasons = [r for r in reasons if type(r) is str]
    mismatch = "content_mismatch" in reasons
    data.by_status[status] += 1
    data.by_category[category] += 1
    data.mismatches += mismatch
    counts = data.by_day.get(day)
    if counts is None:
        counts = data.by_day[day] = Counter()
    counts[status] += 1
    key_id = _text(value.get("key_id"))  # cut, so a huge attacker-chosen id costs little
    if key_id is not None:
        stats = data.producers.get(key_id)
        if stats is None and len(data.producers) < MAX_KEYS:
            stats = data.producers[key_id] = ProducerStats()
        if stats is None:
            data.keys_overflow += 1
        else:
            stats.total += 1
            stats.invalid += status == "invalid"
            stats.mismatch += mismatch
            stats.verified += status == "verified"
    if status in BAD_STATUSES:
        data.bad_results += 1
        _keep_worst(data, index, leaf, value, status, category, reasons, time)


def _keep_worst(data: AuditData, index: int, leaf: bytes, value: dict, status: str, category: str,
                reasons: list[str], time) -> None:
    if data.top == 0:
        return
    failing = sum(1 for r in reasons if r not in PASSING_REASONS)
    rank = (BAD_STATUSES[status], failing, index)
    if len(data.worst) >= data.top and rank <= data.worst[0].rank:
        return  # not worse than the best item kept: skip building it
    item = WorstItem(
        rank=rank, index=index, leaf_hash=base64.b64encode(leaf).decode("ascii"),
        time=_text(time, 40) or "", status=status, category=category,
        key_id=_text(value.get("key_id")), reasons=[_text(r, 80) for r in reasons[:MAX_REASONS]],
        page_origin=_text(value.get("page_origin")),
    )
    if len(data.worst) < data.top:
        heapq.heappush(data.worst, item)
    else:
        heapq.heapreplace(data.worst, item)


def _count_registry(data: AuditData, index: int, value: dict, time) -> None:
    data.registry_events += 1
    producer = value.get("producer")
    producer = producer if isinstance(producer, dict) else {}
    key_id = _text(producer.get("key_id")) or ""
    name = _text(producer.get("name")) or ""
    action = value.get("action")
    action = action if action in ("add", "revoke") else "other"
    if key_id and (key_id in data.names or len(data.names) < MAX_KEYS):
        if name:
            data.names[key_id] = name
        if action == "revoke":
            data.revoked.add(key_id)
        elif action == "add":
            data.revoked.discard(key_id)
    if len(data.events) < MAX_EVENTS:
        data.events.append(RegistryEvent(index=index, time=_text(time, 40) or "", action=action,
                                         key_id=key_id, name=name, filing=_text(producer.get("filing"))))
