"""``labelcheck audit report``: the figures in the HTML equal counts computed
here, independently, from the bundle; a bundle that fails is refused; the
file is offline and escapes what entries say."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from labelcheck.ledger import Ledger, verify_bundle
from labelcheck.ledger import checkpoint as ckpt
from labelcheck.ledger.filters import Filter
from labelcheck.cli import main
from labelcheck.audit.report import ReportError, audit_data, count_bundle, render

ORIGIN = "audit.example/log"
HOSTILE_NAME = '<script>alert("name")</script><img src=x onerror=alert(1)>'
HOSTILE_KEY = 'x"><svg onload=alert(2)>+0badc0de'
FAILING = {"content_mismatch", "signature_invalid", "unknown_key", "revoked_key", "expired", "fetch_failed",
           "malformed", "signals_conflict", "<b>odd</b>"}
CHROMIUM = Path("/usr/bin/chromium")


# --- fixtures: a real ledger, exported ----------------------------------------------


def registry(action, time, key_id, name, filing=None):
    return {"kind": "registry", "action": action, "time": time,
            "producer": {"key_id": key_id, "name": name, "filing": filing, "roles": ["producer"],
                         "revoked_at": time if action == "revoke" else None, "vkey": key_id + "+AQ"}}


def verification(rng, day, key_id):
    status = rng.choice(["verified", "verified", "verified", "invalid", "invalid", "unverified", "declared", "none"])
    reasons = {
        "verified": ["signature_ok", "content_match"],
        "invalid": rng.choice([["signature_ok", "content_mismatch"], ["signature_invalid"],
                               ["unknown_key", "content_mismatch", "signals_conflict"], ["revoked_key"]]),
        "unverified": ["signature_ok", "fetch_failed"],
        "declared": [],
        "none": [],
    }[status]
    return {"kind": "verification", "time": f"2025-06-{day:02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z",
            "status": status, "category": rng.choice(["confirmed", "possible", "suspected", None]),
            "reasons": reasons, "key_id": key_id, "claim_digest": None, "claim_id": None,
            "content_sha256": {"claimed": None, "observed": None}, "binding": "client_sha256",
            "page_origin": rng.choice(["https://news.example", None]), "media_origin": None,
            "server": "labelcheck/test", "registry_version": "0" * 64}


def sample_records(seed=7, n=240):
    rng = random.Random(seed)
    keys = ["acme+01020304", "pixel-forge+a1b2c3d4", HOSTILE_KEY, "ghost+deadbeef", None]
    out = [registry("add", "2025-06-01T08:00:00Z", "acme+01020304", "Acme 生成式 AI", "F-2025-001"),
           registry("add", "2025-06-01T09:30:00Z", "pixel-forge+a1b2c3d4", "Pixel Forge"),
           registry("add", "2025-06-02T10:00:00Z", HOSTILE_KEY, HOSTILE_NAME)]
    for i in range(n):
        out.append(verification(rng, 1 + i % 6, rng.choice(keys)))
        if i == n // 2:
            out.append(registry("revoke", "2025-06-04T12:00:00Z", HOSTILE_KEY, HOSTILE_NAME))
    out.append({"kind": "verification", "time": "2025-06-05T23:59:59Z", "status": "invalid", "category": None,
                "reasons": ["<b>odd</b>", "content_mismatch"], "key_id": HOSTILE_KEY,
                "page_origin": "https://<i>evil</i>.example"})
    return out


def make_bundle(tmp_path, records, name="bundle.ndjson", data_dir="data"):
    with Ledger.open_dir(tmp_path / data_dir, origin=ORIGIN) as led:
        for i in range(0, len(records), 100):
            led.append(records[i:i + 100])
        path = tmp_path / name
        with open(path, "wb") as fp:
            led.export(fp)
        return path, led.verifier_key


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audit")
    path, vkey = make_bundle(tmp, sample_records())
    return path, vkey


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def report(tmp_path, bundle, vkey, *extra, name="report.html"):
    out = tmp_path / name
    result = run("audit", "report", bundle, "--vkey", vkey, "--out", out, *extra)
    assert result.exit_code == 0, result.output
    return out.read_text("utf-8")


# --- reading the HTML back ------------------------------------------------------------


class Page(HTMLParser):
    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag=None, cls=None, **attrs):
        out = []
        for t, a in self.elements:
            if tag and t != tag:
                continue
            if cls and cls not in (a.get("class") or "").split():
                continue
            if all(a.get(k.replace("_", "-")) == v for k, v in attrs.items()):
                out.append(a)
        return out

    @property
    def all_text(self):
        return "".join(self.text)


def bundle_entries(path):
    lines = Path(path).read_bytes().split(b"\n")
    header = json.loads(lines[0])
    entries = [line for line in lines[1:] if line]
    return header, entries


def expected_counts(entries):
    """Counts straight from the bundle lines, written out without the report's code."""
    day_status, status, category, producers, kinds = Counter(), Counter(), Counter(), {}, Counter()
    registry_events, bad = [], []
    for raw in entries:
        e = json.loads(raw)
        kinds[e["kind"]] += 1
        if e["kind"] == "registry":
            registry_events.append(e)
            continue
        day_status[(e["time"][:10], e["status"])] += 1
        status[e["status"]] += 1
        category[e["category"] or "none"] += 1
        kinds["content_mismatch"] += "content_mismatch" in e["reasons"]
        if e["key_id"] is not None:
            p = producers.setdefault(e["key_id"], Counter())
            p["total"] += 1
            p["invalid"] += e["status"] == "invalid"
            p["mismatch"] += "content_mismatch" in e["reasons"]
        if e["status"] in ("invalid", "unverified"):
            rank = (2 if e["status"] == "invalid" else 1, len(set(e["reasons"]) & FAILING), e["index"])
            leaf = base64.b64encode(hashlib.sha256(b"\x00" + raw).digest()).decode()
            bad.append((rank, e["index"], leaf))
    bad.sort(reverse=True)
    return dict(day_status=day_status, status=status, category=category, producers=producers, kinds=kinds,
                registry=registry_events, bad=bad)


def assert_offline(html):
    page = Page(html)
    tags = {t for t, _ in page.elements}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "image", "use", "foreignobject"}
    for tag, attrs in page.elements:
        assert not {"src", "href", "xlink:href", "srcset", "action"} & set(attrs), (tag, attrs)
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
    csp = page.find("meta", http_equiv="Content-Security-Policy")
    assert csp and "default-src 'none'" in csp[0]["content"]
    # Every chart is well-formed XML on its own (escaping broke nothing).
    start = 0
    while (i := html.find("<svg", start)) != -1:
        j = html.index("</svg>", i) + len("</svg>")
        ET.fromstring(html[i:j])
        start = j
    return page


# --- the figures ------------------------------------------------------------------------


def test_figures_equal_counts_from_the_bundle(tmp_path, sample):
    bundle, vkey = sample
    html = report(tmp_path, bundle, vkey, "--top", "1000")
    page = assert_offline(html)
    header, entries = bundle_entries(bundle)
    want = expected_counts(entries)

    got_bars = Counter()
    for a in page.find("rect"):
        if "data-status" in a and "data-day" in a:
            got_bars[(a["data-day"], a["data-status"])] += int(a["data-count"])
    assert got_bars == want["day_status"]
    assert {a["data-day"] for a in page.find("g", cls="bar")} == {d for d, _ in want["day_status"]}

    legend = {a["data-status"]: int(a["data-count"]) for a in page.find("li") if "data-status" in a}
    assert {k: v for k, v in legend.items() if v} == dict(want["status"])
    rows = {a["data-status"]: int(a["data-count"]) for a in page.find("tr") if "data-status" in a
            and "worst" not in a.get("class", "")}
    assert {k: v for k, v in rows.items() if v} == dict(want["status"])

    slices = {a["data-category"]: int(a["data-count"]) for a in page.find("circle", cls="slice")}
    assert slices == dict(want["category"])
    assert sum(float(a["data-share"]) for a in page.find("g", cls="legend")) == pytest.approx(100, abs=0.3)

    ranked = sorted(((k, c) for k, c in want["producers"].items() if c["invalid"] or c["mismatch"]),
                    key=lambda kc: (-kc[1]["invalid"], -kc[1]["mismatch"], -kc[1]["total"], kc[0]))
    bars = page.find("g", cls="producer")
    assert [a["data-key-id"] for a in bars] == [k for k, _ in ranked][:12]
    for a, (_, c) in zip(bars, ranked):
        assert (int(a["data-invalid"]), int(a["data-mismatch"]), int(a["data-total"])) == \
            (c["invalid"], c["mismatch"], c["total"])

    events = page.find("g", cls="event")
    assert [(a["data-action"], a["data-time"], a["data-key-id"]) for a in events] == \
        [(e["action"], e["time"], e["producer"]["key_id"]) for e in want["registry"]]

    worst = page.find("tr", cls="worst")
    assert [(int(a["data-index"]), a["data-leaf-hash"]) for a in worst] == [(i, h) for _, i, h in want["bad"]]
    statuses = [a["data-status"] for a in worst]
    assert statuses == sorted(statuses, key=lambda s: s != "invalid")  # invalid first

    cards = {a["data-metric"]: int(a["data-count"]) for a in page.find("div", cls="card")}
    assert cards == {"entries": len(entries), "verifications": want["kinds"]["verification"],
                     "invalid": want["status"]["invalid"], "registry": want["kinds"]["registry"],
                     "content_mismatch": want["kinds"]["content_mismatch"]}

    cp = ckpt.Checkpoint.parse(header["checkpoint"].split("\n\n")[0] + "\n")
    proof = page.find("section", cls="proof")[0]
    assert (proof["data-complete"], int(proof["data-size"])) == ("true", len(entries))
    text = page.all_text
    for fact in (ORIGIN, base64.b64encode(cp.root).decode(), vkey, f"complete log of {len(entries)} entries"):
        assert fact in text


def test_worst_table_is_bounded_to_top(tmp_path, sample):
    bundle, vkey = sample
    page = Page(report(tmp_path, bundle, vkey, "--top", "5"))
    want = expected_counts(bundle_entries(bundle)[1])["bad"]
    assert [int(a["data-index"]) for a in page.find("tr", cls="worst")] == [i for _, i, _ in want[:5]]
    assert f"Showing 5 of {len(want)}" in page.all_text


def test_chinese_report(tmp_path, sample):
    bundle, vkey = sample
    html = report(tmp_path, bundle, vkey, "--lang", "zh-CN")
    page = assert_offline(html)
    assert page.find("html", lang="zh-CN")
    text = page.all_text
    for words in ("labelcheck 审计报告", "已核验内容", "人工智能生成", "疑似人工智能生成", "可能为人工智能生成",
                  "按日统计的核验结果", "问题最严重的条目", "登记事件时间线", "内容不符", "新增生成方", "吊销生成方"):
        assert words in text, words
    for english in ("What was verified", "Worst items", "Registry events", "Share of each category"):
        assert english not in text


def test_hostile_names_and_reasons_are_escaped(tmp_path, sample):
    bundle, vkey = sample
    html = report(tmp_path, bundle, vkey)
    page = assert_offline(html)  # no script, img or on* attribute got through
    assert "<script>alert" not in html and "<img src=x" not in html and "<svg onload" not in html
    text = page.all_text
    assert HOSTILE_NAME in text  # shown as text, exactly as recorded
    assert "&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;" in html
    assert HOSTILE_KEY in {a.get("data-key-id") for a in page.find("g", cls="producer")}
    assert "<b>odd</b>" in text and "<b>odd</b>" not in html
    assert "https://<i>evil</i>.example" in text


# --- refusals ---------------------------------------------------------------------------


def test_tampered_bundle_is_refused_and_nothing_written(tmp_path, sample):
    bundle, vkey = sample
    data = bundle.read_bytes()
    lines = data.split(b"\n")
    k = next(i for i, line in enumerate(lines) if b'"status":"invalid"' in line)
    lines[k] = lines[k].replace(b'"status":"invalid"', b'"status":"verified"', 1)
    tampered = tmp_path / "tampered.ndjson"
    tampered.write_bytes(b"\n".join(lines))
    out = tmp_path / "report.html"
    result = run("audit", "report", tampered, "--vkey", vkey, "--out", out)
    assert result.exit_code == 1
    assert "refusing to report" in result.output and f"entry {k - 1}" in result.output
    assert not out.exists()

    other = Ledger.open_dir(tmp_path / "other", origin=ORIGIN).verifier_key  # same name, another key
    result = run("audit", "report", bundle, "--vkey", other, "--out", out)
    assert result.exit_code == 1 and "does not verify" in result.output
    assert not out.exists()


def test_bad_input_is_a_clear_error(tmp_path, sample):
    bundle, vkey = sample
    out = tmp_path / "r.html"
    r = run("audit", "report", tmp_path / "missing.ndjson", "--vkey", vkey, "--out", out)
    assert r.exit_code == 2 and "no such file" in r.output
    r = run("audit", "report", bundle, "--vkey", "not-a-key+", "--out", out)
    assert r.exit_code == 2 and "bad verifier key" in r.output
    r = run("audit", "report", bundle, "--vkey", vkey, "--out", out, "--lang", "fr")
    assert r.exit_code == 2
    assert not out.exists()


def test_counting_refuses_a_changed_bundle(tmp_path, sample):
    """The counts come from the verifying read itself: a bundle with entries
    swapped or missing is refused, with no counts."""
    bundle, vkey = sample
    from labelcheck.ledger import note

    verifier = note.Verifier.from_vkey(vkey)
    lines = bundle.read_bytes().split(b"\n")
    swapped = b"\n".join([lines[0], lines[2], lines[1], *lines[3:]])
    with pytest.raises(ReportError, match="entry 0: carries index 1") as err:
        count_bundle(io.BytesIO(swapped), verifier)
    assert err.value.problems
    with pytest.raises(ReportError, match="missing"):
        count_bundle(io.BytesIO(b"\n".join(lines[:-3]) + b"\n"), verifier)
    assert count_bundle(io.BytesIO(bundle.read_bytes()), verifier).entries == len(lines) - 2


def test_trusted_checkpoint_growth_and_rollback(tmp_path):
    records = sample_records(n=40)
    with Ledger.open_dir(tmp_path / "data", origin=ORIGIN) as led:
        led.append(records[:20])
        old = tmp_path / "old.note"
        old.write_bytes(led.checkpoint())
        led.append(records[20:])
        bundle = tmp_path / "b.ndjson"
        with open(bundle, "wb") as fp:
            led.export(fp)
        vkey = led.verifier_key
        newer = tmp_path / "newer.note"
        led.append(records[:5])
        newer.write_bytes(led.checkpoint())
    text = Page(report(tmp_path, bundle, vkey, "--trusted-checkpoint", old)).all_text
    assert "consistent with the checkpoint trusted before, at size 20" in text
    out = tmp_path / "refused.html"
    r = run("audit", "report", bundle, "--vkey", vkey, "--out", out, "--trusted-checkpoint", newer)
    assert r.exit_code == 1 and "rolled back" in r.output and not out.exists()


def test_empty_log(tmp_path):
    bundle, vkey = make_bundle(tmp_path, [])
    html = report(tmp_path, bundle, vkey)
    page = assert_offline(html)
    cards = {a["data-metric"]: int(a["data-count"]) for a in page.find("div", cls="card")}
    assert set(cards.values()) == {0}
    assert not page.find("rect", data_status="verified") and not page.find("tr", cls="worst")
    text = page.all_text
    for words in ("complete log, empty (0 entries)", "No verifications in this bundle.",
                  "No registry changes in this bundle.", "No invalid or unverifiable results."):
        assert words in text
    assert "空" in Page(report(tmp_path, bundle, vkey, "--lang", "zh-CN", name="zh.html")).all_text


# --- filtered bundles (format reserved in ledger.bundle) -----------------------------------


def filtered_bundle(led: Ledger, filt: dict) -> bytes:
    """A filtered bundle from the ledger's own exporter: entries with inclusion proofs."""
    out = io.BytesIO()
    led.export(out, filter=Filter.parse(filt))
    return out.getvalue()


def acme_or_its_registry(e: dict) -> bool:
    """The key-id filter's meaning: its verifications and its registry history."""
    if e["kind"] == "registry":
        return e["producer"]["key_id"] == "acme+01020304"
    return e.get("key_id") == "acme+01020304"


@pytest.fixture
def filtered(tmp_path):
    led = Ledger.open_dir(tmp_path / "data", origin=ORIGIN)
    led.append(sample_records(n=120))
    data = filtered_bundle(led, {"key_id": "acme+01020304"})
    yield led, data, acme_or_its_registry
    led.close()


def test_filtered_bundle_counts_only_its_entries(filtered):
    led, data, keep = filtered
    from labelcheck.ledger import note

    verifier = note.Verifier.from_vkey(led.verifier_key)
    cp = ckpt.open_checkpoint(led.checkpoint(), verifier)
    got = count_bundle(io.BytesIO(data), verifier)
    assert got.checkpoint == cp
    subset = [raw for raw in led.entries(0, cp.size) if keep(json.loads(raw))]
    want = expected_counts(subset)
    assert not got.complete and got.filter["key_id"] == "acme+01020304"
    assert got.entries == len(subset)
    assert dict(got.by_status) == dict(want["status"])
    assert dict(got.by_category) == dict(want["category"])
    assert [(w.index, w.leaf_hash) for w in got.worst] == [(i, h) for _, i, h in want["bad"][:50]]
    page = assert_offline(render(got, "en"))
    proof = page.find("section", cls="proof")[0]
    assert proof["data-complete"] == "false" and int(proof["data-entries"]) == len(subset)
    text = page.all_text
    assert f"filtered: {len(subset)} entries, each proven included in the log of size {cp.size}" in text
    assert "key_id = acme+01020304" in text and "does not prove that no matching entry was left out" in text
    assert "筛选导出" in Page(render(got, "zh-CN")).all_text


def test_filtered_bundle_proofs_are_checked(filtered):
    led, data, _ = filtered
    from labelcheck.ledger import note

    verifier = note.Verifier.from_vkey(led.verifier_key)
    assert count_bundle(io.BytesIO(data), verifier).entries == len(data.split(b"\n")) - 2
    header, first, second, *rest = data.split(b"\n")
    line = json.loads(first)
    line["inclusion"][0] = base64.b64encode(bytes(32)).decode()
    bad_proof = b"\n".join([header, json.dumps(line).encode(), second, *rest])
    with pytest.raises(ReportError, match="not proven included"):
        count_bundle(io.BytesIO(bad_proof), verifier)
    twice = b"\n".join([header, first, first, second, *rest])  # one entry counted twice
    with pytest.raises(ReportError, match="strictly increase"):
        count_bundle(io.BytesIO(twice), verifier)
    line = json.loads(second)
    assert '"time":"2025' in line["entry"]
    line["entry"] = line["entry"].replace('"time":"2025', '"time":"2024', 1)
    edited = b"\n".join([header, first, json.dumps(line, ensure_ascii=False).encode(), *rest])
    with pytest.raises(ReportError, match="not proven included"):
        count_bundle(io.BytesIO(edited), verifier)


def test_filtered_bundle_through_the_command(tmp_path, filtered):
    """The command verifies a filtered bundle, then reports on exactly its entries."""
    led, data, keep = filtered
    path = tmp_path / "filtered.ndjson"
    path.write_bytes(data)
    verdict = verify_bundle(io.BytesIO(data), led.verifier_key)
    assert verdict.ok and not verdict.complete
    out = tmp_path / "filtered.html"
    r = run("audit", "report", path, "--vkey", led.verifier_key, "--out", out)
    assert r.exit_code == 0, r.output
    subset = [raw for raw in led.entries(0, led.size()) if keep(json.loads(raw))]
    assert f"filtered: {len(subset)} entries" in out.read_text("utf-8")
    tampered = tmp_path / "tampered.ndjson"
    tampered.write_bytes(data.replace(b'\\"status\\":\\"verified', b'\\"status\\":\\"invalid', 1))
    assert tampered.read_bytes() != data
    bad_out = tmp_path / "tampered.html"
    r = run("audit", "report", tampered, "--vkey", led.verifier_key, "--out", bad_out)
    assert r.exit_code == 1 and not bad_out.exists()


# --- the rendered page --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed")
def test_screenshot_in_headless_chromium(tmp_path, sample, artifacts_dir):
    from PIL import Image

    bundle, vkey = sample
    for lang in ("en", "zh-CN"):
        html_path = artifacts_dir / f"audit-report-{lang}.html"
        html_path.write_text(report(tmp_path, bundle, vkey, "--lang", lang, name=f"r-{lang}.html"), "utf-8")
        png = artifacts_dir / f"audit-report-{lang}.png"
        png.unlink(missing_ok=True)
        subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={tmp_path / 'chromium'}", f"--screenshot={png}",
                        "--window-size=1280,2000", html_path.as_uri()],
                       check=True, capture_output=True, timeout=120)
        with Image.open(png) as img:
            assert img.size == (1280, 2000)
            colours = img.convert("RGB").resize((64, 100)).getcolors(64 * 100)
            assert colours is not None and len(colours) > 20  # drawn, not a blank page


def test_benchmark_runs_at_a_tiny_size(tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "benchmarks" / "audit_report.py"
    r = subprocess.run([sys.executable, str(script), "--entries", "300", "--workdir", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["entries"] == 300 and result["report_entries_per_s"] > 0 and result["peak_mib"] > 0


# --- long periods and many keys stay readable and bounded ---------------------------------


def test_buckets_keep_every_count_and_fill_gaps():
    from labelcheck.audit.report.svg import buckets

    def total(rows):
        return sum((c for _, c in rows), Counter())

    short = {"2025-06-01": Counter(verified=2), "2025-06-04": Counter(invalid=1)}
    unit, rows = buckets(short)
    assert unit == "day" and [k for k, _ in rows] == ["2025-06-01", "2025-06-02", "2025-06-03", "2025-06-04"]
    assert rows[1][1] == Counter()  # a day with nothing is a real zero, drawn as a gap
    months = {"2025-01-15": Counter(verified=1), "2025-04-02": Counter(invalid=3), "bad-day": Counter(none=1)}
    unit, rows = buckets(months)
    assert unit == "week" and rows[0][0] == "2025-01-13"  # weeks start on Monday
    assert rows[-1][0] == "unknown" and total(rows) == Counter(verified=1, invalid=3, none=1)
    years = {"2023-01-31": Counter(verified=1), "2025-06-30": Counter(invalid=2)}
    unit, rows = buckets(years)
    assert unit == "month" and rows[0][0] == "2023-01-01" and rows[-1][0] == "2025-06-01" and len(rows) == 30
    assert total(rows) == Counter(verified=1, invalid=2)


def test_distinct_keys_are_capped(tmp_path, monkeypatch):
    from labelcheck.ledger import note
    from labelcheck.audit.report import gather as gather_module

    records = [{"kind": "verification", "time": "2025-06-01T00:00:00Z", "status": "invalid", "category": None,
                "reasons": ["unknown_key"], "key_id": f"k{i}+0000000{i}"} for i in range(5)]
    bundle, vkey = make_bundle(tmp_path, records)
    monkeypatch.setattr(gather_module, "MAX_KEYS", 2)
    verifier = note.Verifier.from_vkey(vkey)
    data = audit_data(bundle, verifier)
    assert len(data.producers) == 2 and data.keys_overflow == 3 and data.by_status["invalid"] == 5
    text = Page(render(data, "en")).all_text
    assert "3 verifications named keys beyond the first 2 distinct ones" in text
