"""``labelcheck ledger verify | export | verify-bundle | publish-tiles``: audit the ledger offline.

Exit codes: 0 everything verified (or the export was written), 1 a ledger or
bundle that fails verification, 2 bad input (missing files, bad keys, a
database that is not a ledger). Errors are one clear line, never a traceback.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from labelcheck.ledger import bundle, checkpoint, filters, merkle, note
from labelcheck.ledger.log import KEY_NAME, Ledger, LedgerError
from labelcheck.ledger.backend import DB_ERRORS, LedgerStore, display, is_url, open_store, refuse_other_urls
from labelcheck.ledger.store import StoreError
from labelcheck.ledger.tiles import TileError
from labelcheck.ledger.tiles_publish import latest_signed, publish
from labelcheck.ledger.verify import PROGRESS_EVERY, verify_store
from labelcheck.cli.ledger_migrate import migrate_command
from labelcheck.cli.common import (CliError, atomic_output, private_password, progress_bars, read_trusted_checkpoint,
                                   read_vkey)


def _open_store(db) -> LedgerStore:
    try:
        return open_store(db, create=False)
    except StoreError as exc:
        raise CliError(str(exc)) from None


def _db(ctx, param, value: str | None):
    """``--db``: a ledger.db path, or a postgresql:// URL (docs/protocol.md §11)."""
    if value is None or is_url(value):
        return private_password(ctx, param, value)
    try:
        refuse_other_urls(value)
    except StoreError as exc:
        raise click.BadParameter(str(exc)) from None
    return Path(value)


DB_HELP = "The ledger database: ledger.db, or a postgresql:// URL."


@click.group()
def ledger() -> None:
    """Verify the audit ledger and export or check offline bundles."""


@ledger.command()
@click.option("--db", "db", required=True, callback=_db, help=DB_HELP)
@click.option("--vkey", help="The ledger's verifier key (or a file holding it), obtained independently: "
              "every signed checkpoint must open with it.")
@click.option("--trusted-checkpoint", "trusted", type=click.Path(path_type=Path),
              help="A signed checkpoint you hold from earlier: the log must still contain exactly that tree.")
@click.option("--trust-db-key", is_flag=True,
              help="Check signatures with the key recorded in the database itself (proves nothing against "
              "whoever can rewrite the database).")
def verify(db, vkey: str | None, trusted: Path | None, trust_db_key: bool) -> None:
    """Recompute every entry, chain link, stored hash and signed checkpoint.

    Needs --vkey or --trusted-checkpoint (or, knowingly, --trust-db-key):
    a key read from the database being checked vouches for nothing.
    Exits 0 only when everything holds.
    """
    if not (vkey or trusted or trust_db_key):
        raise CliError("ledger verify needs --vkey VKEY or --trusted-checkpoint FILE "
                       "(or --trust-db-key to trust the key stored in the database it checks)")
    trusted_note = read_trusted_checkpoint(trusted)
    store = _open_store(db)
    try:
        origin, recorded = store.meta("origin"), store.meta("vkey")
        if origin is None or recorded is None:
            raise CliError(f"{display(db)} has no origin or key recorded: it was never opened by a labelcheck server")
        verifier = read_vkey(vkey) if vkey else read_vkey(recorded)
        if not vkey:
            click.echo(f"checking signatures with the key recorded in the database: {verifier.key_id}", err=True)
        with progress_bars("verifying ledger", minimum=PROGRESS_EVERY) as (bar,):
            report = verify_store(store, verifier, origin, progress=bar)
        if trusted_note is not None and report.ok:
            _check_trusted(report, store, trusted_note, verifier, origin)
    except StoreError as exc:
        raise CliError(f"cannot read {display(db)}: {exc}") from None
    finally:
        store.close()
    for line in report.notes:
        click.echo(f"note: {line}", err=True)
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


def _check_trusted(report, store: LedgerStore, data: bytes, verifier: note.Verifier, origin: str) -> None:
    """The log still holds the tree of the trusted checkpoint (RFC 9162 §2.1.1 root at its size)."""
    try:
        cp = checkpoint.open_checkpoint(data, verifier, origin=origin)
    except (checkpoint.CheckpointError, note.NoteError) as exc:
        report.problems.append(f"the trusted checkpoint does not open with {verifier.key_id}: {exc}")
        return
    if cp.size > report.size:
        report.problems.append(f"the log has {report.size} entries but a checkpoint for {cp.size} was trusted "
                               "before: the log was truncated")
    elif merkle.tree_hash(cp.size, store.read_hashes) != cp.root:
        report.problems.append(f"the log at size {cp.size} is not the tree of the trusted checkpoint: "
                               "it was rewritten")
    else:
        report.notes.append(f"the log extends the trusted checkpoint of size {cp.size}")


@ledger.command()
@click.option("--db", "db", required=True, callback=_db, help=DB_HELP)
@click.option("--out", "out", required=True, help="Bundle file to write, or - for standard output.")
@click.option("--key", "key", type=click.Path(path_type=Path),
              help=f"The ledger key, to sign a fresh checkpoint first (default: {KEY_NAME} beside the database, "
              "when present; without it the bundle stops at the latest signed checkpoint).")
@click.option("--since", metavar="T", help="Only entries whose time is at or after T (RFC 3339).")
@click.option("--until", metavar="T", help="Only entries whose time is before T (RFC 3339).")
@click.option("--key-id", "key_id", metavar="K", help="Only entries about producer key K (verifications and registry changes).")
@click.option("--status", metavar="S", help="Only verifications with status S (verified, invalid, ...).")
@click.option("--kind", type=click.Choice(filters.KINDS), help="Only entries of this kind.")
@click.option("--consistency-from", "consistency_from", type=click.IntRange(min=0), metavar="T",
              help="Filtered only: include the consistency proof from the checkpoint of size T you already "
              "trust, so verify-bundle --trusted-checkpoint can show the log only grew.")
def export(db, out: str, key: Path | None, since: str | None, until: str | None, key_id: str | None,
           status: str | None, kind: str | None, consistency_from: int | None) -> None:
    """Write a self-contained bundle: the signed checkpoint and every entry it covers.

    With any filter, a filtered bundle instead: only the entries matching
    every filter given, each with its inclusion proof against the signed
    checkpoint. A filtered bundle proves each of its entries is in the log,
    not that no matching entry was left out; only a complete bundle proves
    completeness.
    """
    try:
        filt = filters.Filter.parse({"since": since, "until": until, "key_id": key_id, "status": status,
                                     "kind": kind})
    except filters.FilterError as exc:
        raise CliError(str(exc)) from None
    if consistency_from is not None and filt.empty:
        raise CliError("--consistency-from is for filtered bundles (a complete bundle recomputes every root)")
    key = key or (None if is_url(db) else db.with_name(KEY_NAME))
    checkpoint_note = _signed_checkpoint(db, key) if key is not None and key.exists() else None
    store = _open_store(db)
    try:
        if checkpoint_note is None:
            latest = store.latest_checkpoint()
            if latest is None:
                raise CliError(f"{display(db)} has no signed checkpoint yet; pass --key to sign one")
            checkpoint_note = latest[1]
        vkey = store.meta("vkey")
        if vkey is None:
            raise CliError(f"{display(db)} has no key recorded: it was never opened by a labelcheck server")
        with atomic_output(out) as fp, progress_bars("exporting", minimum=PROGRESS_EVERY) as (bar,):
            bundle.write_bundle(fp, store, checkpoint_note, note.Verifier.from_vkey(vkey), progress=bar,
                                filter=filt, consistency_from=consistency_from)
    except (StoreError, bundle.BundleError, note.NoteError, *DB_ERRORS) as exc:
        raise CliError(f"export failed: {exc}") from None
    finally:
        store.close()


def _signed_checkpoint(db, key: Path) -> bytes:
    """The latest checkpoint, once the ledger (opened with its key) passed its start-up check;
    an empty log gets its first one signed."""
    store = _open_store(db)
    try:
        origin = store.meta("origin")
    finally:
        store.close()
    if origin is None:
        raise CliError(f"{display(db)} has no origin recorded: it was never opened by a labelcheck server")
    try:
        with Ledger(db, key_path=key, origin=origin) as led:  # opened, so checked, before exporting
            return led.checkpoint()
    except LedgerError as exc:
        raise CliError(str(exc)) from None


@ledger.command("verify-bundle")
@click.argument("bundle_path", metavar="BUNDLE")
@click.option("--vkey", required=True, help="The ledger's verifier key, or a file holding it (obtained independently).")
@click.option("--trusted-checkpoint", "trusted", type=click.Path(path_type=Path),
              help="An older signed checkpoint you already trust: also prove the log only grew since.")
def verify_bundle(bundle_path: str, vkey: str, trusted: Path | None) -> None:
    """Verify a bundle offline: signature, every entry, the chain and the root.

    A filtered bundle: the signature, every entry, its inclusion proof and
    that it matches the bundle's filter. Prints which was proved: "complete
    log of N entries" or "M entries, each included in the log of size N".
    BUNDLE is a file, or - for standard input. Exits 0 only when all hold.
    """
    verifier = read_vkey(vkey)
    trusted_note = read_trusted_checkpoint(trusted)
    try:
        with _input(bundle_path) as fp, progress_bars("verifying bundle", minimum=PROGRESS_EVERY) as (bar,):
            report = bundle.verify_bundle(fp, verifier.vkey, trusted_note, progress=bar)
    except bundle.BundleError as exc:
        raise CliError(str(exc)) from None
    click.echo(report.summary())
    if not report.ok:
        if report.first_bad_index is not None:
            click.echo(f"first bad entry: {report.first_bad_index}", err=True)
        sys.exit(1)


@ledger.command("publish-tiles")
@click.option("--db", "db", required=True, callback=_db, help=DB_HELP)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write checkpoint and tile/... into (created if missing).")
def publish_tiles(db, out: Path) -> None:
    """Write the log at its latest signed checkpoint as C2SP tlog-tiles static files.

    The same bytes the server answers under /tlog/, for any static host or
    CDN. Incremental: tiles already in the folder are kept, only new ones are
    written, and the checkpoint last.
    """
    store = _open_store(db)
    try:
        size, note_data = latest_signed(store)
        with progress_bars("publishing tiles", minimum=1024) as (bar,):
            report = publish(store, note_data, size, out, progress=bar)
    except (StoreError, TileError, *DB_ERRORS) as exc:
        raise CliError(f"publish-tiles failed: {exc}") from None
    except OSError as exc:
        raise CliError(f"cannot write under {out}: {exc.strerror or exc}") from None
    finally:
        store.close()
    click.echo(report.summary())


@contextlib.contextmanager
def _input(path: str):
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        fp = open(path, "rb")
    except OSError as exc:
        raise CliError(f"cannot read bundle {path}: {exc.strerror or exc}") from None
    with fp:
        yield fp


ledger.add_command(migrate_command)

commands = [ledger]
