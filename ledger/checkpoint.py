"""Transparency-log checkpoints (https://c2sp.org/tlog-checkpoint).

A checkpoint is the text of a signed note::

    <origin>
    <tree size, ASCII decimal, no leading zeros>
    <standard base64 of the 32-byte RFC 6962 root>
    [<extension line>...]

Parsing is strict, so one tree head has exactly one text: a signature over a
checkpoint commits to precisely the origin, size and root it shows.  Sizes are
bounded by 2**63 - 1, as Go's ``tlog.ParseTree`` reads them as int64.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from labelcheck.util import b64

from . import note
from .merkle import HASH_SIZE

MAX_SIZE = 2**63 - 1


class CheckpointError(ValueError):
    """A checkpoint text that is not a well-formed C2SP tlog-checkpoint."""


_CONTROL = re.compile("[\x00-\x1f\x7f]")  # one C scan, not a Python loop per character (every commit signs)


def _check_line(line: str, what: str) -> None:
    if not line:
        raise CheckpointError(f"checkpoint {what} must not be empty")
    if _CONTROL.search(line):
        raise CheckpointError(f"checkpoint {what} must not hold control characters or newlines")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: ``size`` records under ``root`` in the log named ``origin``."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self):
        if not isinstance(self.origin, str):
            raise CheckpointError("checkpoint origin must be a string")
        _check_line(self.origin, "origin")
        if type(self.size) is not int or not 0 <= self.size <= MAX_SIZE:
            raise CheckpointError(f"checkpoint size must be an integer in [0, 2**63-1], not {self.size!r}")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root must be {HASH_SIZE} bytes")
        if isinstance(self.extensions, str) or not isinstance(self.extensions, (tuple, list)):
            raise CheckpointError("checkpoint extensions must be a sequence of lines")
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for ext in self.extensions:
            if not isinstance(ext, str):
                raise CheckpointError("checkpoint extension lines must be strings")
            _check_line(ext, "extension line")

    def text(self) -> str:
        """The note text: origin, size, base64 root, extension lines, each ending in a newline."""
        lines = [self.origin, str(self.size), b64.encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> "Checkpoint":
        """Parse a checkpoint note text strictly (C2SP tlog-checkpoint §Note text)."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CheckpointError("checkpoint is not valid UTF-8") from exc
        if not isinstance(text, str):
            raise CheckpointError("checkpoint text must be a string")
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint text must end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("checkpoint needs an origin, a size and a root hash line")
        origin, size_line, root_line, *extensions = lines
        return cls(origin, _parse_size(size_line), _parse_root(root_line), tuple(extensions))


def _parse_size(line: str) -> int:
    if not line or not line.isascii() or not line.isdigit():
        raise CheckpointError(f"checkpoint size is not an ASCII decimal number: {line[:40]!r}")
    if len(line) > 1 and line[0] == "0":
        raise CheckpointError(f"checkpoint size has a leading zero: {line[:40]!r}")
    if len(line) > 19 or int(line) > MAX_SIZE:
        raise CheckpointError("checkpoint size is larger than 2**63-1")
    return int(line)


def _parse_root(line: str) -> bytes:
    try:
        root = b64.decode(line)
    except ValueError as exc:
        raise CheckpointError(f"checkpoint root is not standard base64: {line[:60]!r}") from exc
    if len(root) != HASH_SIZE:
        raise CheckpointError(f"checkpoint root must be {HASH_SIZE} bytes, not {len(root)}")
    if b64.encode(root) != line:
        raise CheckpointError("checkpoint root is not canonical base64")
    return root


def sign_checkpoint(cp: Checkpoint, signer: note.Signer) -> bytes:
    """The signed note bytes of ``cp`` (C2SP signed-note, Ed25519)."""
    return note.sign(cp.text(), signer)


def open_checkpoint(
    msg: bytes,
    verifier: note.Verifier | list[note.Verifier] | tuple[note.Verifier, ...],
    origin: str | None = None,
) -> Checkpoint:
    """Verify the signed note ``msg`` and parse its checkpoint.

    Raises note.NoteError (bad note, bad or missing signature; an
    UnverifiedNoteError when no known key signed it) or CheckpointError (bad
    checkpoint text, or an origin other than ``origin`` when one is given).
    """
    verifiers = list(verifier) if isinstance(verifier, (list, tuple)) else [verifier]
    opened = note.open_note(msg, verifiers)
    cp = Checkpoint.parse(opened.text)
    if origin is not None and cp.origin != origin:
        raise CheckpointError(f"checkpoint is for log {cp.origin!r}, not {origin!r}")
    return cp
