"""The PostgreSQL benchmark at a tiny size, so it cannot rot (figures not judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import pg

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_cluster_benchmark_runs_tiny():
    try:
        pg.binaries()
    except pg.NoPostgres as exc:
        pytest.skip(str(exc))
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "benchmarks" / "cluster.py"), "--batches", "3",
                           "--warmup", "1", "--seconds", "0.5", "--rounds", "1", "--threads", "3",
                           "--light-threads", "1"],
                          capture_output=True, text=True, timeout=240, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["threads"] == 3 and result["light_threads"] == 1
    for key in ("pg_append_per_s", "pg_copy_per_s", "one_node_per_s", "two_nodes_per_s",
                "light_one_node_per_s", "light_two_nodes_per_s"):
        assert result[key] > 0, key
    assert "two nodes, one database, 3 threads each" in done.stdout
