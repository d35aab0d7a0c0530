"""What a fetch may do and what it answers: :class:`FetchPolicy`,
:class:`FetchResult` and the failure reasons (docs/protocol.md §6)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from labelcheck.fetch import netguard

REASONS = frozenset({
    "scheme_refused", "address_refused", "dns_failed", "too_many_redirects",
    "too_large", "timeout", "http_error", "connect_failed", "bad_url",
    "deadline",  # the request's shared fetch deadline passed first
})


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for fetching. ``allow`` lists host names or CIDRs that may be
    reached although :mod:`labelcheck.fetch.netguard` refuses them
    (``--fetch-allow``); ``max_concurrent`` bounds the fetches one fetcher
    (one per server process) runs at once."""

    max_bytes: int = 50 * 1024 * 1024
    max_redirects: int = 5
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 30.0  # one fetch: DNS, redirects and body
    allow: tuple[str, ...] = ()
    user_agent: str = "labelcheck/0.1 (+media verification)"
    max_concurrent: int = 8

    def __post_init__(self) -> None:
        allow = (self.allow,) if isinstance(self.allow, str) else tuple(self.allow)
        object.__setattr__(self, "allow", allow)
        for name in ("max_bytes", "max_concurrent"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if not isinstance(self.max_redirects, int) or self.max_redirects < 0:
            raise ValueError(f"max_redirects must be a non-negative integer, not {self.max_redirects!r}")
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        netguard.Allowlist.parse(allow)  # a typo in --fetch-allow fails at start-up


@dataclass
class FetchResult:
    ok: bool
    url: str  # as asked
    final_url: str | None
    sha256: str | None  # lowercase hex of the body bytes
    size: int | None
    media_type: str | None  # Content-Type without parameters
    reason: str | None  # one of REASONS when not ok
    detail: str | None  # human text; when ok, a note such as a failed analysis
    analysis: object = None  # what analyze() returned
    from_cache: bool = False

    @classmethod
    def failed(cls, url: object, reason: str, detail: str) -> "FetchResult":
        asked = url if isinstance(url, str) else repr(url)
        return cls(False, asked, None, None, None, None, reason, detail)


class FetchFailed(Exception):
    """A fetch stopped; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, detail: str):
        assert reason in REASONS, reason
        super().__init__(detail)
        self.reason, self.detail = reason, detail
