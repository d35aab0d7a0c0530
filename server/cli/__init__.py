"""The ``labelcheck`` command line: one click group, sub-commands per concern."""

from __future__ import annotations

import click

from labelcheck.cli import audit as cli_audit
from labelcheck.cli import claims as cli_claims
from labelcheck.cli import labels as cli_labels
from labelcheck.cli import ledger as cli_ledger
from labelcheck.cli import receipt as cli_receipt
from labelcheck.cli import serve as cli_serve
from labelcheck.cli import witness as cli_witness

# Each module defines a ``commands`` list of click commands or groups:
# keygen, sign, check | ledger verify, export, verify-bundle, watch, check-receipt | serve |
# embed, labels | audit report | witness keygen, serve.
COMMAND_MODULES = (cli_claims, cli_ledger, cli_receipt, cli_serve, cli_labels, cli_audit, cli_witness)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="labelcheck")
def main() -> None:
    """labelcheck: sign, check and audit AI-content labels."""


for _module in COMMAND_MODULES:
    for _command in _module.commands:
        main.add_command(_command)
