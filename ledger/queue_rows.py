"""The rows of ``ledger_queue`` as the sequencer's leader takes them
(docs/protocol.md §11): each a JSON list of records queued by one append
(``queue_append``), taken in queue order in commits of bounded size, and
dropped once answered and left uncollected for ``STALE``."""

from __future__ import annotations

import json

from .canonical import CanonicalError
from .entry_batch import batch_parts
from .entry_encode import entry_parts

# Records per commit from queued rows (at least one row's): what a commit
# computes between its statements stays well within the lease (``lease``).
MAX_RECORDS = 20_000
STALE = "10 minutes"  # finished queue rows nobody collected (their node died) are dropped after this


class BadRow(list):
    """A queued row whose text holds no list of records: it fails the commit
    that takes it, as a record that does not encode does (``why`` says why)."""

    def __init__(self, why: str) -> None:
        super().__init__()
        self.why = why


def take_rows(rows: list[tuple[int, str]], ids: list[int]) -> list[list]:
    """The records of the first ``rows`` (id, JSON text), in order, up to
    ``MAX_RECORDS`` in all (at least the first row's), their ids appended to
    ``ids``; the rest stay queued for the next commit."""
    taken: list[list] = []
    total = 0
    for row_id, text in rows:
        records = row_records(text)
        if taken and total + len(records) > MAX_RECORDS:
            break
        ids.append(row_id)
        taken.append(records)
        total += len(records)
    return taken


def row_records(text: str) -> list:
    """A queued row's records (a JSON list of objects); a ``BadRow`` when the
    text is not a JSON list."""
    try:
        records = json.loads(text)
    except ValueError as exc:
        return BadRow(f"a queued row is not JSON: {exc}")
    return records if isinstance(records, list) else BadRow("a queued row is not a JSON list of records")


def encode_rows(rows: list[list[dict]]) -> list[list[tuple[bytes, bytes, bytes]]]:
    """``entry_parts`` of each row's records: the rows' records encoded
    together when they make a batch (``entry_batch``: queued rows of one
    shape, each too small to gain alone), else row by row. Raises
    CanonicalError for a ``BadRow`` or a record that does not encode."""
    for row in rows:
        if isinstance(row, BadRow):
            raise CanonicalError(row.why)
    together = batch_parts([record for row in rows for record in row]) if len(rows) > 1 else None
    if together is None:
        return [batch_parts(row) or [entry_parts(record) for record in row] for row in rows]
    out, at = [], 0
    for row in rows:
        out.append(together[at:at + len(row)])
        at += len(row)
    return out


def sweep(conn) -> None:
    """Drop finished queue rows older than ``STALE`` that nobody collected:
    their node stopped, or lost its connection before deleting them."""
    conn.execute("DELETE FROM ledger_queue WHERE (size IS NOT NULL OR error IS NOT NULL) "
                 "AND queued_at < now() - %s::interval", (STALE,))
