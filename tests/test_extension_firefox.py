"""The extension in Firefox for real: Debian's firefox-esr driven over
WebDriver BiDi by puppeteer-core (extension/tools/firefox.mjs; it never
downloads a browser), the add-on installed temporarily through BiDi
``webExtension.install``, against ``labelcheck serve --demo`` on 127.0.0.1.
Every demo case of the Chromium test must give the same badges.

BiDi may not open moz-extension: pages, so the server is set by giving the
loaded copy that server as its default (the options page is covered by the
Chromium test)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from test_extension_e2e import CASES, EXTENSION, demo_server, unpacked_copy

FIREFOX = os.environ.get("LABELCHECK_FIREFOX", "/usr/bin/firefox-esr")
NODE = shutil.which("node")
PUPPETEER = EXTENSION / "node_modules" / "puppeteer-core"
DEFAULT_SERVER = "http://127.0.0.1:8080"


def missing() -> str | None:
    if not Path(FIREFOX).exists():
        return f"{FIREFOX} is not installed"
    if NODE is None or not PUPPETEER.exists():
        return "node or puppeteer-core (npm install in extension/) is missing"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing() is not None, reason=missing() or "")]


def copy_for(server: str, dest: Path) -> Path:
    """The unpacked extension whose default server (and host access) is ``server``."""
    ext = unpacked_copy(dest)
    for name in ("background.js", "manifest.json"):
        f = ext / name
        text = f.read_text()
        assert DEFAULT_SERVER in text
        f.write_text(text.replace(DEFAULT_SERVER, server))
    return ext


def test_demo_cases_in_firefox(tmp_path):
    with demo_server(tmp_path / "data") as server:
        ext = copy_for(server, tmp_path)
        specs = [f"{case}:{len(expect)}" for case, expect in CASES.items()]
        run = subprocess.run([NODE, "tools/firefox.mjs", server, *specs], cwd=EXTENSION, capture_output=True, text=True,
                             timeout=400, env=dict(os.environ, EXTENSION_DIR=str(ext), FIREFOX=FIREFOX))
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert "error" not in got, f"{got['error']}\nthe page then: {got.get('snapshot')}"
    for case, expect in CASES.items():
        assert {b["media"]: (b["status"], b["category"], b["state"]) for b in got[case]} == expect, case
    assert got["verified"][0]["label"] == "AI-generated · label verified"


@pytest.mark.parametrize("case, slow", [("dynamic", "dynamic-3.png"), ("lazy-swap", "swap-")])
def test_an_image_whose_new_src_loads_slowly_gets_the_new_images_badge_in_firefox(tmp_path, case, slow):
    """Pages change an image's src or srcset (the dynamic case; lazy-loading
    scripts). Firefox keeps the old URL in currentSrc until the new image has
    loaded (Chromium empties it), so on a slow network the new image's claim
    was missed and it never got a badge (seen as a rare time-out of the
    dynamic case). The new images are held back for 1.5 s here."""
    with demo_server(tmp_path / "data") as server:
        ext = copy_for(server, tmp_path)
        run = subprocess.run([NODE, "tools/firefox.mjs", server, f"{case}:{len(CASES[case])}"], cwd=EXTENSION,
                             capture_output=True, text=True, timeout=400,
                             env=dict(os.environ, EXTENSION_DIR=str(ext), FIREFOX=FIREFOX, SLOW_MEDIA=slow))
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert "error" not in got, f"{got['error']}\nthe page then: {got.get('snapshot')}"
    assert {b["media"]: (b["status"], b["category"], b["state"]) for b in got[case]} == CASES[case]
