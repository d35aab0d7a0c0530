"""The claim registry's index: a table in the ledger's database derived from
its ``claim`` entries (docs/protocol.md §4, §12).

The ledger is the record; the index only makes it searchable, so it is
rebuilt from the entries whenever it is missing or behind:

* ``claim_index(claim_id PRIMARY KEY, entry, digest, envelope_sha256,
  key_id, sha256, pdq)``: one row per published claim, ``entry`` its
  ledger index, ``pdq`` the 32 bytes of its PDQ hash or NULL; indexed by
  ``sha256`` for exact lookups.
* ``claim_index_state(key, value)``: ``upto``, the ledger size up to which
  every ``claim`` entry is in the table.

:meth:`ClaimIndex.sync` reads the entries from ``upto`` to the ledger's end
and adds the claims among them, so a table dropped, damaged or left behind
by a crash between an append and its indexing is made whole again. The
append-only triggers of the ledger's own tables do not apply here.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from .log import Ledger, LedgerError

KIND = "claim"
_NEEDLE = b'"kind":"claim"'  # canonical JSON writes the member exactly so
_SCAN_CHUNK = 10_000

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS claim_index (claim_id TEXT PRIMARY KEY, entry INTEGER NOT NULL, "
    "digest TEXT NOT NULL, envelope_sha256 TEXT NOT NULL, key_id TEXT NOT NULL, sha256 TEXT NOT NULL, "
    "pdq BLOB)",
    "CREATE INDEX IF NOT EXISTS claim_index_sha256 ON claim_index(sha256)",
    "CREATE TABLE IF NOT EXISTS claim_index_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


@dataclass(frozen=True)
class IndexedClaim:
    """One row of the index."""

    claim_id: str
    entry: int
    digest: str
    envelope_sha256: str
    key_id: str
    sha256: str
    pdq: str | None
    row: int = 0

    @classmethod
    def from_entry(cls, index: int, value: dict) -> "IndexedClaim":
        return cls(value["claim_id"], index, value["claim_digest"], value["envelope_sha256"],
                   value["key_id"], value["content_sha256"], value.get("pdq"))

    def params(self) -> tuple:
        pdq = bytes.fromhex(self.pdq) if self.pdq else None
        return (self.claim_id, self.entry, self.digest, self.envelope_sha256, self.key_id, self.sha256, pdq)


_COLUMNS = "claim_id, entry, digest, envelope_sha256, key_id, sha256, pdq, rowid"


def _row(r) -> IndexedClaim:
    return IndexedClaim(r[0], r[1], r[2], r[3], r[4], r[5], bytes(r[6]).hex() if r[6] is not None else None, r[7])


class ClaimIndex:
    """The index of ``ledger``'s claim entries (see the module docstring)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._store = ledger.index_store  # the ledger's SQLite file, or this node's beside PostgreSQL
        try:
            with self._store.connection() as conn, self._store.write(conn):
                have = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'claim_index'")
                missing = have.fetchone() is None
                for sql in _SCHEMA:
                    conn.execute(sql)
                if missing:  # a table dropped or never made: rebuild it from the first entry
                    conn.execute("DELETE FROM claim_index_state WHERE key = 'upto'")
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot create the claim index: {exc}") from exc

    # Keeping up with the ledger -----------------------------------------

    def sync(self) -> int:
        """Index every claim entry not yet indexed; the number added. Safe to
        call from several processes: each reads and writes in one transaction."""
        added = 0
        size = self.ledger.size()
        try:
            with self._store.connection() as conn:
                start = self._upto(conn)
                while start < size:
                    end = min(size, start + _SCAN_CHUNK)
                    rows = self._claims_in(start, end)
                    with self._store.write(conn):
                        if self._upto(conn) == start:  # nobody else indexed this stretch meanwhile
                            added += self._insert(conn, rows, end)
                    start = self._upto(conn)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot update the claim index: {exc}") from exc
        return added

    def _claims_in(self, start: int, end: int) -> list[IndexedClaim]:
        rows = []
        for i, data in self.ledger.store.entries_holding(_NEEDLE, start, end):
            value = json.loads(data)
            if value.get("kind") == KIND:
                rows.append(IndexedClaim.from_entry(i, value))
        return rows

    def add(self, claims: list[IndexedClaim], upto: int) -> None:
        """Index ``claims`` just appended, the last of them below ``upto``;
        only under the publisher's lock, with the index synced before the
        append (so nothing else below ``upto`` is missing). With a log that
        several nodes share (PostgreSQL), the others may have published
        between that sync and the append: the log is read in order instead
        (``sync``), so nothing is skipped and every node's index keeps the
        same, first, claim of an id."""
        if self.ledger.sequencer is not None:
            self.sync()
            return
        try:
            with self._store.connection() as conn, self._store.write(conn):
                self._insert(conn, claims, max(upto, self._upto(conn)))
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot update the claim index: {exc}") from exc

    @staticmethod
    def _insert(conn: sqlite3.Connection, rows: list[IndexedClaim], upto: int) -> int:
        before = conn.total_changes
        conn.executemany("INSERT OR IGNORE INTO claim_index(claim_id, entry, digest, envelope_sha256, key_id, "
                         "sha256, pdq) VALUES (?, ?, ?, ?, ?, ?, ?)", [r.params() for r in rows])
        added = conn.total_changes - before
        conn.execute("INSERT OR REPLACE INTO claim_index_state(key, value) VALUES ('upto', ?)", (upto,))
        return added

    @staticmethod
    def _upto(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT value FROM claim_index_state WHERE key = 'upto'").fetchone()
        return row[0] if row else 0

    # Lookups ------------------------------------------------------------

    def by_id(self, claim_id: str) -> IndexedClaim | None:
        return self._one(f"SELECT {_COLUMNS} FROM claim_index WHERE claim_id = ?", (claim_id,))

    def by_ids(self, claim_ids: list[str]) -> dict[str, IndexedClaim]:
        """The rows of those of ``claim_ids`` that are indexed, by id."""
        out = {}
        for start in range(0, len(claim_ids), 500):  # under SQLite's bound-parameter limit
            part = claim_ids[start:start + 500]
            marks = ",".join("?" * len(part))
            out.update((c.claim_id, c) for c in self._all(
                f"SELECT {_COLUMNS} FROM claim_index WHERE claim_id IN ({marks})", part))
        return out

    def by_sha256(self, sha256: str) -> list[IndexedClaim]:
        """Every claim for exactly these bytes, oldest first."""
        return self._all(f"SELECT {_COLUMNS} FROM claim_index WHERE sha256 = ? ORDER BY entry", (sha256,))

    def by_rows(self, rows: list[int]) -> list[IndexedClaim]:
        marks = ",".join("?" * len(rows))
        return self._all(f"SELECT {_COLUMNS} FROM claim_index WHERE rowid IN ({marks})", rows) if rows else []

    def pdq_after(self, row: int, limit: int = 100_000) -> list[tuple[int, bytes]]:
        """``(rowid, pdq bytes)`` of claims with a PDQ hash, rowid above ``row``."""
        return self._all_raw("SELECT rowid, pdq FROM claim_index WHERE rowid > ? AND pdq IS NOT NULL "
                             "ORDER BY rowid LIMIT ?", (row, limit))

    def count(self) -> int:
        return self._all_raw("SELECT count(*) FROM claim_index", ())[0][0]

    def entry(self, claim: IndexedClaim) -> dict:
        """The ledger entry a row was made from."""
        return json.loads(self.ledger.entries(claim.entry, claim.entry + 1)[0])

    def _one(self, sql: str, args) -> IndexedClaim | None:
        rows = self._all(sql, args)
        return rows[0] if rows else None

    def _all(self, sql: str, args) -> list[IndexedClaim]:
        return [_row(r) for r in self._all_raw(sql, args)]

    def _all_raw(self, sql: str, args) -> list:
        try:
            with self._store.connection() as conn:
                return conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise LedgerError(f"claim index read failed: {exc}") from exc
