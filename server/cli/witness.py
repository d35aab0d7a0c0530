"""``labelcheck witness keygen | serve``: run a C2SP tlog-witness.

Exit codes: 0 success, 2 bad input (bad name, existing key files, bad log
keys, an unusable data directory). Errors are one line, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

from labelcheck.cli.common import CliError
from labelcheck.ledger import keyfile, note
from labelcheck.ledger.cosignature import CosignatureSigner
from labelcheck.witness.app import WitnessServer, create_witness_app
from labelcheck.witness.protocol import Witness
from labelcheck.witness.state import WitnessState


@click.group()
def witness() -> None:
    """A witness: cosign a log's checkpoints after checking consistency (C2SP tlog-witness)."""


@witness.command("keygen")
@click.argument("name")
@click.option("--out", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder for NAME.key (mode 0600) and NAME.pub.")
def keygen(name: str, out: str) -> None:
    """Make a witness key: an Ed25519 cosignature/v1 key (verifier key type 0x04)."""
    try:
        signer = CosignatureSigner.generate(name)
        key_path, pub_path = keyfile.write_key_pair(signer, out)
    except (note.NoteError, keyfile.KeyFileError) as exc:
        raise CliError(str(exc)) from None
    click.echo(f"wrote {key_path} (secret, mode 0600) and {pub_path}")
    click.echo(signer.vkey)


@witness.command("serve")
@click.option("--data-dir", required=True, type=click.Path(file_okay=False), envvar="LABELCHECK_WITNESS_DATA_DIR",
              help="Folder for witness.db, the latest cosigned checkpoint of each log.")
@click.option("--host", default="127.0.0.1", show_default=True, envvar="LABELCHECK_WITNESS_HOST")
@click.option("--port", default=7380, show_default=True, type=click.IntRange(1, 65535),
              envvar="LABELCHECK_WITNESS_PORT")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False),
              help="The witness's signer key file (from `labelcheck witness keygen`).")
@click.option("--log", "logs", multiple=True, required=True, metavar="VKEY",
              help="A log's verifier key, or a .pub file holding it; its name is the log's origin (repeatable).")
def serve(data_dir: str, host: str, port: int, key_file: str, logs: tuple[str, ...]) -> None:
    """Serve POST /add-checkpoint for the given logs."""
    signer = _load_signer(key_file)
    known: dict[str, list[note.Verifier]] = {}
    for spec in logs:
        try:
            verifier = keyfile.load_verifier(spec)
        except keyfile.KeyFileError as exc:
            raise CliError(f"--log {spec[:80]}: {exc}") from None
        known.setdefault(verifier.name, []).append(verifier)
    try:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        state = WitnessState(Path(data_dir) / "witness.db")
    except OSError as exc:
        raise CliError(f"cannot use data directory {data_dir}: {exc.strerror or exc}") from None
    click.echo(f"labelcheck witness {signer.name}: serving http://{host}:{port}/add-checkpoint")
    click.echo(f"  witness key {signer.vkey}")
    for origin in sorted(known):
        click.echo(f"  log         {origin}")
    WitnessServer(create_witness_app(Witness(signer, known, state)), host, port).run()


def _load_signer(path: str) -> CosignatureSigner:
    try:
        return keyfile.load_signer(path, parse=CosignatureSigner.from_skey)
    except keyfile.KeyFileError as exc:
        raise CliError(str(exc)) from None


commands = [witness]
