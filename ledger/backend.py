"""The ledger's two storage backends behind one interface (docs/protocol.md §11).

``open_store(target)`` gives a ``store.Store`` (SQLite, the embedded default:
``target`` is a file path) or a ``pgstore.PgStore`` (``target`` is a
``postgresql://`` URL, shared by any number of server nodes). Both hold the
same tables (meta, entries, stored hashes in Go tlog's layout, checkpoints),
so every reader (verify, scrub, bundles, tiles, proofs) runs unchanged on
either through ``LedgerStore``.
"""

from __future__ import annotations

import os
import re
import sqlite3
from typing import ContextManager, Iterator, Protocol

import psycopg

from .pgstore import PgStore, display_url, url_passwords
from .store import Store, StoreError

URL_SCHEMES = ("postgresql://", "postgres://")
_ANY_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")  # RFC 3986 §3.1 scheme

# What a store's database driver raises (besides StoreError).
DB_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, psycopg.Error)


class LedgerStore(Protocol):
    """What the ledger reads and writes through; both backends implement it.

    ``connection()`` lends a reader for a block, ``write()`` runs a block as
    one write transaction (serialised with every other writer of the log),
    ``snapshot()`` a block of reads that see one consistent state. The
    ``put_*`` methods run inside ``write()`` on the connection it yields.
    """

    path: str | os.PathLike

    def connection(self, conn=None) -> ContextManager: ...
    def write(self, conn=None, *, then=None) -> ContextManager: ...
    def snapshot(self) -> ContextManager: ...
    def meta(self, key: str, conn=None) -> str | None: ...
    def size(self, conn=None) -> int: ...
    def hash_count(self, conn=None) -> int: ...
    def read_hashes(self, ids: list[int], conn=None) -> list[bytes]: ...
    def entries(self, start: int, end: int, conn=None) -> list[bytes]: ...
    def iter_rows(self, table: str, start: int = 0, end: int | None = None, *, conn=None,
                  chunk: int = 10_000) -> Iterator[tuple[int, bytes]]: ...
    def entries_holding(self, needle: bytes, start: int, end: int) -> Iterator[tuple[int, bytes]]: ...
    def sizes(self, conn=None) -> tuple[int, int]: ...
    def latest_checkpoint(self, conn=None) -> tuple[int, bytes, float] | None: ...
    def put_meta(self, conn, key: str, value: str) -> None: ...
    def put_entries(self, conn, rows: list[tuple[int, bytes]]) -> None: ...
    def put_entry_run(self, conn, first: int, datas: list[bytes]) -> None: ...
    def put_hash_run(self, conn, first_id: int, hashes: list[bytes]) -> None: ...
    def put_checkpoint(self, conn, size: int, note: bytes, signed_at: float) -> None: ...
    def close(self) -> None: ...


def is_url(target) -> bool:
    """Whether ``target`` names a PostgreSQL database rather than a file."""
    return isinstance(target, str) and target.startswith(URL_SCHEMES)


def has_password(target) -> bool:
    """Whether a PostgreSQL URL carries a password (in its user info or its query)."""
    return is_url(target) and bool(url_passwords(target))


def open_store(target, *, create: bool = True) -> LedgerStore:
    """The store at ``target``: a PostgreSQL URL or a SQLite file path.
    Raises StoreError when it cannot be opened or is not a ledger."""
    if is_url(target):
        return PgStore(target, create=create)
    refuse_other_urls(target)
    return Store(target, create=create)


def refuse_other_urls(target) -> None:
    """StoreError for a URL of any other database (``mysql://``,
    ``sqlite://``), which would otherwise be taken for a file path. Names
    only its scheme: the rest may hold a password."""
    other = _ANY_URL.match(target) if isinstance(target, str) else None
    if other is not None:
        raise StoreError(f"{other.group(1)}:// is not a database labelcheck keeps a ledger in: "
                         "give a postgresql:// URL, or the path of a SQLite file")


def display(target) -> str:
    """``target`` fit to print: a URL without its password."""
    return display_url(target) if is_url(target) else str(target)


__all__ = ["DB_ERRORS", "LedgerStore", "StoreError", "display", "has_password", "is_url", "open_store",
           "refuse_other_urls"]
