"""Which checkpoints to believe: the log's own signature, plus a quorum of
witness cosignatures when witnesses are named (docs/protocol.md §10).

A checkpoint is believed when its note (C2SP signed-note) carries a valid
signature by the log's key and valid C2SP tlog-cosignature (cosignature/v1)
lines by at least ``quorum`` of the given witnesses. The keys always come
from the user, never from the server or the note. Counting follows Go's
``note.Open``: signatures by unknown keys are ignored, a signature by a
known key that does not verify rejects the note.
"""

from __future__ import annotations

from dataclasses import dataclass

from labelcheck.ledger import checkpoint, note
from labelcheck.ledger.cosignature import CosignatureVerifier


class QuorumError(note.NoteError):
    """The log signed the checkpoint, but too few of the witnesses cosigned it."""

    def __init__(self, cp: checkpoint.Checkpoint, have: int, need: int, of: int):
        super().__init__(f"the checkpoint of size {cp.size} carries {have} of the {need} witness "
                         f"cosignatures required (from {of} witness{'es' if of != 1 else ''} named)")
        self.checkpoint, self.have, self.need = cp, have, need


@dataclass(frozen=True)
class LogTrust:
    """The log's verifier key, the witnesses' keys, and how many must cosign
    (default: all of them). Raises ValueError for a quorum that cannot be met."""

    log: note.Verifier
    witnesses: tuple[CosignatureVerifier, ...] = ()
    quorum: int | None = None

    def __post_init__(self):
        unique = tuple({w.vkey: w for w in self.witnesses}.values())  # one witness counts once
        object.__setattr__(self, "witnesses", unique)
        quorum = len(unique) if self.quorum is None else self.quorum
        if type(quorum) is not int or quorum < 0:
            raise ValueError(f"the quorum must be a whole number >= 0, not {quorum!r}")
        if quorum > len(unique):
            raise ValueError(f"a quorum of {quorum} cannot be met by {len(unique)} distinct witness key(s)")
        if unique and quorum == 0:
            raise ValueError("with witnesses named, the quorum must be at least 1")
        object.__setattr__(self, "quorum", quorum)

    @classmethod
    def of(cls, trust: "LogTrust | note.Verifier") -> "LogTrust":
        """``trust`` itself, or the trust in a log key alone."""
        return trust if isinstance(trust, LogTrust) else cls(trust)

    def describe(self) -> str:
        """``log+hash`` or ``log+hash and 2 of 3 witnesses``, for messages."""
        if not self.witnesses:
            return self.log.key_id
        return f"{self.log.key_id} and {self.quorum} of {len(self.witnesses)} witnesses"

    def count(self, signed: bytes) -> tuple[checkpoint.Checkpoint, int]:
        """The checkpoint in ``signed`` and how many of the witnesses cosigned it.
        Raises note.NoteError (no valid log signature, a bad signature by a
        known key) or checkpoint.CheckpointError (a malformed checkpoint)."""
        opened = note.open_note(signed, [self.log, *self.witnesses])
        signers = {(s.name, s.hash) for s in opened.sigs}
        if (self.log.name, self.log.hash) not in signers:
            raise note.NoteError(f"the checkpoint is not signed by the log key {self.log.key_id}")
        cp = checkpoint.Checkpoint.parse(opened.text)
        return cp, sum((w.name, w.hash) in signers for w in self.witnesses)

    def open(self, signed: bytes, origin: str | None = None) -> checkpoint.Checkpoint:
        """The checkpoint in ``signed`` when it is to be believed (module doc).

        Raises QuorumError (too few cosignatures), note.NoteError (not signed
        by the log) or checkpoint.CheckpointError (malformed, other origin).
        """
        cp, have = self.count(signed)
        if origin is not None and cp.origin != origin:
            raise checkpoint.CheckpointError(f"checkpoint is for log {cp.origin!r}, not {origin!r}")
        if have < self.quorum:
            raise QuorumError(cp, have, self.quorum, len(self.witnesses))
        return cp
