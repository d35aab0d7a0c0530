"""Shared test helpers.

``../shared`` (outside test data) sits beside the repo in CI but not in a
user's fresh clone: tests that read it call ``shared_file`` and skip cleanly
when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

import pg
from labelcheck.web.app import create_app

# CI runs the same examples every time, so a red run can be reproduced.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
ARTIFACTS = REPO / "artifacts"


def shared_file(*parts: str) -> Path:
    """Path of a file under ../shared, or skip the test when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared/{'/'.join(parts)} is not present (fresh clone)")
    return path


@pytest.fixture
def artifacts_dir() -> Path:
    """Where tests write screenshots and reports worth keeping (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster for the whole run (tests/pg.py)."""
    cluster = pg.cluster_or_skip()
    yield cluster
    cluster.stop()


@pytest.fixture
def app(tmp_path):
    """A labelcheck app on a fresh data directory, without the rate limit
    (test modules that need other settings define their own ``app``)."""
    application = create_app({"data_dir": tmp_path / "data", "verify_rate": 0})
    yield application
    application.extensions["labelcheck"].services.close()
