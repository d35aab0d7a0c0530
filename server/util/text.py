"""Unicode text: whether a Python string is text at all.

A ``str`` may hold a lone surrogate (from a ``\\ud800`` JSON escape, say),
which is no Unicode scalar value and has no UTF-8 encoding (RFC 3629 §3):
such a string must be refused before it is written anywhere.
"""

from __future__ import annotations


def is_unicode(text: str) -> bool:
    """False when ``text`` holds a lone surrogate. ASCII text (most) is told
    by a flag of the string, without a scan."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
