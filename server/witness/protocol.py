"""``add-checkpoint`` of C2SP tlog-witness, without HTTP: a request body in,
a status, content type and body out.

Body: ``old <size>\\n``, at most 63 base64 consistency-proof lines, an empty
line, then the signed checkpoint note. Answers, in the spec's order: 400 for a
malformed body or an old size above the checkpoint's; 404 for an unknown
origin; 403 when no trusted log key signed it (or a trusted key's signature
fails); 409 with ``text/x.tlog.size`` and the latest cosigned size when the
old size is not that size; 422 when the consistency proof (RFC 9162 §2.1.4.2)
does not verify, the empty tree has another root, or equal sizes differ in
root; 200 with the cosignature line otherwise, after the record is durable.
"""

from __future__ import annotations

from dataclasses import dataclass

from labelcheck.ledger import checkpoint, merkle, note
from labelcheck.ledger.cosignature import CosignatureSigner
from labelcheck.util import b64

from .state import WitnessState

MAX_PROOF_LINES = 63
SIZE_TYPE = "text/x.tlog.size"
TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    content_type: str = TEXT


class BadRequest(ValueError):
    pass


def parse_body(body: bytes) -> tuple[int, list[bytes], bytes]:
    """(old size, proof hashes, signed checkpoint note) of a request body."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8") from None
    head, sep, rest = text.partition("\n\n")
    if not sep:
        raise BadRequest("no empty line between the proof and the checkpoint")
    lines = head.split("\n")
    old = lines[0]
    if not old.startswith("old ") or not _decimal(old[4:]):
        raise BadRequest("the first line must be 'old <size>' (decimal, no leading zeroes)")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise BadRequest(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in lines[1:]:
        try:
            digest = b64.decode_strict(line)
        except ValueError:
            raise BadRequest("a consistency proof line is not a base64 hash") from None
        if len(digest) != merkle.HASH_SIZE:
            raise BadRequest("a consistency proof line is not a 32-byte hash")
        proof.append(digest)
    return int(old[4:]), proof, rest.encode("utf-8")


def _decimal(text: str) -> bool:
    return text.isascii() and text.isdigit() and (text == "0" or not text.startswith("0")) and len(text) <= 19


class Witness:
    """A witness for the logs it is configured with (origin -> verifiers)."""

    def __init__(self, signer: CosignatureSigner, logs: dict[str, list[note.Verifier]], state: WitnessState):
        self.signer, self.logs, self.state = signer, logs, state

    def add_checkpoint(self, body: bytes) -> Answer:
        try:
            old, proof, signed = parse_body(body)
        except BadRequest as exc:
            return Answer(400, f"{exc}\n")
        origin = signed.split(b"\n", 1)[0].decode("utf-8", "replace")
        verifiers = self.logs.get(origin)
        if verifiers is None:
            return Answer(404, f"unknown log origin {origin[:100]!r}\n")
        try:
            opened = note.open_note(signed, verifiers)
        except note.NoteError as exc:
            return Answer(403, f"no valid signature by a trusted key of {origin}: {exc}\n")
        try:
            cp = checkpoint.Checkpoint.parse(opened.text)
        except checkpoint.CheckpointError as exc:
            return Answer(400, f"not a checkpoint: {exc}\n")
        if old > cp.size:
            return Answer(400, f"old size {old} is above the checkpoint's size {cp.size}\n")
        return self._check_and_cosign(old, proof, cp, opened.text.encode("utf-8"), signed)

    def _check_and_cosign(self, old: int, proof: list[bytes], cp: checkpoint.Checkpoint,
                          body: bytes, signed: bytes) -> Answer:
        with self.state.transaction() as tx:
            latest = tx.latest(cp.origin)
            have = latest.size if latest else 0
            if old != have:
                return Answer(409, f"{have}\n", SIZE_TYPE)
            if cp.size == 0 and cp.root != merkle.EMPTY_ROOT:
                return Answer(422, "a checkpoint of size 0 must have the empty tree's root\n")
            old_root = latest.root if latest else merkle.EMPTY_ROOT
            try:
                merkle.verify_consistency(old, cp.size, old_root, cp.root, proof)
            except merkle.ProofError as exc:
                return Answer(422, f"the consistency proof does not verify: {exc}\n")
            tx.record(cp.origin, cp.size, cp.root, signed)
        return Answer(200, self.signer.cosign(body))
