"""``labelcheck ledger migrate --from FILE --to URL``: copy a ledger to another
store, PostgreSQL normally, verifying every entry, hash and checkpoint on the
way (``ledger.migrate``, docs/protocol.md §11).

Exit codes: 0 copied (or nothing left to copy), 1 the source does not verify
or the target holds another log, 2 bad input.
"""

from __future__ import annotations

import click

from labelcheck.cli.common import CliError, private_password, progress_bars
from labelcheck.ledger.backend import DB_ERRORS, display, is_url, open_store
from labelcheck.ledger.migrate import MigrateError, migrate
from labelcheck.ledger.store import StoreError

PROGRESS_MIN = 10_000


@click.command("migrate")
@click.option("--from", "source", required=True, callback=private_password,
              help="The ledger to copy: ledger.db (or a postgresql:// URL).")
@click.option("--to", "target", required=True, callback=private_password,
              help="Where to copy it: a postgresql:// URL (or a new ledger.db).")
@click.option("--vkey", help="The ledger's verifier key to check every checkpoint with "
              "(default: the key recorded in the source).")
def migrate_command(source: str, target: str, vkey: str | None) -> None:
    """Copy a ledger, verifying it as it goes.

    Every entry is re-hashed and re-chained, every stored hash recomputed,
    every checkpoint checked with the ledger key; the copy ends at the
    source's newest signed checkpoint and its root must equal the source's.
    A target holding another log (another origin or key, or entries that
    differ) is refused. Safe to run again: it resumes after what the target
    already holds. Copy ledger.key to each node's data directory (mode 0600).
    """
    if source == target:
        raise CliError("--from and --to name the same ledger")
    try:
        src = open_store(source, create=False)
    except StoreError as exc:
        raise CliError(f"cannot open the source: {exc}") from None
    try:
        dst = open_store(target, create=True)
    except StoreError as exc:
        src.close()
        raise CliError(f"cannot open the target: {exc}") from None
    try:
        with progress_bars("copying ledger", minimum=PROGRESS_MIN) as (bar,):
            report = migrate(src, dst, vkey=vkey, progress=bar)
    except MigrateError as exc:
        raise CliError(f"migrate refused: {exc}", exit_code=1) from None
    except (StoreError, *DB_ERRORS) as exc:
        raise CliError(f"migrate failed (the target keeps whole verified commits; run it again): "
                       f"{str(exc).strip()}", exit_code=1) from None
    finally:
        src.close()
        dst.close()
    click.echo(report.summary())
    if is_url(target):
        click.echo(f"serve it with: labelcheck serve --database {display(target)} "
                   "(each node's data dir holding this ledger.key)")
