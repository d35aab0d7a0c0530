"""Files the commands write (``ledger export --out``, ``audit report --out``):
replaced atomically, never through a symlink planted beside them, mode kept,
and left as they were when the command fails."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from labelcheck.cli import main
from labelcheck.ledger import Ledger

ORIGIN = "output.example/log"
VICTIM_TEXT = b"precious: must never be overwritten\n"


@pytest.fixture
def ledger_dir(tmp_path):
    d = tmp_path / "data"
    with Ledger.open_dir(d, origin=ORIGIN) as led:
        led.append([{"kind": "verification", "time": "2025-06-01T00:00:00Z", "status": "verified", "n": i}
                    for i in range(5)])
        led.checkpoint()
        (tmp_path / "ledger.pub").write_text(led.verifier_key + "\n")
    return d


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def plant_links(out: Path, victim_dir: Path) -> list[tuple[Path, Path]]:
    """Symlinks at every temporary name a ``.NAME.PID.tmp`` writer in this
    process would use, each pointing at its own victim file elsewhere."""
    victim_dir.mkdir(exist_ok=True)
    links = []
    for pid in sorted({os.getpid(), os.getppid()}):
        victim = victim_dir / f"victim-{pid}"
        victim.write_bytes(VICTIM_TEXT)
        link = out.with_name(f".{out.name}.{pid}.tmp")
        link.symlink_to(victim)
        links.append((link, victim))
    return links


def assert_untouched(links: list[tuple[Path, Path]]) -> None:
    for link, victim in links:
        assert victim.read_bytes() == VICTIM_TEXT
        assert link.is_symlink() and os.readlink(link) == str(victim)


def test_export_does_not_follow_links_at_predictable_temporary_names(ledger_dir, tmp_path):
    out = tmp_path / "out" / "bundle.ndjson"
    out.parent.mkdir()
    links = plant_links(out, tmp_path / "victims")
    result = run("ledger", "export", "--db", ledger_dir / "ledger.db", "--out", out)
    assert result.exit_code == 0, result.output
    assert_untouched(links)
    assert out.is_file() and not out.is_symlink()
    assert out.read_bytes().count(b"\n") == 6  # the header and five entries
    check = run("ledger", "verify-bundle", out, "--vkey", tmp_path / "ledger.pub")
    assert check.exit_code == 0 and "complete log of 5 entries" in check.output
    # nothing left behind but the links planted and the bundle
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([out.name] + [link.name for link, _ in links])


def test_a_symlink_at_the_output_is_replaced_not_followed(ledger_dir, tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(VICTIM_TEXT)
    out = tmp_path / "bundle.ndjson"
    out.symlink_to(victim)
    assert run("ledger", "export", "--db", ledger_dir / "ledger.db", "--out", out).exit_code == 0
    assert victim.read_bytes() == VICTIM_TEXT
    assert not out.is_symlink() and out.read_bytes().startswith(b'{"')


def test_audit_report_does_not_follow_planted_links_and_keeps_the_mode(ledger_dir, tmp_path):
    bundle = tmp_path / "bundle.ndjson"
    assert run("ledger", "export", "--db", ledger_dir / "ledger.db", "--out", bundle).exit_code == 0
    out = tmp_path / "report.html"
    out.write_bytes(b"old report")
    out.chmod(0o600)
    links = plant_links(out, tmp_path / "victims")
    result = run("audit", "report", bundle, "--vkey", tmp_path / "ledger.pub", "--out", out)
    assert result.exit_code == 0, result.output
    assert_untouched(links)
    html = out.read_text("utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and "</html>" in html
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_a_failed_export_leaves_the_old_file_and_no_temporary_file(ledger_dir, tmp_path):
    out = tmp_path / "out" / "bundle.ndjson"
    out.parent.mkdir()
    out.write_bytes(b"the previous bundle")
    # the header is checked while writing: no proof from a size beyond the log
    result = run("ledger", "export", "--db", ledger_dir / "ledger.db", "--out", out,
                 "--kind", "verification", "--consistency-from", 999)
    assert result.exit_code == 2 and "export failed: no consistency proof from size 999" in result.output
    assert out.read_bytes() == b"the previous bundle"
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_an_unwritable_output_is_one_line_exit_2(ledger_dir, tmp_path):
    out = tmp_path / "missing" / "bundle.ndjson"
    result = run("ledger", "export", "--db", ledger_dir / "ledger.db", "--out", out)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"Error: cannot write {out}: No such file or directory"]


def test_dash_is_standard_output(ledger_dir, tmp_path):
    result = CliRunner().invoke(main, ["ledger", "export", "--db", str(ledger_dir / "ledger.db"), "--out", "-"])
    assert result.exit_code == 0 and result.stdout_bytes.count(b"\n") == 6
    assert list(tmp_path.glob(".*.tmp")) == [] and not (tmp_path / "-").exists()
