"""Export filters: which ledger entries a filtered bundle holds.

A filter names any of five conditions; an entry matches when all the given
ones hold (an empty filter matches everything):

* ``since``, ``until``: RFC 3339 date-times (RFC 3339 §5.6, with ``T``,
  seconds and an offset or ``Z``). The entry's ``time`` field, read the same
  way, must fall in ``[since, until)``: ``since`` inclusive, ``until``
  exclusive, compared as instants (so ``+08:00`` and ``Z`` mix). An entry
  without a readable ``time`` matches no time filter.
* ``key_id``: a producer key id (``name+hex8``). A ``verification`` entry
  matches on its ``key_id``, a ``registry`` entry on its ``producer.key_id``,
  so a producer's filtered export also carries its registry history.
* ``status``: a verification status (``verified``, ``invalid``, ...); only
  ``verification`` entries carry one.
* ``kind``: ``verification``, ``registry`` or ``claim``.

The filter travels in a filtered bundle's header (``Filter.to_json``), and
the verifier re-checks every entry against it, so an exporter cannot slip in
entries the filter excludes. It cannot show the converse: a filtered bundle
never proves that no matching entry was left out; only a complete bundle
proves completeness.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from labelcheck.util import times

KINDS = ("verification", "registry", "claim")
FIELDS = ("since", "until", "key_id", "status", "kind")
MAX_VALUE = 200  # characters in a key id or status
_WORD = re.compile(r"[!-~]+\Z")  # printable ASCII, no space: key ids and statuses


class FilterError(ValueError):
    """A filter value that is not what its field takes; the message says which."""


def parse_time(text) -> datetime | None:
    """The instant an RFC 3339 date-time names (``util.times.parse_time``: any
    offset, up to nine fractional digits), or None when ``text`` is not one."""
    try:
        return times.parse_time(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Filter:
    """The conditions of one filtered export; None means "not filtered on"."""

    since: str | None = None
    until: str | None = None
    key_id: str | None = None
    status: str | None = None
    kind: str | None = None

    @classmethod
    def parse(cls, values) -> "Filter":
        """A Filter from a mapping of field to string (query parameters, a
        bundle header). Raises FilterError naming the first bad field."""
        if not isinstance(values, dict):
            raise FilterError("the filter must be a JSON object")
        unknown = sorted(str(k) for k in values if k not in FIELDS)
        if unknown:
            raise FilterError(f"unknown filter {unknown[0]!r} (filters: {', '.join(FIELDS)})")
        given = {k: v for k, v in values.items() if v is not None}
        for name, value in given.items():
            if type(value) is not str or not value:
                raise FilterError(f"filter {name!r} must be a non-empty string")
        for name in ("since", "until"):
            if name in given and parse_time(given[name]) is None:
                raise FilterError(f"filter {name!r} must be an RFC 3339 date-time such as "
                                  f"2025-06-01T00:00:00Z, not {given[name][:40]!r}")
        for name in ("key_id", "status"):
            if name in given and (len(given[name]) > MAX_VALUE or not _WORD.match(given[name])):
                raise FilterError(f"filter {name!r} must be at most {MAX_VALUE} printable ASCII characters "
                                  f"without spaces, not {given[name][:40]!r}")
        if "kind" in given and given["kind"] not in KINDS:
            raise FilterError(f"filter 'kind' must be one of {', '.join(KINDS)}, not {given['kind'][:40]!r}")
        if "since" in given and "until" in given and parse_time(given["since"]) >= parse_time(given["until"]):
            raise FilterError("filter 'since' must be earlier than 'until' (the range is [since, until))")
        return cls(**given)

    def to_json(self) -> dict:
        """The given conditions, as written in a filtered bundle's header."""
        return {name: getattr(self, name) for name in FIELDS if getattr(self, name) is not None}

    @property
    def empty(self) -> bool:
        return not self.to_json()

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.to_json().items()) or "(none)"

    def matcher(self):
        """``match(data: bytes) -> bool`` for an entry's exact bytes.

        Cheap byte tests rule most entries out before any parsing. A matching
        entry's canonical JSON contains the JSON string of the key id, status
        and kind asked for (canonical JSON writes a string one way only). And
        ``"time":"`` occurs in it only as an object key (inside a string the
        quotes are escaped), so when no such key holds a time in range, the
        entry's own ``time`` is not in range either.
        """
        needles = [json.dumps(v, ensure_ascii=False).encode("utf-8")
                   for v in (self.key_id, self.status, self.kind) if v is not None]
        matches = self.value_matcher()
        timed = self.since is not None or self.until is not None
        in_range = self._range_test()
        loads = json.JSONDecoder().decode

        def match(data: bytes) -> bool:
            for needle in needles:
                if needle not in data:
                    return False
            if timed and not _any_time_in_range(data, in_range):
                return False
            try:
                value = loads(data.decode("utf-8"))
            except ValueError:
                return False
            return type(value) is dict and matches(value)

        return match

    def value_matcher(self):
        """``match(value: dict) -> bool`` for a parsed entry."""
        in_range = self._range_test()
        timed = self.since is not None or self.until is not None
        key_id, status, kind = self.key_id, self.status, self.kind

        def match(value: dict) -> bool:
            got = value.get("kind")
            if kind is not None and got != kind:
                return False
            if status is not None and (got != "verification" or value.get("status") != status):
                return False
            if key_id is not None and entry_key_id(value) != key_id:
                return False
            return not timed or in_range(value.get("time"))

        return match

    def matches(self, value: dict) -> bool:
        """Whether the entry ``value`` (a parsed JSON object) meets every condition."""
        return self.value_matcher()(value)

    def _range_test(self):
        """``in_range(text) -> bool``: an RFC 3339 time in [since, until); the
        last answer is kept, since neighbouring entries share their second."""
        since = parse_time(self.since) if self.since else None
        until = parse_time(self.until) if self.until else None
        last = [None, False]

        def in_range(text) -> bool:
            if text == last[0] and text is not None:
                return last[1]
            at = parse_time(text)
            ok = at is not None and (since is None or at >= since) and (until is None or at < until)
            last[0], last[1] = text, ok
            return ok

        return in_range


def _any_time_in_range(data: bytes, in_range) -> bool:
    """Whether some ``"time":"…"`` member of the JSON text ``data`` is in range."""
    at = data.find(b'"time":"')
    while at >= 0:
        start = at + 8
        end = data.find(b'"', start)
        if end < 0:
            return False
        try:
            if in_range(data[start:end].decode("ascii")):
                return True
        except UnicodeDecodeError:
            pass
        at = data.find(b'"time":"', end)
    return False


def entry_key_id(value: dict) -> str | None:
    """The producer key id an entry is about: ``key_id`` of a verification,
    ``producer.key_id`` of a registry change."""
    if value.get("kind") == "registry":
        producer = value.get("producer")
        return producer.get("key_id") if isinstance(producer, dict) else None
    return value.get("key_id")
