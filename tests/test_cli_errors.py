"""The commands share one error type: a one-line message, exit 2 for bad
input, another status only where a command documents it."""

from __future__ import annotations

import ast
from pathlib import Path

from click.testing import CliRunner

from labelcheck.cli import main
from labelcheck.cli.common import CliError

CLI = Path(__file__).resolve().parents[1] / "server" / "cli"


def test_no_command_module_defines_an_error_type_of_its_own():
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ClassDef) and path.name != "common.py":
                bases = {ast.unparse(b) for b in node.bases}
                assert not bases & {"click.ClickException", "ClickException", "CliError"}, \
                    f"{path.name} defines {node.name}: use labelcheck.cli.common.CliError"


def test_cli_error_is_one_line_with_its_exit_status(tmp_path):
    assert CliError("bad").exit_code == 2 and CliError("down", exit_code=1).exit_code == 1
    result = CliRunner().invoke(main, ["ledger", "verify", "--db", str(tmp_path / "missing.db")])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("Error: ")
