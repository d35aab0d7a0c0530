"""Bundles: export, offline verification, tampering, trusted checkpoints."""

from __future__ import annotations

import io
import json

import pytest

from labelcheck.ledger import BundleError, Ledger, bundle, bundle_complete, merkle, verify_bundle
from labelcheck.ledger.note import Signer

ORIGIN = "bundle.example/log"


@pytest.fixture
def led(tmp_path):
    with Ledger.open_dir(tmp_path / "data", origin=ORIGIN) as ledger:
        yield ledger


def export(led) -> bytes:
    out = io.BytesIO()
    led.export(out)
    return out.getvalue()


def check(data: bytes, vkey: str, trusted: bytes | None = None, workers: int = 1, on_entry=None):
    return verify_bundle(io.BytesIO(data), vkey, trusted, workers=workers, on_entry=on_entry)


def both(data: bytes, vkey: str, trusted: bytes | None = None, monkeypatch=None):
    """Verify sequentially and with two worker processes over small blocks; both must agree,
    on the verdict and on the entries handed to ``on_entry``."""
    seen_one, seen_two = [], []
    one = check(data, vkey, trusted, on_entry=lambda *e: seen_one.append(e))
    monkeypatch.setattr(bundle_complete, "BLOCK", 700)  # several blocks even for a small bundle
    two = check(data, vkey, trusted, workers=2, on_entry=lambda *e: seen_two.append(e))
    assert (one.problems, one.first_bad_index, one.ok) == (two.problems, two.first_bad_index, two.ok)
    entries = [(i, merkle.leaf_hash(raw), json.loads(raw)) for i, raw in enumerate(lines(data)[1:])]
    if one.ok:  # every entry, in order, with its leaf hash
        assert seen_one == seen_two == entries
    else:  # a failure may stop either path a little earlier: never past the first bad entry
        for seen in (seen_one, seen_two):
            assert seen == entries[: len(seen)]
            assert one.first_bad_index is None or len(seen) <= one.first_bad_index
    return one


def lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")[:-1]


def join(parts: list[bytes]) -> bytes:
    return b"".join(p + b"\n" for p in parts)


def test_an_exported_bundle_verifies_offline(led, monkeypatch):
    led.append([{"n": i, "note": "é"} for i in range(25)])
    data = export(led)
    header = json.loads(lines(data)[0])
    assert header["format"] == "labelcheck-bundle/1" and header["complete"] is True
    assert header["size"] == 25 and header["origin"] == ORIGIN and header["vkey"] == led.verifier_key
    assert lines(data)[1:] == led.entries(0, 25)
    report = both(data, led.verifier_key, monkeypatch=monkeypatch)
    assert report.ok and report.size == 25
    assert report.summary().startswith(f"complete log of 25 entries, origin {ORIGIN}, root ")


def test_an_empty_log_exports_and_verifies(led):
    report = check(export(led), led.verifier_key)
    assert report.ok and report.size == 0


def test_only_the_given_key_is_trusted(led):
    led.append([{"n": 1}])
    data = export(led)
    other = Signer.generate(ORIGIN)
    report = check(data, other.vkey)
    assert not report.ok and "does not verify with" in report.summary()
    with pytest.raises(BundleError, match="bad verifier key"):
        check(data, "not a key")


def test_a_bundle_resigned_by_an_impostor_fails(led):
    led.append([{"n": i} for i in range(4)])
    parts = lines(export(led))
    header = json.loads(parts[0])
    impostor = Signer.generate(ORIGIN)
    text = header["checkpoint"].split("\n\n")[0] + "\n"
    from labelcheck.ledger import note

    header["checkpoint"] = note.sign(text, impostor).decode()
    header["vkey"] = impostor.vkey
    report = check(join([json.dumps(header).encode()] + parts[1:]), led.verifier_key)
    assert not report.ok and "does not verify" in report.problems[0]


@pytest.mark.parametrize(
    "tamper, words, bad",
    [
        (lambda p: p[:3] + [p[3].replace(b'"n":3', b'"n":9')] + p[4:], "entry 4: prev", 4),
        (lambda p: p[:-1] + [p[-1].replace(b'"n":19', b'"n":18')], "hash to root", None),
        (lambda p: p[:6] + p[7:], "entry 6: carries index 7", 6),
        (lambda p: p[:3] + [p[4], p[3]] + p[5:], "entry 3: carries index 4", 3),
        (lambda p: p[:-3], "entry 17 is missing (the bundle ends early)", 17),
        (lambda p: p + [b'{"extra":1}'], "data after entry 19", None),
        (lambda p: p[:8] + [p[8].replace(b":", b": ", 1)] + p[9:], "entry 8: not canonical JSON", 8),
        (lambda p: p[:8] + [p[8] + b" " * (bundle.MAX_ENTRY + 1)] + p[9:], "entry 8 is longer than 1 MiB", 8),
    ],
    ids=["changed", "changed-last", "deleted", "swapped", "truncated", "trailing", "whitespace", "huge"],
)
def test_a_tampered_bundle_names_the_first_bad_entry(led, monkeypatch, tamper, words, bad):
    led.append([{"n": i} for i in range(20)])
    parts = lines(export(led))
    report = both(join(parts[:1] + tamper(parts[1:])), led.verifier_key, monkeypatch=monkeypatch)
    assert not report.ok
    assert words in report.summary()
    assert report.first_bad_index == bad


def test_a_trusted_older_checkpoint_proves_the_log_only_grew(led, monkeypatch):
    led.append([{"n": i} for i in range(7)])
    trusted = led.checkpoint()
    led.append([{"n": i} for i in range(7, 30)])
    report = both(export(led), led.verifier_key, trusted, monkeypatch=monkeypatch)
    assert report.ok and report.trusted_size == 7
    assert "consistent with the trusted checkpoint at size 7 (the log only grew)" in report.summary()
    report = check(export(led), led.verifier_key, led.checkpoint())  # the same size is fine too
    assert report.ok


def test_a_forked_log_is_caught_by_the_trusted_checkpoint(tmp_path, monkeypatch):
    key = tmp_path / "ledger.key"
    honest = Ledger(tmp_path / "a.db", key_path=key, origin=ORIGIN)
    forked = Ledger(tmp_path / "b.db", key_path=key, origin=ORIGIN)
    for led in (honest, forked):
        led.append([{"n": i} for i in range(5)])
    honest.append([{"n": i} for i in range(5, 10)])
    forked.append([{"n": i, "forged": True} for i in range(5, 10)])
    trusted = honest.checkpoint()
    report = check(export(forked), forked.verifier_key, trusted)  # same size, other root
    assert not report.ok and "two different signed roots for size 10: the log was forked" in report.summary()
    forked.append([{"n": i} for i in range(10, 20)])
    data = export(forked)
    report = both(data, forked.verifier_key, trusted, monkeypatch=monkeypatch)
    assert not report.ok and report.first_bad_index == 10
    assert "the first 10 entries do not match the trusted checkpoint" in report.summary()
    # A fork that is also broken right after the trusted size: the fork is what is reported.
    parts = data.split(b"\n")
    parts[11] = parts[11].replace(b'"n":10', b'"n":10 ')
    report = both(b"\n".join(parts), forked.verifier_key, trusted, monkeypatch=monkeypatch)
    assert report.first_bad_index == 10 and "do not match the trusted checkpoint" in report.summary()
    honest.close()
    forked.close()


def test_a_trusted_checkpoint_by_another_key_is_refused(led):
    led.append([{"n": 1}])
    other = Ledger.open_dir(led._store.path.parent / "other", origin="other.example")
    other.append([{"n": 1}])
    with pytest.raises(BundleError, match="trusted checkpoint does not verify"):
        check(export(led), led.verifier_key, other.checkpoint())
    other.close()


@pytest.mark.parametrize(
    "first, words",
    [
        (b"not json", "not a bundle header"),
        (b'{"format":"labelcheck-bundle/9"}', "unknown bundle format 'labelcheck-bundle/9'"),
        (b'{"format":"labelcheck-bundle/1","complete":false}', "filtered bundle's filter cannot be checked"),
        (b'{"format":"labelcheck-bundle/1","complete":false,"filter":{"colour":"red"}}', "unknown filter 'colour'"),
        (b'{"format":"labelcheck-bundle/1","complete":"yes"}', 'must say "complete": true or false'),
        (b'{"format":"labelcheck-bundle/1","complete":true}', "no checkpoint"),
    ],
)
def test_bad_headers_are_refused_clearly(led, first, words):
    report = check(first + b"\n", led.verifier_key)
    assert not report.ok and words in report.summary()
