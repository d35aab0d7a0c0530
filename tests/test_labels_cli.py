"""``labelcheck embed`` / ``labelcheck labels``, and a smoke run of the labels benchmark."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import media_factory as mf
from labelcheck.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def runner():
    return CliRunner()


def test_embed_then_labels(runner, tmp_path):
    src = tmp_path / "a.png"
    src.write_bytes(mf.png())
    out = tmp_path / "b.png"
    r = runner.invoke(main, ["embed", str(src), "--label", "2", "--producer", "Gen AI", "--produce-id", "img-7", "--propagator", "plat", "--propagate-id", "p-1", "--reserved1", "urn:uuid:1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert src.read_bytes() == mf.png()  # --out leaves the original alone
    r = runner.invoke(main, ["labels", str(out), "--json"])
    assert r.exit_code == 0
    [signal] = json.loads(r.output)
    assert signal["source"] == "gb45438_xmp" and signal["category"] == "possible"
    assert signal["detail"]["aigc"] == {"Label": "2", "ContentProducer": "Gen AI", "ProduceID": "img-7", "ReservedCode1": "urn:uuid:1", "ContentPropagator": "plat", "PropagateID": "p-1"}
    r = runner.invoke(main, ["labels", str(out)])
    assert "gb45438_xmp: declared category=possible" in r.output


def test_embed_in_place_replaces_label(runner, tmp_path):
    path = tmp_path / "a.wav"
    path.write_bytes(mf.wav())
    for label in ("1", "3"):
        r = runner.invoke(main, ["embed", str(path), "--label", label, "--producer", "p", "--produce-id", "i"])
        assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["labels", str(path), "--json"])
    assert [s["detail"]["aigc"]["Label"] for s in json.loads(r.output)] == ["3"]
    assert mf.wav_samples(path.read_bytes()) == mf.wav_samples(mf.wav())


def test_embed_refusals_leave_the_file_alone(runner, tmp_path):
    path = tmp_path / "a.jpg"
    original = mf.jpeg()
    path.write_bytes(original)
    r = runner.invoke(main, ["embed", str(path), "--label", "1", "--producer", "p", "--produce-id", "bad id"])
    assert r.exit_code == 1 and "ProduceID" in r.output
    r = runner.invoke(main, ["embed", str(path), "--label", "1", "--producer", "p", "--produce-id", "i", "--propagator", "x"])
    assert r.exit_code == 2 and "go together" in r.output
    r = runner.invoke(main, ["embed", str(path), "--label", "5", "--producer", "p", "--produce-id", "i"])
    assert r.exit_code == 2
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    r = runner.invoke(main, ["embed", str(text), "--label", "1", "--producer", "p", "--produce-id", "i"])
    assert r.exit_code == 1 and "unrecognised media format" in r.output
    assert path.read_bytes() == original and sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "notes.txt"]


def test_labels_none_and_c2pa(runner, tmp_path):
    plain = tmp_path / "plain.mp3"
    plain.write_bytes(mf.mp3())
    r = runner.invoke(main, ["labels", str(plain)])
    assert r.exit_code == 1 and "no labels" in r.output
    signed = tmp_path / "signed.jpg"
    signed.write_bytes(mf.c2pa_sign(mf.jpeg()))
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(mf.c2pa_chain().root_pem)
    r = runner.invoke(main, ["labels", str(signed), "--c2pa-anchors", str(anchors)])
    assert r.exit_code == 0 and "c2pa: trusted" in r.output and "trainedAlgorithmicMedia" in r.output


def test_help(runner):
    for cmd in ("embed", "labels"):
        r = runner.invoke(main, [cmd, "--help"])
        assert r.exit_code == 0 and "Usage" in r.output


def test_benchmark_smoke(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "benchmarks" / "labels.py"), "--mp4-mb", "2", "--jpeg-mb", "1", "--runs", "3", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "labels" and result["mp4_bytes"] >= 2 << 20
    assert result["mp4_read_labels_s"] > 0 and result["jpeg_ratio"] > 0


def test_embed_into_missing_directory_is_a_clear_error(runner, tmp_path):
    src = tmp_path / "a.png"
    src.write_bytes(mf.png())
    r = runner.invoke(main, ["embed", str(src), "--label", "1", "--producer", "p", "--produce-id", "i", "--out", str(tmp_path / "no" / "b.png")])
    assert r.exit_code == 1 and "cannot write" in r.output
