"""Fetching media by URL without becoming a proxy into private networks:
the fetcher (:mod:`.fetcher`), the address guard (:mod:`.netguard`) and
connections pinned to a checked address (:mod:`.pinned`)."""

from .fetcher import FetchPolicy, FetchResult, MediaFetcher

__all__ = ["FetchPolicy", "FetchResult", "MediaFetcher"]
