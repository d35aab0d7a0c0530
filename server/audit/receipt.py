"""Checking a self-proving receipt, offline and against the log (docs/protocol.md §10).

A receipt is ``{"index", "leaf_hash", "checkpoint", "inclusion"}``: the
entry's position, its RFC 9162 leaf hash (standard base64), the signed C2SP
checkpoint note of the commit that appended it, and the RFC 9162 §2.1.3
inclusion proof of the leaf in that checkpoint's tree. A whole result (an
object with a ``receipt``), or a ``/v1/verify`` answer with one result, is
accepted too.

Offline (:func:`check_offline`): the checkpoint opens with the log's key
(and a quorum of witness cosignatures, ``audit.trust``), and the proof
leads from the leaf at ``index`` to the signed root (RFC 9162 §2.1.3.2).

Against the log (:func:`check_server`): the server's current checkpoint must
open the same way and extend the receipt's, or be an older one that the
receipt's extends (a witnessed checkpoint lags its commit), by RFC 9162
§2.1.4 consistency proofs (``audit.monitor.check_once`` does the comparing). A log that cannot
prove it no longer holds the tree the receipt was signed in; both signed
notes are saved as evidence (:func:`save_evidence`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from labelcheck.audit import monitor
from labelcheck.audit.trust import LogTrust, QuorumError
from labelcheck.ledger import checkpoint, merkle, note
from labelcheck.util import b64

FIELDS = ("index", "leaf_hash", "checkpoint", "inclusion")
MAX_PROOF = 64  # an RFC 9162 path in a tree of at most 2**63 - 1 leaves is shorter
MAX_NOTE = 64 * 1024  # a checkpoint and 100 signature lines are a few KiB

# What a check-receipt run ends with (``labelcheck ledger check-receipt``).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNCHECKED = 0, 1, 2, 3


class ReceiptError(ValueError):
    """The input is not a receipt at all: not JSON, or no receipt fields."""


class ReceiptInvalid(Exception):
    """The receipt does not check: a damaged field, a checkpoint that does not
    open, a proof that does not lead to the signed root."""


@dataclass(frozen=True)
class Receipt:
    """A parsed receipt: the hashes decoded, the note kept as sent."""

    index: int
    leaf_hash: bytes
    note: bytes
    inclusion: tuple[bytes, ...]


def load_receipt(data: bytes) -> Receipt:
    """Parse a receipt, or a result carrying one, from JSON bytes.

    Raises ReceiptError for input that is no receipt (not JSON, duplicate
    keys, fields missing) and ReceiptInvalid for a receipt field that is
    damaged (a wrong type, base64 that is not canonical, a hash of the
    wrong length).
    """
    try:
        doc = json.loads(data, object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ReceiptError(f"not JSON: {exc}") from None
    if isinstance(doc, dict) and isinstance(doc.get("results"), list) and "receipt" not in doc:
        if len(doc["results"]) != 1:  # a whole /v1/verify answer
            raise ReceiptError(f"the answer holds {len(doc['results'])} results: give one of them "
                               "(for instance jq '.results[0]')")
        doc = doc["results"][0]
    if isinstance(doc, dict) and isinstance(doc.get("receipt"), dict):
        doc = doc["receipt"]  # a whole result
    if not isinstance(doc, dict) or not {"index", "leaf_hash"} <= doc.keys():
        raise ReceiptError('neither a receipt {"index", "leaf_hash", "checkpoint", "inclusion"} '
                           'nor a result with a "receipt"')
    if not {"checkpoint", "inclusion"} <= doc.keys():
        raise ReceiptError("the receipt has no checkpoint and inclusion proof, so it cannot prove itself "
                           "(issued by an older server?)")
    return Receipt(_index(doc["index"]), _hash(doc["leaf_hash"], "leaf_hash"), _note(doc["checkpoint"]),
                   _proof(doc["inclusion"]))


def _no_duplicates(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("an object has a key twice")
    return dict(pairs)


def _index(value) -> int:
    if type(value) is not int or not 0 <= value <= checkpoint.MAX_SIZE:
        raise ReceiptInvalid(f"the receipt's index is not an entry number: {str(value)[:40]!r}")
    return value


def _hash(value, what: str) -> bytes:
    try:
        raw = b64.decode_strict(value) if isinstance(value, str) else None
    except ValueError:
        raw = None
    if raw is None or len(raw) != merkle.HASH_SIZE:
        raise ReceiptInvalid(f"the receipt's {what} is not a canonical base64 SHA-256 hash: {str(value)[:60]!r}")
    return raw


def _note(value) -> bytes:
    if not isinstance(value, str) or not value or len(value) > MAX_NOTE:
        raise ReceiptInvalid("the receipt's checkpoint is not the text of a signed note")
    return value.encode("utf-8", "surrogatepass")


def _proof(value) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > MAX_PROOF:
        raise ReceiptInvalid(f"the receipt's inclusion proof is not a list of at most {MAX_PROOF} hashes")
    return tuple(_hash(h, f"inclusion proof hash {i}") for i, h in enumerate(value))


def check_offline(receipt: Receipt, trust: LogTrust) -> checkpoint.Checkpoint:
    """The receipt's checkpoint when the receipt proves itself (module doc);
    raises ReceiptInvalid with the reason otherwise."""
    try:
        cp = trust.open(receipt.note)
    except QuorumError as exc:
        raise ReceiptInvalid(f"the receipt's checkpoint is not cosigned enough: {exc}") from None
    except (note.NoteError, checkpoint.CheckpointError) as exc:
        raise ReceiptInvalid(f"the receipt's checkpoint does not verify with {trust.log.key_id}: {exc}") from None
    if receipt.index >= cp.size:
        raise ReceiptInvalid(f"the receipt's index {receipt.index} is beyond its checkpoint's size {cp.size}")
    try:
        merkle.verify_inclusion(receipt.index, cp.size, receipt.leaf_hash, list(receipt.inclusion), cp.root)
    except merkle.ProofError as exc:
        raise ReceiptInvalid(f"entry {receipt.index} with leaf hash {b64.encode(receipt.leaf_hash)} is not "
                             f"proven to be in the signed tree of size {cp.size}: {exc}") from None
    return cp


def check_server(receipt: Receipt, cp: checkpoint.Checkpoint, trust: LogTrust,
                 fetch: monitor.Fetch) -> monitor.Outcome:
    """Compare the log's current checkpoint with the receipt's (``cp``, from
    :func:`check_offline`): the same tree, or a larger one proven to extend it.
    ``fetch`` as in ``audit.monitor`` (``monitor.http_fetch(url)``)."""
    return monitor.check_once(fetch, trust, monitor.State(receipt.note, cp))


def exit_code(out: monitor.Outcome) -> int:
    """0 consistent; 3 the server could not be asked; 1 anything else the
    server sent that does not prove the receipt's tree is still its prefix."""
    if out.trusted:
        return EXIT_OK
    return EXIT_UNCHECKED if out.kind == "unreachable" else EXIT_FAILED


def save_evidence(out: monitor.Outcome, receipt: Receipt, evidence_dir: str | os.PathLike, *,
                  url: str = "") -> list[Path]:
    """Both signed notes (the receipt's and the server's), the proof when one
    was served, and a JSON summary naming the receipt, in ``evidence_dir``."""
    extra = {"receipt": {"index": receipt.index, "leaf_hash": b64.encode(receipt.leaf_hash),
                         "inclusion": [b64.encode(h) for h in receipt.inclusion]}}
    return monitor.save_evidence(out, evidence_dir, url=url, roles=("receipt", "server"), extra=extra)
