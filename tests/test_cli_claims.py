"""``labelcheck keygen | sign | check`` as a producer and a checker use them."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import stat
import subprocess
import sys
from datetime import timedelta

import pytest
from click.testing import CliRunner

from labelcheck import claims
from labelcheck.cli.claims import check, guess_media_type, keygen, sign
from labelcheck.util.times import format_time, parse_time

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(command, *args):
        result = runner.invoke(command, [str(a) for a in args], catch_exceptions=False)
        assert "Traceback" not in result.output
        return result

    return invoke


@pytest.fixture
def world(tmp_path, run):
    """Keys for a producer and a propagator, a media file, a consent record, trust.json."""
    assert run(keygen, "acme-ai", "--out", tmp_path / "keys").exit_code == 0
    assert run(keygen, "video-site", "--out", tmp_path / "keys").exit_code == 0
    media = tmp_path / "picture.png"
    media.write_bytes(PNG)
    (tmp_path / "consent.pdf").write_bytes(b"signed consent form")
    trust = {
        "producers": [
            {"name": "Acme AI", "vkey": (tmp_path / "keys/acme-ai.pub").read_text().strip(), "filing": "F-1"},
            {"name": "Video Site", "vkey": (tmp_path / "keys/video-site.pub").read_text().strip(),
             "roles": ["propagator"]},
        ]
    }
    (tmp_path / "trust.json").write_text(json.dumps(trust))
    return tmp_path


def test_keygen_writes_go_compatible_key_files(tmp_path, run):
    result = run(keygen, "acme-ai", "--out", tmp_path)
    assert result.exit_code == 0
    skey = (tmp_path / "acme-ai.key").read_text().strip()
    vkey = (tmp_path / "acme-ai.pub").read_text().strip()
    assert re.fullmatch(r"PRIVATE\+KEY\+acme-ai\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}", skey)
    assert re.fullmatch(r"acme-ai\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}", vkey)
    assert stat.S_IMODE((tmp_path / "acme-ai.key").stat().st_mode) == 0o600
    assert vkey in result.output and skey not in result.output  # never print the secret
    again = run(keygen, "acme-ai", "--out", tmp_path)
    assert again.exit_code == 2 and "already exists" in again.output
    assert run(keygen, "bad name", "--out", tmp_path).exit_code == 2



def test_keygen_name_with_slashes_lands_inside_out(tmp_path, run):
    result = run(keygen, "example.com/acme", "--out", tmp_path / "keys")
    assert result.exit_code == 0, result.output
    vkey = (tmp_path / "keys/example.com/acme.pub").read_text().strip()
    assert vkey.startswith("example.com/acme+") and vkey in result.output
    assert stat.S_IMODE((tmp_path / "keys/example.com/acme.key").stat().st_mode) == 0o600


@pytest.mark.parametrize("name", ["../x", "a/../../x", "./x", "a//x", "{abs}/x", ".."])
def test_keygen_never_writes_outside_out(tmp_path, run, name):
    out = tmp_path / "work/keys"
    result = run(keygen, name.format(abs=tmp_path / "abs"), "--out", out)
    assert result.exit_code == 2
    assert result.output.startswith("Error: key name") and result.output.count("\n") == 1
    assert not any(p.suffix in (".key", ".pub") for p in tmp_path.rglob("*"))


def test_keygen_refuses_a_symlink_in_out_that_leads_outside(tmp_path, run):
    out, outside = tmp_path / "keys", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "example.com").symlink_to(outside)
    result = run(keygen, "example.com/acme", "--out", out)
    assert result.exit_code == 2 and "outside" in result.output
    assert result.output.count("\n") == 1
    assert list(outside.iterdir()) == []

def test_sign_then_check_verified(world, run):
    signed = run(sign, world / "picture.png", "--key", world / "keys/acme-ai.key", "--label", "1",
                 "--synthesis", "face", "--consent-record", world / "consent.pdf", "--filing", "F-1",
                 "--assessment-ref", "SA-2025-7", "--url", "https://cdn.example/picture.png")
    assert signed.exit_code == 0, signed.output
    env = json.loads(signed.stdout)
    body = json.loads(base64.b64decode(env["payload"]))
    assert body["content"] == {"sha256": hashlib.sha256(PNG).hexdigest(), "media_type": "image/png",
                               "url": "https://cdn.example/picture.png"}
    assert body["consent"] == {"obtained": True, "record_sha256": hashlib.sha256(b"signed consent form").hexdigest()}
    assert body["assessment"] == {"ref": "SA-2025-7"} and body["filing"] == "F-1"
    assert body["aigc"]["Label"] == "1" and body["synthesis"] == ["face"]
    (world / "claim.json").write_text(signed.stdout)

    result = run(check, world / "picture.png", "--claim", world / "claim.json", "--trust", world / "trust.json")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("VERIFIED: AI-generated (Label 1)")
    assert "Acme AI" in result.output and "F-1" in result.output

    as_json = run(check, world / "picture.png", "--claim", world / "claim.json", "--trust", world / "trust.json",
                  "--json")
    verdict = json.loads(as_json.stdout)
    assert verdict["status"] == "verified" and verdict["category"] == "confirmed"
    assert verdict["reasons"] == ["signature_ok", "content_match"]


def test_check_fails_for_other_bytes(world, run):
    signed = run(sign, world / "picture.png", "--key", world / "keys/acme-ai.key", "--label", "2")
    (world / "claim.json").write_text(signed.stdout)
    (world / "picture.png").write_bytes(PNG + b"edited")
    result = run(check, world / "picture.png", "--claim", world / "claim.json", "--trust", world / "trust.json",
                 "--json")
    assert result.exit_code == 1
    verdict = json.loads(result.stdout)
    assert verdict["status"] == "invalid" and "content_mismatch" in verdict["reasons"]
    assert verdict["category"] == "possible"


def test_check_fails_for_an_unregistered_producer(world, run, tmp_path):
    run(keygen, "stranger", "--out", tmp_path / "other")
    signed = run(sign, world / "picture.png", "--key", tmp_path / "other/stranger.key", "--label", "1")
    (world / "claim.json").write_text(signed.stdout)
    result = run(check, world / "picture.png", "--claim", world / "claim.json", "--trust", world / "trust.json")
    assert result.exit_code == 1
    assert result.output.startswith("INVALID") and "not in the trust registry" in result.output


def test_check_expired_claim_with_at(world, run):
    signed = run(sign, world / "picture.png", "--key", world / "keys/acme-ai.key", "--label", "1",
                 "--expires-in", "1")
    (world / "claim.json").write_text(signed.stdout)
    issued = json.loads(base64.b64decode(json.loads(signed.stdout)["payload"]))["issued_at"]
    later = format_time(parse_time(issued) + timedelta(days=2))
    result = run(check, world / "picture.png", "--claim", world / "claim.json", "--trust", world / "trust.json",
                 "--at", later)
    assert result.exit_code == 1 and "expired" in result.output


def test_countersign(world, run):
    signed = run(sign, world / "picture.png", "--key", world / "keys/acme-ai.key", "--label", "1",
                 "--countersign", world / "keys/video-site.key")
    env = json.loads(signed.stdout)
    assert [s["keyid"].split("+")[0] for s in env["signatures"]] == ["acme-ai", "video-site"]
    (world / "claim.json").write_text(signed.stdout)
    result = run(check, world / "picture.png", "--claim", world / "claim.json", "--trust", world / "trust.json")
    assert result.exit_code == 0 and "countersigned by video-site+" in result.output


def test_html_snippet_round_trip(world, run):
    url = 'https://cdn.example/a.png?x=1&y="2"'
    signed = run(sign, world / "picture.png", "--key", world / "keys/acme-ai.key", "--label", "3",
                 "--url", url, "--html")
    assert signed.exit_code == 0
    snippet = signed.stdout.strip()
    m = re.fullmatch(r'<img src="([^"]*)" alt="" data-labelcheck-claim="([A-Za-z0-9_-]+)">', snippet)
    assert m, snippet
    assert html.unescape(m.group(1)) == url
    env = json.loads(claims.from_data_attribute(m.group(2)))
    assert env["payloadType"] == claims.PAYLOAD_TYPE
    # The snippet file itself is accepted by check.
    (world / "page.html").write_text(f"<p>art</p>\n{snippet}\n")
    result = run(check, world / "picture.png", "--claim", world / "page.html", "--trust", world / "trust.json")
    assert result.exit_code == 0, result.output
    assert "suspected AI-generated" in result.output


def test_html_snippet_uses_file_name_and_element_for_media_type(world, run):
    signed = run(sign, world / "picture.png", "--key", world / "keys/acme-ai.key", "--label", "1",
                 "--media-type", "video/mp4", "--html")
    assert signed.stdout.startswith('<video src="picture.png" controls data-labelcheck-claim="')


def test_sign_refuses_face_without_consent(world, run):
    result = run(sign, world / "picture.png", "--key", world / "keys/acme-ai.key", "--label", "1",
                 "--synthesis", "voice")
    assert result.exit_code == 2 and "--consent-record" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.png", "--key", "keys/acme-ai.key", "--label", "1"], "does not exist"),
        (["picture.png", "--key", "keys/none.key", "--label", "1"], "does not exist"),
        (["picture.png", "--key", "keys/acme-ai.pub", "--label", "1"], "public"),
        (["picture.png", "--key", "trust.json", "--label", "1"], "signer key"),
        (["picture.png", "--key", "keys/acme-ai.key", "--label", "4"], "Invalid value"),
        (["picture.png", "--key", "keys/acme-ai.key", "--label", "1", "--synthesis", "face",
          "--consent-record", "nope.pdf"], "consent record"),
    ],
)
def test_sign_errors_are_clear(world, run, monkeypatch, args, message):
    monkeypatch.chdir(world)
    result = run(sign, *args)
    assert result.exit_code == 2 and message in result.output


@pytest.mark.parametrize(
    "claim_text, trust_text, message",
    [
        (None, "{", "not valid JSON"),
        (None, '{"producers": [{"name": "x", "vkey": "nope"}]}', "vkey"),
        ("hello there", None, "holds no claim"),
        (b"\xff\xfe", None, "neither JSON nor text"),
    ],
)
def test_check_errors_are_clear(world, run, claim_text, trust_text, message):
    signed = run(sign, world / "picture.png", "--key", world / "keys/acme-ai.key", "--label", "1")
    claim = world / "claim.json"
    if isinstance(claim_text, bytes):
        claim.write_bytes(claim_text)
    else:
        claim.write_text(signed.stdout if claim_text is None else claim_text)
    if trust_text is not None:
        (world / "trust.json").write_text(trust_text)
    result = run(check, world / "picture.png", "--claim", claim, "--trust", world / "trust.json")
    assert result.exit_code == 2 and message in result.output


def test_check_missing_files(world, run):
    result = run(check, world / "nope.png", "--claim", world / "trust.json", "--trust", world / "trust.json")
    assert result.exit_code == 2 and "does not exist" in result.output
    result = run(check, world / "picture.png", "--claim", world / "nope.json", "--trust", world / "trust.json")
    assert result.exit_code == 2 and "does not exist" in result.output
    result = run(check, world / "picture.png", "--claim", world / "trust.json", "--trust", world / "none.json")
    assert result.exit_code == 2 and "does not exist" in result.output


def test_check_garbage_claim_is_invalid_not_a_crash(world, run):
    (world / "claim.json").write_text('{"payloadType": "x", "payload": "", "signatures": []}')
    result = run(check, world / "picture.png", "--claim", world / "claim.json", "--trust", world / "trust.json")
    assert result.exit_code == 1 and "payloadType" in result.output


def test_guess_media_type(tmp_path):
    named = tmp_path / "clip.mp4"
    named.write_bytes(b"")
    assert guess_media_type(named) == "video/mp4"
    for head, want in [(PNG, "image/png"), (b"\xff\xd8\xff\xe0", "image/jpeg"),
                       (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"), (b"\0\0\0\x18ftypisom", "video/mp4"),
                       (b"just text", "application/octet-stream")]:
        unnamed = tmp_path / "blob"
        unnamed.write_bytes(head)
        assert guess_media_type(unnamed) == want


def test_console_script_has_the_commands():
    out = subprocess.run([sys.executable, "-c", "from server.cli import main; main()", "--help"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for name in ("keygen", "sign", "check"):
        assert name in out.stdout
