"""The ``labelcheck`` command line: one click group, sub-commands per concern."""

from __future__ import annotations

import importlib

import click

# Each module defines a ``commands`` list of click commands or groups.
COMMAND_MODULES = (
    "server.cli_claims",  # keygen, sign, check
    "server.cli_ledger",  # ledger verify | export | verify-bundle | watch
    "server.cli_serve",  # serve
    "server.cli_labels",  # embed, labels
    "server.cli_audit",  # audit report
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="labelcheck")
def main() -> None:
    """labelcheck: sign, check and audit AI-content labels."""


def _register() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency: say so
                raise
            continue
        for command in module.commands:
            main.add_command(command)


_register()
