"""Counting what a bundle holds, as ``verify_bundle`` verifies it.

``AuditData.count`` is the ``on_entry`` sink of
``labelcheck.ledger.bundle.verify_bundle``: the verifier hands it each entry
(its index, RFC 9162 leaf hash and parsed value) once the entry's own checks
held, so the bundle is read once, by the one parser of its format
(docs/protocol.md §4). ``finish`` then takes what verification proved
(checkpoint, completeness, filter, trusted size); counts are used only from a
bundle that verified.

Entries are reduced to counters: per day and status, per category, per
producer key, per registry event, plus a bounded top-N of the worst results.
Memory does not grow with the number of entries: counters are keyed by day,
status, category and key id (the last capped at ``MAX_KEYS``), and only
``top`` worst items are kept (a heap).
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from dataclasses import dataclass, field

from labelcheck.ledger import checkpoint, note
from labelcheck.ledger.bundle import BundleReport
from labelcheck.util import b64

STATUSES = ("verified", "invalid", "unverified", "declared", "none")
CATEGORIES = ("confirmed", "possible", "suspected", "none")
BAD_STATUSES = {"invalid": 2, "unverified": 1}  # worst-table rank
PASSING_REASONS = frozenset({
    "signature_ok", "content_match", "c2pa_trusted", "countersignature_ok", "key_revoked_later",
})
MAX_KEYS = 10_000  # distinct producer key ids counted one by one
MAX_EVENTS = 1_000  # registry events kept for the time line
MAX_KINDS = 50  # distinct unknown entry kinds counted
MAX_TEXT = 200  # entry strings are cut to this for display
MAX_REASONS = 24
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}T")


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

    checkpoint: checkpoint.Checkpoint | None = None  # set by ``finish``, as are key_id and vkey
    key_id: str = ""
    vkey: str = ""
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
    claims: int = 0  # claims published to the registry (docs/protocol.md §12)
    other_kinds: Counter = field(default_factory=Counter)
    worst: list[WorstItem] = field(default_factory=list)  # a heap until ``finish``
    bad_results: int = 0
    first_time: str | None = None
    last_time: str | None = None
    top: int = 50

    def count(self, index: int, leaf: bytes, value) -> None:
        """Count one verified entry (``verify_bundle``'s ``on_entry``)."""
        _count(self, index, leaf, value)

    def finish(self, verified: BundleReport, verifier: note.Verifier) -> None:
        """Take what verification proved; sort the worst items, worst first."""
        self.checkpoint, self.key_id, self.vkey = verified.checkpoint, verifier.key_id, verifier.vkey
        self.complete, self.trusted_size = verified.complete, verified.trusted_size
        self.filter = dict(verified.filter or {}) if not verified.complete else None
        self.worst.sort(reverse=True)


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
    elif kind == "claim":
        data.claims += 1
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
        rank=rank, index=index, leaf_hash=b64.encode(leaf),
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
