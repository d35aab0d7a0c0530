"""Fetching media by URL without becoming a proxy into private networks:
the fetcher (:mod:`.fetcher`), several fetches under one deadline
(:mod:`.batch`), URL checks (:mod:`.target`), the address guard
(:mod:`.netguard`), connections pinned to a checked address (:mod:`.pinned`)
and the revalidation cache (:mod:`.cache`)."""

from .batch import fetch_all
from .fetcher import MediaFetcher
from .policy import REASONS, FetchPolicy, FetchResult

__all__ = ["REASONS", "FetchPolicy", "FetchResult", "MediaFetcher", "fetch_all"]
