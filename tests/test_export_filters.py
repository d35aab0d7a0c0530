"""Filtered exports: each filter and combinations, offline verification of the
subset, tampering caught and named, HTTP and CLI, the benchmark at a tiny size."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from urllib.parse import quote
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from labelcheck.ledger import Ledger, LedgerError, merkle, verify_bundle
from labelcheck.ledger.filters import Filter, FilterError
from labelcheck.ledger.note import Signer
from labelcheck.ledger.store import Store
from labelcheck.web.app import create_app
from labelcheck.cli import main

ORIGIN = "filters.example/log"
ACME, PIXEL, GHOST = "acme+01020304", "pixel-forge+a1b2c3d4", "ghost+deadbeef"
STATUSES = ["verified", "invalid", "unverified", "declared"]


def records() -> list[dict]:
    """Verifications over five days by three keys, registry changes, a time with an offset."""
    out = [{"kind": "registry", "action": "add", "time": "2025-06-01T08:00:00Z",
            "producer": {"key_id": ACME, "name": "Acme"}},
           {"kind": "registry", "action": "add", "time": "2025-06-01T09:00:00Z",
            "producer": {"key_id": PIXEL, "name": "Pixel"}}]
    keys = [ACME, PIXEL, GHOST, None]
    for i in range(60):
        out.append({"kind": "verification", "time": f"2025-06-0{1 + i % 5}T{i % 24:02d}:00:00Z",
                    "key_id": keys[i % 4], "status": STATUSES[i % 3 if i % 7 else 3],
                    "reasons": ["signature_ok"], "page_origin": "https://news.example"})
        if i == 30:
            out.append({"kind": "registry", "action": "revoke", "time": "2025-06-03T12:00:00Z",
                        "producer": {"key_id": PIXEL, "name": "Pixel"}})
    # 2025-06-02T01:30+08:00 is 2025-06-01T17:30Z: compared as instants, not as text.
    out.append({"kind": "verification", "time": "2025-06-02T01:30:00+08:00", "key_id": ACME,
                "status": "invalid", "reasons": []})
    out.append({"kind": "verification", "time": "not a time", "key_id": ACME, "status": "invalid"})
    return out


def instant(text):
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None


def expected(entries: list[dict], filt: dict) -> list[int]:
    """Indexes matching ``filt``, computed here independently of ledger.filters."""
    out = []
    for e in entries:
        key = e.get("producer", {}).get("key_id") if e["kind"] == "registry" else e.get("key_id")
        at = instant(e.get("time"))
        if "kind" in filt and e["kind"] != filt["kind"]:
            continue
        if "status" in filt and (e["kind"] != "verification" or e.get("status") != filt["status"]):
            continue
        if "key_id" in filt and key != filt["key_id"]:
            continue
        if "since" in filt and (at is None or at < instant(filt["since"])):
            continue
        if "until" in filt and (at is None or at >= instant(filt["until"])):
            continue
        out.append(e["index"])
    return out


@pytest.fixture(scope="module")
def led(tmp_path_factory):
    d = tmp_path_factory.mktemp("filters")
    with Ledger.open_dir(d / "data", origin=ORIGIN) as ledger:
        ledger.append(records())
        ledger.checkpoint()
        yield ledger


def entries(led) -> list[dict]:
    return [json.loads(raw) for raw in led.entries(0, led.size())]


def export(led, consistency_from=None, **filt) -> bytes:
    out = io.BytesIO()
    led.export(out, filter=Filter.parse(filt), consistency_from=consistency_from)
    return out.getvalue()


def check(data: bytes, vkey: str, trusted: bytes | None = None):
    """verify_bundle, checking too what it hands to ``on_entry``: the bundle's
    entries in order, all of them when it verifies, none from the first bad line on."""
    seen = []
    report = verify_bundle(io.BytesIO(data), vkey, trusted, on_entry=lambda *e: seen.append(e))
    parts = data.split(b"\n")[1:-1]
    if report.ok:
        assert len(seen) == len(parts)
    for (index, leaf, value), part in zip(seen, parts):
        raw = part if report.complete else json.loads(part)["entry"].encode()
        assert (leaf, value) == (merkle.leaf_hash(raw), json.loads(raw)) and value["index"] == index
    if report.first_bad_index is not None:  # the bad entry was not handed over
        assert len(seen) <= report.first_bad_index if report.complete else len(seen) < len(parts)
    return report


def split(data: bytes) -> tuple[dict, list[dict]]:
    parts = data.split(b"\n")
    assert parts[-1] == b""
    return json.loads(parts[0]), [json.loads(p) for p in parts[1:-1]]


def join(header: dict, lines: list[dict]) -> bytes:
    dump = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()  # noqa: E731
    return b"".join(dump(x) + b"\n" for x in [header, *lines])


# --- each filter, and combinations ----------------------------------------------------------


@pytest.mark.parametrize("filt", [
    {"key_id": ACME},
    {"key_id": PIXEL},
    {"status": "invalid"},
    {"kind": "registry"},
    {"kind": "verification"},
    {"since": "2025-06-03T00:00:00Z"},
    {"until": "2025-06-02T00:00:00Z"},
    {"since": "2025-06-01T17:00:00Z", "until": "2025-06-01T18:00:00Z"},
    {"since": "2025-06-02T00:00:00+02:00", "until": "2025-06-04T00:00:00.5Z", "key_id": ACME},
    {"key_id": ACME, "status": "invalid", "kind": "verification"},
    {"key_id": PIXEL, "kind": "registry", "until": "2025-06-03T12:00:00Z"},
])
def test_a_filtered_export_holds_exactly_the_matching_entries_and_verifies(led, filt):
    data = export(led, **filt)
    header, lines = split(data)
    want = expected(entries(led), filt)
    assert want, "each case should select something"
    assert header["complete"] is False and header["filter"] == filt and header["size"] == led.size()
    assert [line["index"] for line in lines] == want
    size = led.size()
    root = merkle.MemoryHashes()
    for raw in led.entries(0, size):
        root.append_data(raw)
    for line in lines:  # the proofs check out independently of verify_bundle
        assert line["entry"].encode() == led.entries(line["index"], line["index"] + 1)[0]
        proof = [base64.b64decode(h) for h in line["inclusion"]]
        merkle.verify_inclusion(line["index"], size, merkle.leaf_hash(line["entry"].encode()), proof, root.root())
    report = check(data, led.verifier_key)
    assert report.ok, report.problems
    assert not report.complete and report.size == len(want) and report.filter == filt
    assert report.summary().startswith(f"{len(want)} entries, each included in the log of size {size}, ")
    assert "does not prove that no matching entry was left out" in report.summary()


def test_key_id_selects_the_producers_registry_history_too(led):
    _, lines = split(export(led, key_id=PIXEL))
    kinds = [json.loads(line["entry"])["kind"] for line in lines]
    assert kinds.count("registry") == 2 and "verification" in kinds


def test_time_is_compared_as_an_instant(led):
    _, lines = split(export(led, since="2025-06-01T17:15:00Z", until="2025-06-01T17:45:00Z"))
    assert [json.loads(line["entry"])["time"] for line in lines] == ["2025-06-02T01:30:00+08:00"]


def test_an_empty_filtered_result_verifies_and_says_so(led):
    data = export(led, key_id="nobody+00000000")
    header, lines = split(data)
    assert lines == [] and header["complete"] is False
    report = check(data, led.verifier_key)
    assert report.ok and report.size == 0
    assert report.summary().startswith(f"0 entries, each included in the log of size {led.size()}")


def test_no_filter_is_the_complete_bundle_unchanged(led):
    data = export(led)
    out = io.BytesIO()
    led.export(out)
    assert data == out.getvalue()
    report = check(data, led.verifier_key)
    assert report.ok and report.complete and report.summary().startswith(f"complete log of {led.size()} entries")


def test_proofs_cost_log_n_reads_not_a_rebuild(led, monkeypatch):
    reads = []
    real = Store.read_hashes
    monkeypatch.setattr(Store, "read_hashes", lambda self, ids, conn=None: reads.append(len(ids)) or real(self, ids, conn))
    _, lines = split(export(led, kind="verification"))
    depth = (led.size() - 1).bit_length()
    assert len(reads) <= len(lines) and max(reads) <= depth + 1
    assert sum(reads) <= len(lines) * (depth + 1)


# --- filter values ----------------------------------------------------------------------------


@pytest.mark.parametrize("values, words", [
    ({"since": "yesterday"}, "'since' must be an RFC 3339 date-time"),
    ({"until": "2025-06-01"}, "'until' must be an RFC 3339 date-time"),
    ({"since": "2025-06-01T00:00:00"}, "RFC 3339"),  # no offset: not an instant
    ({"since": "2025-13-01T00:00:00Z"}, "RFC 3339"),
    ({"since": "2025-06-02T00:00:00Z", "until": "2025-06-01T00:00:00Z"}, "'since' must be earlier than 'until'"),
    ({"kind": "receipt"}, "'kind' must be one of verification, registry"),
    ({"key_id": ""}, "non-empty string"),
    ({"status": "in valid"}, "printable ASCII characters without spaces"),
    ({"key_id": "k" * 201}, "at most 200"),
    ({"colour": "red"}, "unknown filter 'colour'"),
    ({"key_id": 7}, "non-empty string"),
])
def test_bad_filter_values_are_refused_clearly(values, words):
    with pytest.raises(FilterError, match=words.replace("(", r"\(")):
        Filter.parse(values)


# --- tampering with a filtered bundle -------------------------------------------------------


@pytest.fixture(scope="module")
def acme(led):
    data = export(led, key_id=ACME)
    header, lines = split(data)
    assert len(lines) >= 5
    return data, header, lines


def failed(data: bytes, vkey: str, words: str, index: int | None):
    report = check(data, vkey)
    assert not report.ok and words in report.summary(), report.summary()
    assert report.first_bad_index == index
    return report


def test_a_changed_entry_is_caught_and_named(led, acme):
    _, header, lines = acme
    lines = [dict(x) for x in lines]
    victim = lines[2]
    victim["entry"] = victim["entry"].replace('"reasons":[', '"reasons":["forged",', 1)
    failed(join(header, lines), led.verifier_key, f"entry {victim['index']} is not proven included", victim["index"])


def test_a_changed_proof_is_caught_and_named(led, acme):
    _, header, lines = acme
    lines = [dict(x) for x in lines]
    lines[3]["inclusion"] = [base64.b64encode(bytes(32)).decode()] + lines[3]["inclusion"][1:]
    failed(join(header, lines), led.verifier_key, "is not proven included", lines[3]["index"])
    lines[3]["inclusion"] = lines[3]["inclusion"][1:]  # a proof cut short
    failed(join(header, lines), led.verifier_key, "is not proven included", lines[3]["index"])
    lines[3]["inclusion"] = ["not base64!"]
    failed(join(header, lines), led.verifier_key, "not a list of base64 SHA-256 hashes", lines[3]["index"])


def test_a_non_matching_entry_slipped_in_is_caught(led, acme):
    """An honest entry with a valid proof, but one the stated filter excludes."""
    _, header, lines = acme
    other = next(e for e in entries(led) if e.get("key_id") == GHOST and e["index"] > lines[0]["index"])
    i = other["index"]
    slipped = {"entry": led.entries(i, i + 1)[0].decode(), "index": i,
               "inclusion": [base64.b64encode(h).decode() for h in led.inclusion_proof(i, led.size())]}
    forged = sorted([*lines, slipped], key=lambda x: x["index"])
    failed(join(header, forged), led.verifier_key, f"entry {i} does not match the bundle's filter key_id={ACME}", i)
    widened = dict(header, filter={"key_id": GHOST})  # the header's filter is what is checked
    failed(join(widened, lines), led.verifier_key, "does not match the bundle's filter", lines[0]["index"])


def test_reordered_or_repeated_indexes_are_caught(led, acme):
    _, header, lines = acme
    swapped = [lines[0], lines[2], lines[1], *lines[3:]]
    failed(join(header, swapped), led.verifier_key, "indexes must strictly increase", lines[1]["index"])
    twice = [lines[0], lines[1], lines[1], *lines[2:]]
    failed(join(header, twice), led.verifier_key, "an entry is repeated or out of order", lines[1]["index"])
    relabelled = [dict(x) for x in lines]
    relabelled[1]["index"] += 1  # the line's index no longer the entry's own
    failed(join(header, relabelled), led.verifier_key, "carries index", relabelled[1]["index"])


def test_a_wrong_checkpoint_is_caught(tmp_path, acme, led):
    data, header, lines = acme
    impostor = Signer.generate(ORIGIN)
    body = header["checkpoint"].split("\n\n")[0] + "\n"
    from labelcheck.ledger.checkpoint import Checkpoint, sign_checkpoint

    resigned = dict(header, checkpoint=sign_checkpoint(Checkpoint.parse(body), impostor).decode())
    report = check(join(resigned, lines), led.verifier_key)
    assert not report.ok and "does not verify with" in report.summary()
    # Another genuine checkpoint of the same log (after it grew): the proofs are for the old tree.
    with Ledger.open_dir(tmp_path / "grown", origin=ORIGIN) as other:
        other.append(records())
        old = export(other, key_id=ACME)
        other.append([{"kind": "verification", "time": "2025-06-06T00:00:00Z", "key_id": ACME, "status": "verified"}])
        newer = other.checkpoint().decode()
        h, ls = split(old)
        h.update(checkpoint=newer, size=h["size"] + 1)
        failed(join(h, ls), other.verifier_key, "is not proven included", ls[0]["index"])


def test_a_cut_or_malformed_line_is_caught(led, acme):
    data, header, lines = acme
    assert check(data[:-1], led.verifier_key).problems[0].endswith("is cut short (no newline)")
    extra = data + b'{"entry": "x"}\n'
    assert "not an entry with its inclusion proof" in check(extra, led.verifier_key).summary()
    beyond = dict(lines[-1], index=led.size())
    failed(join(header, [*lines, beyond]), led.verifier_key, "is beyond the log of size", led.size())


def test_growth_from_a_trusted_checkpoint(tmp_path):
    with Ledger.open_dir(tmp_path / "data", origin=ORIGIN) as led:
        led.append(records()[:20])
        trusted = led.checkpoint()
        led.append(records()[20:])
        with_proof = export(led, consistency_from=20, key_id=ACME)
        report = check(with_proof, led.verifier_key, trusted)
        assert report.ok and report.trusted_size == 20 and "the log only grew" in report.summary()
        report = check(export(led, key_id=ACME), led.verifier_key, trusted)
        assert not report.ok and "consistency proof from the trusted size 20" in report.summary()
        header, lines = split(with_proof)
        header["consistency"]["hashes"][0] = base64.b64encode(bytes(32)).decode()
        report = check(join(header, lines), led.verifier_key, trusted)
        assert not report.ok and "not proven to extend the trusted checkpoint" in report.summary()
        with pytest.raises(LedgerError, match="needs no consistency proof"):
            export(led, consistency_from=20)


# --- HTTP ------------------------------------------------------------------------------------


@pytest.fixture
def app(tmp_path):
    application = create_app({"data_dir": tmp_path / "data", "verify_rate": 0})
    application.extensions["labelcheck"].services.ledger.append(records())
    yield application
    application.extensions["labelcheck"].services.close()


def regulator(app) -> dict:
    return {"Authorization": "Bearer " + app.extensions["labelcheck"].regulator_token}


def problem(r, status: int, words: str) -> None:
    assert r.status_code == status, r.data
    assert r.mimetype == "application/problem+json" and words in r.json["detail"], r.json


def test_http_export_with_filters(app):
    client, svc = app.test_client(), app.extensions["labelcheck"].services
    vkey = client.get("/v1/keys").json["ledger_vkey"]
    problem(client.get("/v1/export?key_id=" + ACME), 401, "regulator")
    problem(client.get("/v1/export?key_id=" + ACME, headers=regulator(app)), 400, "sent as %2B")
    r = client.get(f"/v1/export?key_id={quote(ACME)}&status=invalid&since=2025-06-02T00:00:00Z", headers=regulator(app))
    assert r.status_code == 200 and r.mimetype == "application/x-ndjson"
    assert "-filtered.ndjson" in r.headers["Content-Disposition"]
    filt = {"key_id": ACME, "status": "invalid", "since": "2025-06-02T00:00:00Z"}
    header, lines = split(r.data)
    all_entries = [json.loads(raw) for raw in svc.ledger.entries(0, header["size"])]
    assert header["filter"] == filt and [x["index"] for x in lines] == expected(all_entries, filt) != []
    report = check(r.data, vkey)
    assert report.ok and report.size == len(lines) and not report.complete
    r = client.get("/v1/export?kind=registry&consistency_from=1", headers=regulator(app))
    assert r.status_code == 200 and split(r.data)[0]["consistency"]["from"] == 1
    whole = client.get("/v1/export", headers=regulator(app))
    assert check(whole.data, vkey).complete and check(whole.data, vkey).ok


@pytest.mark.parametrize("query, words", [
    ("since=yesterday", "'since' must be an RFC 3339 date-time"),
    ("since=2025-06-02T00:00:00Z&until=2025-06-01T00:00:00Z", "earlier than 'until'"),
    ("kind=receipt", "'kind' must be one of verification, registry"),
    ("key_id=", "non-empty"),
    ("keyid=" + ACME, "unknown query parameter 'keyid'"),
    ("status=invalid&status=verified", "more than once"),
    ("consistency_from=3", "consistency_from is for filtered exports"),
    ("kind=registry&consistency_from=-1", "must be a non-negative integer"),
    ("kind=registry&consistency_from=999999", "beyond the checkpoint's size"),
])
def test_http_bad_filters_are_400(app, query, words):
    problem(app.test_client().get("/v1/export?" + query, headers=regulator(app)), 400, words)


def test_openapi_documents_the_export_filters(app):
    doc = app.test_client().get("/openapi.json").json["paths"]["/v1/export"]["get"]
    assert {p["name"] for p in doc["parameters"]} == {"since", "until", "key_id", "status", "kind",
                                                        "consistency_from"}
    assert "400" in doc["responses"] and "no matching entry was left out" in doc["description"]


# --- CLI -------------------------------------------------------------------------------------


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_cli_export_verify_and_report_a_filtered_bundle(tmp_path):
    data_dir = tmp_path / "data"
    with Ledger.open_dir(data_dir, origin=ORIGIN) as led:
        led.append(records())
        vkey, size = led.verifier_key, led.size()
        want = expected(entries(led), {"key_id": ACME, "kind": "verification"})
    db, out = data_dir / "ledger.db", tmp_path / "acme.ndjson"
    r = run("ledger", "export", "--db", db, "--out", out, "--key-id", ACME, "--kind", "verification")
    assert r.exit_code == 0, r.output
    r = run("ledger", "verify-bundle", out, "--vkey", vkey)
    assert r.exit_code == 0 and f"{len(want)} entries, each included in the log of size {size}" in r.output
    html = tmp_path / "acme.html"
    r = run("audit", "report", out, "--vkey", vkey, "--out", html)
    assert r.exit_code == 0, r.output
    page = html.read_text("utf-8")
    assert f"filtered: {len(want)} entries, each proven included in the log of size {size}" in page
    assert ACME in page

    header, lines = split(out.read_bytes())
    tampered = tmp_path / "tampered.ndjson"
    tampered.write_bytes(join(header, [lines[0], lines[2], lines[1], *lines[3:]]))
    r = run("ledger", "verify-bundle", tampered, "--vkey", vkey)
    assert r.exit_code == 1 and "strictly increase" in r.output and f"first bad entry: {lines[1]['index']}" in r.output
    r = run("audit", "report", tampered, "--vkey", vkey, "--out", tmp_path / "no.html")
    assert r.exit_code == 1 and not (tmp_path / "no.html").exists()

    complete = tmp_path / "all.ndjson"
    assert run("ledger", "export", "--db", db, "--out", complete).exit_code == 0
    r = run("ledger", "verify-bundle", complete, "--vkey", vkey)
    assert r.exit_code == 0 and f"complete log of {size} entries" in r.output


def test_cli_growth_through_the_report(tmp_path):
    data_dir = tmp_path / "data"
    with Ledger.open_dir(data_dir, origin=ORIGIN) as led:
        led.append(records()[:10])
        (tmp_path / "trusted.note").write_bytes(led.checkpoint())
        led.append(records()[10:])
        vkey = led.verifier_key
    db, out = data_dir / "ledger.db", tmp_path / "f.ndjson"
    assert run("ledger", "export", "--db", db, "--out", out, "--status", "invalid",
               "--consistency-from", 10).exit_code == 0
    r = run("audit", "report", out, "--vkey", vkey, "--out", tmp_path / "r.html",
            "--trusted-checkpoint", tmp_path / "trusted.note")
    assert r.exit_code == 0, r.output
    r = run("ledger", "verify-bundle", out, "--vkey", vkey, "--trusted-checkpoint", tmp_path / "trusted.note")
    assert r.exit_code == 0 and "the log only grew" in r.output


@pytest.mark.parametrize("args, words", [
    (["--since", "last week"], "'since' must be an RFC 3339 date-time"),
    (["--kind", "receipt"], "'receipt' is not one of"),
    (["--consistency-from", "3"], "--consistency-from is for filtered bundles"),
])
def test_cli_bad_filters_are_clear_errors(tmp_path, args, words):
    with Ledger.open_dir(tmp_path / "data", origin=ORIGIN) as led:
        led.append(records()[:3])
    out = tmp_path / "b.ndjson"
    r = run("ledger", "export", "--db", tmp_path / "data" / "ledger.db", "--out", out, *args)
    assert r.exit_code == 2 and words in r.output and not out.exists()


# --- the benchmark cannot rot ----------------------------------------------------------------


def test_benchmark_runs_at_a_tiny_size(tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "benchmarks" / "export.py"
    r = subprocess.run([sys.executable, str(script), "--size", "2000", "--cache", str(tmp_path)],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["size"] == 2000
    for case in ("unfiltered", "filtered"):
        assert result[case]["export_per_s"] > 0 and result[case]["verify_per_s"] > 0
        assert result[case]["export_peak_mib"] > 0 and result[case]["verify_peak_mib"] > 0
    assert result["filtered"]["entries"] == 20 and result["ceiling_per_s"] > 0


def test_time_parsing_edges():
    from labelcheck.ledger.filters import parse_time

    assert parse_time("2025-06-01t00:00:00z") == datetime(2025, 6, 1, tzinfo=timezone.utc)
    assert parse_time("2025-06-01T00:00:00.123456789Z").microsecond == 123456
    assert parse_time("2025-06-01 00:00:00Z") is None and parse_time(None) is None
    # Any offset names an instant; -00:00 (RFC 3339 §4.3) is UTC; ASCII digits only; no offset, no instant.
    assert parse_time("2025-06-01T08:00:00+08:00") == parse_time("2025-06-01T00:00:00-00:00") == \
        datetime(2025, 6, 1, tzinfo=timezone.utc)
    assert parse_time("２０２５-06-01T00:00:00Z") is None and parse_time("2025-06-01T00:00:00") is None
    assert parse_time("2025-06-01T00:00:00.1234567890Z") is None and parse_time("2025-02-30T00:00:00Z") is None
    with pytest.raises(FilterError, match="since"):
        Filter.parse({"since": "2025-06-01T00:00:00"})
