"""The log's side of C2SP tlog-witness: ask witnesses to cosign the log's
newest checkpoint and keep the newest one that carries a quorum.

For each witness the client remembers the size it last had cosigned (the
``old`` line). A 409 answer carries the witness's real latest size
(``text/x.tlog.size``): the client takes it and asks again with a
consistency proof from there. A witness whose latest size is above the
log's, or that answers 422, has seen a different log: that is reported and
never papered over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import requests

from labelcheck.ledger import checkpoint, note
from labelcheck.ledger.cosignature import CosignatureVerifier, add_signatures
from labelcheck.util import b64

log = logging.getLogger("labelcheck.witness")

TIMEOUT = (2.0, 5.0)  # connect, read: a witness is asked again next round


class WitnessError(Exception):
    """A witness that cannot or will not cosign this round."""


class WitnessAhead(WitnessError):
    """A witness has cosigned a larger size than the checkpoint offered:
    another log (a split view, a rollback), unless this log has grown to
    that size since (another node of it had a newer checkpoint cosigned)."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


@dataclass
class RemoteWitness:
    """One configured witness: its key and its submission prefix."""

    verifier: CosignatureVerifier
    url: str
    old: int = 0  # the size this witness last cosigned for us, as far as we know
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    @classmethod
    def parse(cls, spec: str) -> "RemoteWitness":
        """``VKEY=URL`` (the witness's verifier key, its submission prefix).
        The key's base64 may end in ``=`` itself, so the split is at ``=http``."""
        cut = min((i for i in (spec.find("=http://"), spec.find("=https://")) if i > 0), default=-1)
        if cut < 0:
            raise ValueError(f"a witness is VKEY=URL with an http(s) URL, not {spec[:80]!r}")
        vkey, url = spec[:cut], spec[cut + 1:]
        try:
            verifier = CosignatureVerifier.from_vkey(vkey)
        except note.NoteError as exc:
            raise ValueError(f"witness key: {exc}") from None
        return cls(verifier, url.rstrip("/"))


def request_body(old: int, proof: list[bytes], signed: bytes) -> bytes:
    """An add-checkpoint body: ``old N``, the proof lines, a blank line, the note."""
    lines = "".join(f"{b64.encode(h)}\n" for h in proof)
    return f"old {old}\n{lines}\n".encode("ascii") + signed


def cosign(witness: RemoteWitness, signed: bytes, size: int,
           prove: Callable[[int, int], list[bytes]], attempts: int = 3) -> str:
    """The witness's verified cosignature line(s) for ``signed`` (of ``size``).
    Raises WitnessError."""
    for _ in range(attempts):
        if witness.old > size:
            raise WitnessAhead(f"{witness.url} has cosigned size {witness.old}, above this log's {size}: "
                               "it has seen another log (a split view or a rollback)", witness.old)
        proof = prove(witness.old, size) if 0 < witness.old < size else []
        try:
            r = witness.session.post(witness.url + "/add-checkpoint", timeout=TIMEOUT,
                                     data=request_body(witness.old, proof, signed))
        except requests.RequestException as exc:
            raise WitnessError(f"{witness.url}: {exc.__class__.__name__}") from None
        if r.status_code == 409 and r.headers.get("Content-Type", "").startswith("text/x.tlog.size"):
            witness.old = _size(r.text, witness.url)
            continue
        if r.status_code != 200:
            raise WitnessError(f"{witness.url} answered {r.status_code}: {r.text[:200].strip()}")
        lines = _own_lines(witness, signed, r.content)
        witness.old = size
        return lines
    raise WitnessError(f"{witness.url} kept changing its size")


def _size(text: str, url: str) -> int:
    line = text.strip()
    if not line.isdigit() or len(line) > 19:
        raise WitnessError(f"{url} sent a malformed size {line[:40]!r}")
    return int(line)


def _own_lines(witness: RemoteWitness, signed: bytes, answer: bytes) -> str:
    """The answer's signature lines that verify under this witness's key."""
    try:
        text = answer.decode("utf-8")
        opened = note.open_note(add_signatures(signed, text if text.endswith("\n") else text + "\n"),
                                [witness.verifier])
    except (UnicodeDecodeError, note.NoteError) as exc:
        raise WitnessError(f"{witness.url} sent no valid cosignature: {exc}") from None
    mine = {f"{s.name} {s.base64}" for s in opened.sigs}
    return "".join(f"{line}\n" for line in text.splitlines() if line[2:] in mine)


def cosigned_checkpoint(newest: Callable[[], tuple[bytes, int]], witnesses: list[RemoteWitness], quorum: int,
                        prove: Callable[[int, int], list[bytes]], attempts: int = 3) -> tuple[bytes, int] | None:
    """The log's newest signed checkpoint (``newest()``: the note and its
    size) with every cosignature gathered this round, and its size; None
    when fewer than ``quorum`` witnesses cosigned.

    Nodes sharing one log each ask the witnesses, so a witness may already
    hold a newer checkpoint of this log than the one offered: when the log
    has grown to that size meanwhile, the round starts again from its
    newest checkpoint. Only a witness ahead of the log's newest is warned
    about (docs/protocol.md §10)."""
    signed, size = newest()
    for _ in range(attempts):
        lines, ahead = [], []
        for witness in witnesses:
            try:
                lines.append(cosign(witness, signed, size, prove))
            except WitnessAhead as exc:
                ahead.append(exc)
            except WitnessError as exc:
                log.warning("witness: %s", exc)
        if ahead:
            newer, newer_size = newest()
            if newer_size > size and newer_size >= max(exc.size for exc in ahead):
                signed, size = newer, newer_size  # another node's checkpoint got there first
                continue
            for exc in ahead:
                log.warning("witness: %s", exc)
        if len(lines) < quorum:
            return None
        return add_signatures(signed, "".join(lines)), size
    return None


def count_cosignatures(signed: bytes, log_verifier: note.Verifier,
                       witnesses: list[CosignatureVerifier]) -> tuple[checkpoint.Checkpoint, int]:
    """The checkpoint of a cosigned note and how many of ``witnesses`` cosigned it
    (the log's own signature is required). Raises note.NoteError."""
    opened = note.open_note(signed, [log_verifier, *witnesses])
    names = {(s.name, s.hash) for s in opened.sigs}
    if (log_verifier.name, log_verifier.hash) not in names:
        raise note.NoteError("the log's own signature is missing")
    cp = checkpoint.Checkpoint.parse(opened.text)
    return cp, sum((w.name, w.hash) in names for w in witnesses)
