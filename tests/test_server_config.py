"""Configuration: defaults, LABELCHECK_* environment, overrides, and the
`labelcheck serve` flags that refuse bad values before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from labelcheck.cli import main
from labelcheck.pipeline.config import Config, ConfigError


def test_defaults_follow_the_design():
    cfg = Config.load({}, environ={})
    assert cfg.data_dir == Path("data")
    assert (cfg.host, cfg.port) == ("127.0.0.1", 8080)
    assert cfg.max_body == 1024 * 1024 and cfg.max_items == 100
    assert cfg.ledger_db == Path("data/ledger.db") and cfg.trust_path == Path("data/trust.json")
    assert cfg.admin_token_path.name == "admin.token" and cfg.regulator_token_path.name == "regulator.token"
    assert cfg.fetch_allow == () and cfg.demo is False and cfg.workers >= 1


def test_environment_then_overrides():
    env = {"LABELCHECK_DATA_DIR": "/srv/lc", "LABELCHECK_PORT": "9000", "LABELCHECK_DEMO": "yes",
           "LABELCHECK_FETCH_ALLOW": "127.0.0.1, 10.0.0.0/8", "LABELCHECK_VERIFY_RATE": "2.5",
           "LABELCHECK_CORS_ORIGINS": "https://a.example https://*.b.example"}
    cfg = Config.load({"port": 9100, "workers": None}, environ=env)
    assert cfg.data_dir == Path("/srv/lc") and cfg.port == 9100 and cfg.demo is True
    assert cfg.fetch_allow == ("127.0.0.1", "10.0.0.0/8") and cfg.verify_rate == 2.5
    assert cfg.cors_origins == ("https://a.example", "https://*.b.example")


@pytest.mark.parametrize("env", [{"LABELCHECK_PORT": "http"}, {"LABELCHECK_DEMO": "maybe"},
                                 {"LABELCHECK_MAX_ITEMS": "1.5"}])
def test_bad_environment_values_are_named(env):
    with pytest.raises(ConfigError, match=next(iter(env))):
        Config.load({}, environ=env)


def test_unknown_override_is_refused():
    with pytest.raises(ConfigError, match="unknown"):
        Config.load({"no_such_setting": 1}, environ={})


def test_serve_refuses_bad_flags_before_starting(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["serve", "--data-dir", str(tmp_path / "d"), "--origin", "two words"])
    assert result.exit_code == 2 and "origin" in result.output
    result = runner.invoke(main, ["serve", "--data-dir", str(tmp_path / "d"), "--fetch-allow", "300.1.1.1/99"])
    assert result.exit_code == 2 and "fetch" in result.output
    result = runner.invoke(main, ["serve", "--port", "70000"])
    assert result.exit_code == 2
    assert not (tmp_path / "d").exists()  # nothing created for a refused start
    assert "--fetch-allow" in runner.invoke(main, ["serve", "--help"]).output
