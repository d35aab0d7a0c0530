"""The commands share one error type: a one-line message, exit 2 for bad
input, another status only where a command documents it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from click.testing import CliRunner

from labelcheck.cli import main
from labelcheck.cli.common import CliError
from labelcheck.ledger import Ledger

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


SECRET = "Sup3rSecret"


@pytest.mark.parametrize("args", [
    ["serve", "--data-dir", "{tmp}", "--database", "postgresql://node:{secret}@127.0.0.1:1/labelcheck"],
    ["ledger", "verify", "--db", "postgres://node@127.0.0.1:1/labelcheck?password={secret}"],
    ["ledger", "migrate", "--from", "{tmp}/ledger.db", "--to", "postgresql://node:{secret}@127.0.0.1:1/labelcheck"],
], ids=["serve", "ledger verify", "ledger migrate"])
def test_a_database_password_on_the_command_line_is_warned_of_and_never_printed(tmp_path, args):
    """Any user of the host reads a command line (ps): a password there gets
    a warning naming the option (the command goes on, and here fails to
    connect); the password itself is printed nowhere."""
    runner = CliRunner()
    args = [a.format(tmp=tmp_path, secret=SECRET) for a in args]
    result = runner.invoke(main, args)
    assert result.exit_code in (1, 2)  # port 1 on loopback refuses: nothing listens there
    option = args[-2]
    assert f"the password in {option} can be read by every user of this host" in result.stderr
    assert "~/.pgpass" in result.stderr
    assert SECRET not in result.output + result.stderr
    bare = runner.invoke(main, [a.replace(f":{SECRET}", "").replace(f"?password={SECRET}", "") for a in args])
    assert "warning" not in bare.stderr and bare.exit_code == result.exit_code


def test_a_database_password_from_the_environment_is_not_warned_of(tmp_path):
    result = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path)],
                                env={"LABELCHECK_DATABASE": f"postgresql://node:{SECRET}@127.0.0.1:1/labelcheck"})
    assert result.exit_code == 1 and "cannot start" in result.output + result.stderr
    assert "warning" not in result.stderr and SECRET not in result.output + result.stderr


@pytest.mark.parametrize("url", [
    "postgresql://node:{secret}@[::1/labelcheck",  # libpq quotes a URL it cannot parse whole
    "postgresql://node:{secret}@127.0.0.1:1/label%zzcheck",
    "postgres://node@[::1/labelcheck?sslmode=require&password={secret}",
    "postgresql://node:Sup3r%53ecret@[::1/labelcheck",  # percent-encoded: redacted as written and decoded
])
def test_a_password_in_a_database_url_that_does_not_parse_is_printed_nowhere(tmp_path, url):
    url = url.format(secret=SECRET)
    runner = CliRunner()
    served = runner.invoke(main, ["serve", "--data-dir", str(tmp_path)], env={"LABELCHECK_DATABASE": url})
    verified = runner.invoke(main, ["ledger", "verify", "--db", url, "--trust-db-key"])
    for result in (served, verified):
        assert result.exit_code in (1, 2) and "unparsable URL" in result.output
        assert SECRET not in result.output and "Sup3r%53ecret" not in result.output
    assert "can be read by every user of this host" in verified.stderr  # on the command line


@pytest.mark.parametrize("args", [
    ["serve", "--data-dir", "{tmp}", "--database", "{url}"],
    ["ledger", "verify", "--db", "{url}", "--trust-db-key"],
    ["ledger", "export", "--db", "{url}", "--out", "-"],
    ["ledger", "migrate", "--from", "{url}", "--to", "{tmp}/copy.db"],
    ["ledger", "migrate", "--from", "{tmp}/ledger.db", "--to", "{url}"],
], ids=["serve", "ledger verify", "ledger export", "migrate from", "migrate to"])
@pytest.mark.parametrize("url", [f"mysql://node:{SECRET}@db.example/labelcheck", "sqlite:///{tmp}/ledger.db"])
def test_a_url_of_another_database_is_refused_by_its_scheme(tmp_path, args, url):
    """Not taken for a file path ("no ledger database at mysql:/..."), and
    named by its scheme alone: the rest may hold a password."""
    url = url.format(tmp=tmp_path)
    with Ledger.open_dir(tmp_path, origin="test.example/log") as ledger:  # a source to copy from
        ledger.append([{"kind": "test"}])
    result = CliRunner().invoke(main, [a.format(tmp=tmp_path, url=url) for a in args])
    assert result.exit_code == 2, result.output
    scheme = url.split(":", 1)[0]
    assert f"{scheme}:// is not a database labelcheck keeps a ledger in" in result.output
    assert SECRET not in result.output + result.stderr
    assert not (tmp_path / "copy.db").exists()
