"""``labelcheck ledger check-receipt``: a receipt proves itself (docs/protocol.md §10).

Exit codes: 0 the receipt checks (and, with ``--server``, the log's current
checkpoint is proven to extend the receipt's); 1 it does not (one line says
why; with ``--server``, both signed notes are saved as evidence); 2 bad
input (unreadable file, not a receipt, bad key or options); 3 (with
``--server``) the receipt checks offline but the server could not be asked.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from labelcheck.audit import monitor
from labelcheck.audit import receipt as receipts
from labelcheck.audit.trust import LogTrust
from labelcheck.cli.common import CliError, read_key, read_vkey
from labelcheck.cli.ledger import ledger as ledger_group
from labelcheck.ledger.cosignature import CosignatureVerifier
from labelcheck.util import b64, times

MAX_INPUT = 16 << 20  # a whole result is a few KiB; refuse to slurp anything huge
DEFAULT_EVIDENCE = Path("labelcheck-evidence")

witness_option = click.option(
    "--witness", "witnesses", multiple=True, metavar="VKEY",
    help="A witness's verifier key (type 0x04), or a .pub file holding it (repeatable).")
quorum_option = click.option(
    "--quorum", type=click.IntRange(min=1), default=None,
    help="How many of the --witness keys must have cosigned a checkpoint (default: all).")


def read_witness(value: str) -> CosignatureVerifier:
    """A witness's C2SP verifier key (cosignature/v1), inline or from a file."""
    return read_key(value, CosignatureVerifier.from_vkey, "witness key")


def read_trust(vkey: str, witnesses: tuple[str, ...], quorum: int | None) -> LogTrust:
    """The log key and the witness quorum the user gave (never the server)."""
    if quorum is not None and not witnesses:
        raise CliError("--quorum needs at least one --witness")
    try:
        return LogTrust(read_vkey(vkey), tuple(read_witness(w) for w in witnesses), quorum)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _read_input(name: str) -> bytes:
    try:
        if name == "-":
            data = sys.stdin.buffer.read(MAX_INPUT + 1)
        else:
            with open(name, "rb") as f:
                data = f.read(MAX_INPUT + 1)
    except OSError as exc:
        raise CliError(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT:
        raise CliError(f"{name} is over {MAX_INPUT} bytes: not a receipt")
    return data


@click.command("check-receipt")
@click.argument("receipt_file", metavar="FILE")
@click.option("--vkey", required=True, help="The ledger's verifier key, or a file holding it (obtained independently).")
@witness_option
@quorum_option
@click.option("--server", "server", metavar="URL",
              help="Also prove that this server's current checkpoint extends the receipt's.")
@click.option("--evidence", "evidence_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to save the evidence when --server fails "
                   "(a new folder in it; default ./labelcheck-evidence/).")
def check_receipt(receipt_file: str, vkey: str, witnesses: tuple[str, ...], quorum: int | None,
                  server: str | None, evidence_dir: Path | None) -> None:
    """Check a receipt (or a whole result holding one), FILE or - for stdin.

    Offline: the receipt's checkpoint must be signed by VKEY (and cosigned by
    --quorum of the --witness keys), and its inclusion proof must lead from
    the leaf hash at the index to the signed root. With --server, the
    server's current checkpoint (opened the same way) must extend the
    receipt's, by an RFC 9162 consistency proof; when it does not, both
    signed notes are saved as evidence and the exit status is 1.
    """
    trust = read_trust(vkey, witnesses, quorum)
    try:
        fetch = monitor.http_fetch(server) if server else None
    except monitor.MonitorError as exc:
        raise CliError(str(exc)) from None
    try:
        rec = receipts.load_receipt(_read_input(receipt_file))
        cp = receipts.check_offline(rec, trust)
    except receipts.ReceiptError as exc:
        raise CliError(f"{receipt_file}: {exc}") from None
    except receipts.ReceiptInvalid as exc:
        click.echo(f"receipt does NOT check: {exc}", err=True)
        sys.exit(receipts.EXIT_FAILED)
    click.echo(f"receipt OK: entry {rec.index} is in the log {cp.origin} at size {cp.size} "
               f"(root {b64.encode(cp.root)}), signed by {trust.describe()}")
    if fetch is not None:
        sys.exit(_check_server(rec, cp, trust, fetch, server, evidence_dir or DEFAULT_EVIDENCE))


def _check_server(rec, cp, trust, fetch, url: str, evidence_dir: Path) -> int:
    out = receipts.check_server(rec, cp, trust, fetch)
    code = receipts.exit_code(out)
    if code == receipts.EXIT_OK:
        click.echo(f"server {url}: {out.message}")
        return code
    if code == receipts.EXIT_UNCHECKED:
        click.echo(f"server {url} could not be checked: {out.message}", err=True)
        return code
    click.echo(f"server {url} FAILED: {out.message}", err=True)
    folder = evidence_dir / times.file_stamp(micro=True)
    try:
        paths = receipts.save_evidence(out, rec, folder, url=url)
    except monitor.MonitorError as exc:
        click.echo(f"and the evidence could not be saved: {exc}", err=True)
        return code
    click.echo(f"evidence (both signed notes and a summary) saved in {folder}/", err=True)
    for path in paths:
        click.echo(f"  {path.name}", err=True)
    return code


ledger_group.add_command(check_receipt)

commands: list = []
