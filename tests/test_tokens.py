"""The admin and regulator bearer tokens: created private (0600), shared by
every process that starts on one data directory, and refused at start-up when
group or others may read them, as the ledger key is."""

from __future__ import annotations

import os
import stat
import threading

import pytest
from click.testing import CliRunner

from labelcheck.cli import main
from labelcheck.cli import serve as cli_serve
from labelcheck.web import tokens
from labelcheck.web.app import create_app

TOKEN_FILES = ("admin.token", "regulator.token")


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_token_is_private_random_and_stable(tmp_path):
    path = tmp_path / "admin.token"
    token = tokens.ensure_token(path)
    assert mode_of(path) == 0o600
    assert len(token) >= 40 and path.read_text() == token + "\n"
    assert tokens.ensure_token(path) == token
    assert tokens.ensure_token(tmp_path / "other.token") != token
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # no temp file left


def test_processes_starting_together_agree_on_one_token(tmp_path):
    path = tmp_path / "admin.token"
    seen, errors = [], []

    def start():
        try:
            seen.append(tokens.ensure_token(path))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(seen)) == 1 and len(seen) == 16


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_a_token_open_to_others_is_refused(tmp_path, mode):
    path = tmp_path / "regulator.token"
    tokens.ensure_token(path)
    path.chmod(mode)
    with pytest.raises(tokens.TokenFileError) as err:
        tokens.read_token(path)
    message = str(err.value)
    assert str(path) in message and f"{mode:04o}" in message and f"chmod 600 {path}" in message
    assert "\n" not in message
    path.chmod(0o600)  # the fix the message names works
    assert tokens.read_token(path)


def test_empty_or_unreadable_token_files_are_refused(tmp_path):
    empty = tmp_path / "admin.token"
    empty.write_text("  \n")
    empty.chmod(0o600)
    with pytest.raises(tokens.TokenFileError, match="holds no token"):
        tokens.ensure_token(empty)
    folder = tmp_path / "regulator.token"
    folder.mkdir()
    with pytest.raises(tokens.TokenFileError, match="cannot read token file"):
        tokens.ensure_token(folder)
    binary = tmp_path / "x.token"
    binary.write_bytes(b"\xff\xfe")
    binary.chmod(0o600)
    with pytest.raises(tokens.TokenFileError, match="not UTF-8"):
        tokens.read_token(binary)


@pytest.mark.parametrize("name", TOKEN_FILES)
def test_create_app_refuses_a_token_readable_by_others(tmp_path, name):
    data = tmp_path / "data"
    first = create_app({"data_dir": data})
    first.extensions["labelcheck"].services.close()
    (data / name).chmod(0o644)
    with pytest.raises(tokens.TokenFileError, match=rf"{name} is open to group or others \(mode 0644\)"):
        create_app({"data_dir": data})
    (data / name).chmod(0o600)
    again = create_app({"data_dir": data})
    assert again.extensions["labelcheck"].admin_token == first.extensions["labelcheck"].admin_token
    again.extensions["labelcheck"].services.close()


@pytest.mark.parametrize("name", TOKEN_FILES)
def test_serve_refuses_a_token_readable_by_others(tmp_path, monkeypatch, name):
    data = tmp_path / "data"
    data.mkdir()
    tokens.ensure_token(data / name)
    (data / name).chmod(0o644)

    def must_not_serve(cfg):
        raise AssertionError("the server started")

    monkeypatch.setattr(cli_serve, "run", must_not_serve)
    result = CliRunner().invoke(main, ["serve", "--data-dir", str(data), "--port", "0"])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert str(data / name) in lines[0] and f"chmod 600 {data / name}" in lines[0]
    assert lines[0].startswith("Error: cannot start:")


def test_serve_starts_once_the_token_is_private(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    tokens.ensure_token(data / "admin.token")
    (data / "admin.token").chmod(0o600)
    started = []
    monkeypatch.setattr(cli_serve, "run", started.append)
    result = CliRunner().invoke(main, ["serve", "--data-dir", str(data), "--port", "0"])
    assert result.exit_code == 0, result.output
    assert len(started) == 1 and started[0].data_dir == data
    assert mode_of(data / "regulator.token") == 0o600
