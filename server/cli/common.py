"""Pieces the ``labelcheck`` commands share: one-line errors, progress bars, keys."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from labelcheck.ledger import note
from labelcheck.ledger.backend import has_password
from labelcheck.util.atomic import atomic_writer

PROGRESS_MIN = 16_384  # items before a progress bar is worth showing


class CliError(click.ClickException):
    """The one error of the ``labelcheck`` commands: printed as one line,
    never a traceback. Exit status 2 (bad input) unless ``exit_code`` says
    otherwise (``serve`` exits 1 when the server cannot start)."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


def private_password(ctx: click.Context, param: click.Parameter, value):
    """A click callback for database URL options: warns when one given on
    the command line holds a password, which every user of the host can read
    there (ps, /proc/PID/cmdline); libpq reads it from ~/.pgpass (mode 0600)
    when the URL has none. The value is returned as it is."""
    if (value and ctx.get_parameter_source(param.name) is click.core.ParameterSource.COMMANDLINE
            and has_password(value)):
        click.echo(f"labelcheck: warning: the password in {param.opts[0]} can be read by every user of this "
                   "host (ps); leave it out of the URL and put it in ~/.pgpass (mode 0600)", err=True)
    return value


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


def read_key(value: str, parse=note.Verifier.from_vkey, what: str = "verifier key"):
    """A C2SP verifier key given inline or as the path of a file holding one,
    parsed by ``parse`` (a log's key by default; a witness's with
    ``CosignatureVerifier.from_vkey``)."""
    text, path = value, Path(value)
    if "+" not in value or path.is_file():
        try:
            text = path.read_text("utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read {what} file {value}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return parse(text)
    except note.NoteError as exc:
        raise CliError(f"bad {what} {value}: {exc}") from None


def read_vkey(value: str) -> note.Verifier:
    """A log's C2SP verifier key, inline or from a file."""
    return read_key(value)


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
    """Standard output for ``-``; otherwise a file that replaces ``out`` only
    when the block ends cleanly (:func:`labelcheck.util.atomic.atomic_writer`:
    an exclusive, unpredictable temporary name, so a symlink planted beside
    ``out`` is never followed). A file system error is one line, exit 2."""
    if str(out) == "-":
        yield sys.stdout.buffer
        return
    try:
        with atomic_writer(out) as fp:
            yield fp
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror or exc}") from None
