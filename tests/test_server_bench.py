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
