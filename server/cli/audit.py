"""``labelcheck audit report`` and ``labelcheck ledger watch``: the regulator's tools.

``audit report`` exit codes: 0 the report was written; 1 the bundle failed
verification (nothing written); 2 bad input (missing files, bad key).

``ledger watch`` exit codes: 0 the log is consistent; 1 the log misbehaved
(shrank, forked or failed a proof; evidence saved); 2 bad input; 3 (with
``--once``) the round could not check: server down, HTTP error, a malformed
response, a checkpoint that does not verify or lacks the ``--quorum`` of
``--witness`` cosignatures. Without ``--once`` such a
round is reported on stderr and retried after the interval; only a proven
misbehaviour ends the loop (Ctrl-C ends it with 0).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from labelcheck.audit import monitor
from labelcheck.audit import report
from labelcheck.cli.common import CliError, atomic_output, progress_bars, read_trusted_checkpoint, read_vkey
from labelcheck.cli.ledger import ledger as ledger_group
from labelcheck.cli.receipt import quorum_option, read_trust, witness_option
from labelcheck.util.times import now_text


@click.group()
def audit() -> None:
    """Audit a ledger bundle offline."""


@audit.command("report")
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--vkey", required=True, help="The ledger's verifier key, or a file holding it (obtained independently).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The HTML file to write (only when the bundle verifies).")
@click.option("--lang", type=click.Choice(report.LANGS), default="en", show_default=True, help="Report language.")
@click.option("--trusted-checkpoint", "trusted", type=click.Path(dir_okay=False, path_type=Path),
              help="An older signed checkpoint you already trust: also prove the log only grew since.")
@click.option("--top", type=click.IntRange(0, 10_000), default=50, show_default=True,
              help="How many of the worst items to list.")
def report_command(bundle_path: Path, vkey: str, out: Path, lang: str, trusted: Path | None, top: int) -> None:
    """Verify BUNDLE, then write a single offline HTML report of it.

    BUNDLE is a file from `labelcheck ledger export` or GET /v1/export,
    complete or filtered; it is read once, counted as it is verified.

    The report charts verifications per day by status, producers ranked by
    invalid and mismatched labels, the share of each category and registry
    events, lists the worst items with their receipts, and states the
    checkpoint and key it was verified against. A bundle that fails
    verification is refused and no file is written.
    """
    verifier = read_vkey(vkey)
    trusted_note = read_trusted_checkpoint(trusted)
    if not bundle_path.is_file():
        raise CliError(f"cannot read bundle {bundle_path}: no such file")
    try:
        with progress_bars("verifying and counting") as (bar,):
            html = report.build_report(bundle_path, verifier, lang=lang, trusted_checkpoint=trusted_note, top=top,
                                       progress=bar)
    except report.ReportError as exc:
        if not exc.problems:  # unreadable input, a bad trusted checkpoint
            raise CliError(str(exc)) from None
        click.echo(f"refusing to report: {exc}", err=True)
        sys.exit(1)
    with atomic_output(out) as fp:
        fp.write(html.encode("utf-8"))
    click.echo(f"report written to {out}")


@click.command("watch")
@click.argument("url")
@click.option("--vkey", required=True, help="The ledger's verifier key, or a file holding it (never taken from the server).")
@click.option("--state", "state", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the last trusted checkpoint (created on the first run, replaced atomically).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Seconds between rounds.")
@click.option("--once", is_flag=True, help="One round, then exit (for cron and tests).")
@click.option("--evidence-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to save both signed notes when the log misbehaves (default: evidence/ beside --state).")
@witness_option
@quorum_option
def watch(url: str, vkey: str, state: Path, interval: float, once: bool, evidence_dir: Path | None,
          witnesses: tuple[str, ...], quorum: int | None) -> None:
    """Follow the ledger at URL: verify each checkpoint and its consistency proof.

    Stores a new checkpoint only after its signature and the RFC 9162
    consistency proof from the last trusted one both hold. A log that
    shrinks, forks or fails a proof is reported, both signed notes are saved
    as evidence, and the exit status is 1. With --once a round that cannot
    check (server down, bad response) exits 3; looping, it is retried.
    With --witness, a checkpoint counts only when --quorum of those
    witnesses cosigned it; one without is reported, not trusted, not fatal.
    """
    verifier = read_trust(vkey, witnesses, quorum)
    evidence_dir = evidence_dir or state.parent / "evidence"
    try:
        fetch = monitor.http_fetch(url)
        code = monitor.watch(fetch, verifier, state, evidence_dir, interval=interval, once=once, url=url,
                             report=_say)
    except monitor.MonitorError as exc:
        raise CliError(str(exc)) from None
    except KeyboardInterrupt:
        code = monitor.EXIT_OK
    sys.exit(code)


def _say(out: monitor.Outcome) -> None:
    """One line a round, stamped (UTC), so a long-running watch leaves a readable log."""
    stamp = now_text()
    if out.trusted:
        click.echo(f"{stamp} ok: {out.message}")
    elif out.alarm:
        click.echo(f"{stamp} ALARM: {out.message}", err=True)
        for path in out.evidence:
            click.echo(f"  evidence: {path}", err=True)
    else:
        click.echo(f"{stamp} error: {out.message}", err=True)


ledger_group.add_command(watch)

commands = [audit]
