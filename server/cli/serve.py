"""``labelcheck serve``: the verification server under gunicorn (docs/protocol.md §8)."""

from __future__ import annotations

import click

from labelcheck.cli.common import CliError, private_password
from labelcheck.ledger.backend import display
from labelcheck.ledger.log import LedgerError
from labelcheck.pipeline.config import Config, ConfigError
from labelcheck.pipeline.services import validate
from labelcheck.web.app import prepare
from labelcheck.web.runner import run


def _env(name: str) -> str:
    return f"LABELCHECK_{name}"


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, envvar=_env("HOST"), help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), envvar=_env("PORT"))
@click.option("--data-dir", type=click.Path(file_okay=False), default="data", show_default=True,
              envvar=_env("DATA_DIR"), help="ledger.db, ledger.key, trust.json and the tokens.")
@click.option("--database", default=None, envvar=_env("DATABASE"), metavar="URL", callback=private_password,
              help="postgresql://... : the ledger in PostgreSQL, shared by every node (default: ledger.db "
              "in the data dir). Every node needs the same ledger.key in its data dir.")
@click.option("--workers", type=click.IntRange(1, 256), default=None, envvar=_env("WORKERS"),
              help="gunicorn worker processes (default: one per core).")
@click.option("--threads", type=click.IntRange(1, 64), default=None, envvar=_env("THREADS"),
              help="Threads per worker (default 16).")
@click.option("--origin", default=None, envvar=_env("ORIGIN"),
              help="The ledger's origin line and key name (default labelcheck.localhost/ledger).")
@click.option("--demo", is_flag=True, default=False, envvar=_env("DEMO"),
              help="Create and register a demo producer key; serve the demo pages.")
@click.option("--fetch-allow", multiple=True, envvar=_env("FETCH_ALLOW"), metavar="HOST_OR_CIDR",
              help="Let the media fetcher reach this host or network despite the SSRF guard (repeatable).")
@click.option("--c2pa-anchors", type=click.Path(dir_okay=False, exists=True), default=None,
              envvar=_env("C2PA_ANCHORS"), help="PEM file of C2PA trust anchors.")
@click.option("--cors-origin", "cors_origins", multiple=True, envvar=_env("CORS_ORIGINS"), metavar="ORIGIN",
              help="Another allowed CORS origin besides the extension's (repeatable; '*' = one label).")
@click.option("--witness", "witnesses", multiple=True, envvar=_env("WITNESSES"), metavar="VKEY=URL",
              help="A C2SP witness: its verifier key and submission prefix (repeatable).")
@click.option("--witness-quorum", type=click.IntRange(0, 1000), default=None, envvar=_env("WITNESS_QUORUM"),
              help="Cosignatures GET /v1/checkpoint needs (default: every configured witness).")
def serve(host, port, data_dir, database, workers, threads, origin, demo, fetch_allow, c2pa_anchors, cors_origins,
          witnesses, witness_quorum):
    """Run the verification server (gunicorn, gthread workers)."""
    try:
        cfg = Config.load({"host": host, "port": port, "data_dir": data_dir, "database": database, "workers": workers,
                           "threads": threads, "origin": origin, "demo": demo or None,
                           "fetch_allow": tuple(fetch_allow), "c2pa_anchors": c2pa_anchors,
                           "cors_origins": tuple(cors_origins), "witnesses": tuple(witnesses),
                           "witness_quorum": witness_quorum})
        validate(cfg)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        vkey = prepare(cfg)
    except (OSError, ValueError, LedgerError) as exc:  # unreadable data dir, damaged ledger, bad key file
        raise CliError(f"cannot start: {exc}", exit_code=1) from None
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    click.echo(f"labelcheck: serving {url}/ with {cfg.workers} worker(s) x {cfg.threads} thread(s)")
    click.echo(f"  ledger      {display(cfg.ledger_location)} (origin {cfg.origin})")
    click.echo(f"  ledger key  {vkey}")
    click.echo(f"  admin token {cfg.admin_token_path}   regulator token {cfg.regulator_token_path}")
    if cfg.demo:
        click.echo(f"  demo        producer key {cfg.demo_key_path}")
    run(cfg)


commands = [serve]
