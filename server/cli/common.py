"""Pieces the ``labelcheck`` commands share: one-line errors, progress bars, keys."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import click

from labelcheck.ledger import note

PROGRESS_MIN = 16_384  # items before a progress bar is worth showing


class CliError(click.ClickException):
    """Bad input: printed as one line, exit status 2."""

    exit_code = 2


class ProgressBar:
    """A click progress bar on stderr, opened on the first report of a long run,
    so short runs stay quiet. Call it as ``progress(done, total)``."""

    def __init__(self, label: str, minimum: int = PROGRESS_MIN):
        self.label, self.minimum, self.bar = label, minimum, None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if total < self.minimum:
                return
            self.bar = click.progressbar(length=max(total, 1), label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@contextlib.contextmanager
def progress_bars(*labels: str, minimum: int = PROGRESS_MIN):
    """One ProgressBar per label, closed however the block ends."""
    bars = [ProgressBar(label, minimum) for label in labels]
    try:
        yield bars
    finally:
        for bar in bars:
            bar.close()


def read_vkey(value: str) -> note.Verifier:
    """A C2SP verifier key given inline or as the path of a file holding one."""
    text, path = value, Path(value)
    if "+" not in value or path.is_file():
        try:
            text = path.read_text("utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read verifier key file {value}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return note.Verifier.from_vkey(text)
    except note.NoteError as exc:
        raise CliError(f"bad verifier key {value}: {exc}") from None


def read_trusted_checkpoint(path: Path | None) -> bytes | None:
    """The bytes of an older signed checkpoint the user trusts, if one is given."""
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read trusted checkpoint {path}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def atomic_output(out: str | Path):
    """Standard output, or a temporary file renamed into place only on success."""
    if str(out) == "-":
        yield sys.stdout.buffer
        return
    path = Path(out)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fp:
            yield fp
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
