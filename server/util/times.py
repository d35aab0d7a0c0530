"""Time in one form: RFC 3339 UTC (RFC 3339 §5.6), whole seconds when written.

:func:`format_time` writes ``YYYY-MM-DDTHH:MM:SSZ`` with the year always four
digits (``0999``, where ``strftime("%Y")`` would write ``999`` on glibc).
:func:`parse_time` is the one reader: ``T``, seconds and an offset are
required, ASCII digits only, fractions to nanoseconds (cut to microseconds).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

RFC3339 = re.compile(  # ASCII digits only: \d would admit other scripts' digits
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(timezone.utc)


def as_utc(when: datetime) -> datetime:
    """``when`` in UTC; a naive datetime is taken to be UTC already."""
    if when.tzinfo is None:
        return when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def format_time(when: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (RFC 3339, UTC, whole seconds, 4-digit year)."""
    w = as_utc(when)
    return f"{w.year:04d}-{w.month:02d}-{w.day:02d}T{w.hour:02d}:{w.minute:02d}:{w.second:02d}Z"


def now_text() -> str:
    """The current time as :func:`format_time` writes it."""
    return format_time(utc_now())


def file_stamp(when: datetime | None = None, *, micro: bool = False) -> str:
    """A compact UTC stamp for file names: ``YYYYMMDDTHHMMSSZ`` (with
    ``.ffffff`` before the ``Z`` when ``micro``)."""
    w = as_utc(when or utc_now())
    text = f"{w.year:04d}{w.month:02d}{w.day:02d}T{w.hour:02d}{w.minute:02d}{w.second:02d}"
    return text + (f".{w.microsecond:06d}Z" if micro else "Z")


def parse_time(text: object, *, utc_only: bool = False) -> datetime:
    """The instant an RFC 3339 date-time names, as an aware datetime.

    ``utc_only``: accept only ``Z`` or ``+00:00``/``-00:00`` (claims state
    times in UTC so that comparing them needs no time-zone data). Raises
    ValueError naming what is wrong.
    """
    if not isinstance(text, str):
        raise ValueError("must be an RFC 3339 time string")
    m = RFC3339.fullmatch(text)
    if m is None:
        raise ValueError(f"must be an RFC 3339 time like 2025-09-01T12:00:00Z, got {text[:40]!r}")
    offset = m.group(2)
    if utc_only and offset not in ("Z", "z", "+00:00", "-00:00"):
        raise ValueError(f"must be in UTC (Z), not offset {offset}")
    value = text.upper()
    if m.group(1) and len(m.group(1)) > 7:  # fromisoformat reads at most microseconds
        value = value[:m.start(1) + 7] + value[m.end(1):]
    if offset == "-00:00":  # RFC 3339 §4.3: unknown local offset, instant is UTC
        value = value[:-6] + "+00:00"
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not a valid date and time: {exc}") from None
    return when.astimezone(timezone.utc) if utc_only else when
