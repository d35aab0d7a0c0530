"""The server benchmark at a tiny size, so it cannot rot (figures not judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_server_benchmark_runs_tiny():
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "benchmarks" / "server.py"), "--tiny",
                           "--workers", "1", "--threads", "2"],
                          capture_output=True, text=True, timeout=240, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "server" and result["errors"] == 0
    assert (result["workers"], result["threads"], result["connections"]) == (1, 2, 2)
    for key in ("healthz_rps", "verify1_rps", "batch_claims_per_s", "raw_verifies_per_s_2proc",
                "fetch_claims_per_s", "direct_fetch_per_s"):
        assert result[key] > 0, key


@pytest.mark.slow
def test_side_by_side_benchmark_runs_tiny_and_leaves_no_worktree():
    if subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout: server_ab checks revisions out")
    before = subprocess.run(["git", "-C", str(REPO), "worktree", "list"], capture_output=True, text=True).stdout
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "benchmarks" / "server_ab.py"), "--base", "HEAD",
                           "--tiny", "--workers", "1", "--threads", "2"],
                          capture_output=True, text=True, timeout=240, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "server_ab" and result["errors"] == 0 and result["head"] == "working tree"
    assert len(result["base_cpu_us"]) == len(result["head_cpu_us"]) == 2
    assert all(x > 0 for x in result["base_cpu_us"] + result["head_cpu_us"] + result["base_rps"] + result["head_rps"])
    after = subprocess.run(["git", "-C", str(REPO), "worktree", "list"], capture_output=True, text=True).stdout
    assert after == before
