"""The extension's own checks, run from pytest so scripts/test covers them:
``node --test`` over the pure logic (signal discovery, URL matching, base64url,
batching, cache keys, locales), and Mozilla's ``web-ext lint`` (pinned in
extension/package.json; scripts/test runs ``npm install`` there)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXTENSION = Path(__file__).resolve().parents[1] / "extension"
NODE = shutil.which("node")
WEB_EXT = EXTENSION / "node_modules" / ".bin" / "web-ext"
LINT_IGNORE = ["test", "tools", "docs", "package.json", "package-lock.json", "node_modules", "README.md", "web-ext-artifacts"]


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_node_unit_tests_pass():
    run = subprocess.run([NODE, "--test", "test/"], cwd=EXTENSION, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    summary = dict(line[2:].split(" ", 1) for line in run.stdout.splitlines()
                   if line.startswith("# ") and line[2:].split(" ", 1)[0] in ("pass", "fail"))
    assert int(summary["fail"]) == 0 and int(summary["pass"]) >= 30, summary


@pytest.mark.skipif(NODE is None or not WEB_EXT.exists(),
                    reason="web-ext is not installed (run npm install in extension/)")
def test_web_ext_lint_has_no_errors():
    run = subprocess.run([str(WEB_EXT), "lint", "--source-dir", ".", "--output", "json", "--no-config-discovery",
                          "--ignore-files", *LINT_IGNORE], cwd=EXTENSION, capture_output=True, text=True, timeout=180)
    report = json.loads(run.stdout)
    errors = [f"{e['code']}: {e['message']} ({e.get('file')})" for e in report["errors"]]
    assert errors == [], "\n".join(errors)
    # The one expected warning: Firefox ignores background.service_worker
    # (it uses background.scripts from the same manifest).
    codes = {w["code"] for w in report["warnings"]}
    assert codes <= {"BACKGROUND_SERVICE_WORKER_IGNORED"}, report["warnings"]


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_receipts_made_now_by_the_ledger_code_check_in_the_extension(tmp_path):
    """Fresh vectors (a new key, signed notes and proofs from labelcheck.ledger)
    so the extension's receipt check cannot drift from what the server signs."""
    vectors = tmp_path / "vectors.json"
    made = subprocess.run([sys.executable, str(EXTENSION / "tools" / "make_receipt_vectors.py"), str(vectors)],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert json.loads(vectors.read_text())["good"]
    run = subprocess.run([NODE, "--test", "test/receipt.test.js"], cwd=EXTENSION, capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, LABELCHECK_RECEIPT_VECTORS=str(vectors)))
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout and "# pass 7" in run.stdout
