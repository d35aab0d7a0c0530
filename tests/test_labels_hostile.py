"""Hostile media: every reader ends in bounded time and memory with a reason.

The crafted cases (tests/fuzz/cases.py, small ones kept in tests/fuzz/corpus/)
are each run under tight bounds; the reading budget, the result caps and the
grouped conflicts are checked on their own.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import media_factory as mf
from fuzz import cases, harness
from labelcheck.labels import Signal, merge, read_labels, xmp
from labelcheck.labels.budget import Budget, Limit
from labelcheck.labels.merge import MAX_CONFLICTS, MAX_SIGNALS

CORPUS = Path(__file__).resolve().parent / "fuzz" / "corpus"
SECONDS, MEGABYTES = 1.0, 50


def reasons(found):
    return [(s.reasons[-1], s.detail.get("limit")) for s in found]


def test_corpus_matches_its_generator():
    kept = {p.name: p.read_bytes() for p in CORPUS.iterdir()}
    assert kept == {name: make() for name, make in cases.SMALL.items()}
    assert all(len(data) < 20 << 10 for data in kept.values())


@pytest.mark.parametrize("name", sorted(cases.SMALL))
def test_corpus_case_is_bounded(name):
    r = harness.check("read_labels", (CORPUS / name).read_bytes(), seconds=SECONDS, megabytes=MEGABYTES)
    assert r.result and all(s.status == "malformed" for s in r.result), r.result


@pytest.mark.parametrize("name", sorted(cases.LARGE))
def test_large_case_is_bounded(name):
    data = cases.LARGE[name]()
    r = harness.check("read_labels", data, seconds=SECONDS, megabytes=MEGABYTES)
    assert len(r.result) <= 65
    assert r.result[-1].status == "malformed"  # the reading stopped, and says why


def test_deep_xmp_is_refused_at_a_fixed_depth_not_parsed_for_seconds():
    [s] = read_labels(io.BytesIO(cases.png_deep_itxt(12_000)))
    assert (s.status, s.reasons, s.detail["limit"]) == ("malformed", ["malformed", "limit"], "depth")
    # Nesting within the cap keeps the old meaning: all text inside the element.
    assert xmp._values(cases.nested_xmp(xmp.MAX_NESTED))[0][0] == "x" * xmp.MAX_NESTED


def test_xmp_reading_is_linear_in_text():
    """Text under nested properties is not copied once per open element."""
    body = "<TC260:AIGC>" * xmp.MAX_NESTED + "y" * 500_000 + "</TC260:AIGC>" * xmp.MAX_NESTED
    r = harness.check("xmp", cases._rdf(body), seconds=0.5, megabytes=20)
    [first, *_] = r.result
    assert first.status == "malformed" and first.reasons[-1] == "label_too_large"


def test_many_labels_stop_at_the_item_budget_and_keep_the_first():
    found = read_labels(io.BytesIO(cases.wav_many_chunks(30_000)))
    assert len(found) == 65 and all(s.status == "declared" for s in found[:64])
    assert reasons(found[-1:]) == [("limit", "items")]


def test_inflated_bytes_are_charged():
    found = read_labels(io.BytesIO(cases.png_zip_bomb(40)))
    assert reasons(found)[-1] == ("limit", "bytes")
    assert len(found) <= 33  # 32 MB of inflated text, then the stop


def test_time_budget_stops_the_walk():
    ticks = iter(range(1000))
    budget = Budget(seconds=5, clock=lambda: next(ticks) * 1.0)  # each look at the clock: one second
    found = read_labels(io.BytesIO(cases.png_conflicting_chunks(20)), budget=budget)
    assert reasons(found)[-1] == ("limit", "time")


def test_limit_is_a_malformed_signal_naming_what_ran_out():
    s = Limit("gb45438_xmp", "elements", "too many").signal()
    assert (s.status, s.reasons, s.detail) == ("malformed", ["malformed", "limit"], {"error": "too many", "limit": "elements"})
    found = read_labels(io.BytesIO(mf.jpeg(xmp=mf.xmp_packet(aigc=mf.aigc_json()))), budget=Budget(max_elements=3))
    assert reasons(found) == [("limit", "elements")]


@pytest.mark.parametrize("data", [cases.jpeg_soi_only(), cases.jpeg_headless_exif(), cases.mp3_empty_txxx(3), cases.mp3_empty_txxx(4)],
                         ids=["jpeg_soi", "exif_header_only", "txxx_v23", "txxx_v24"])
def test_truncated_blocks_are_malformed_without_a_traceback(data, caplog):
    [s] = read_labels(io.BytesIO(data))
    assert (s.status, s.reasons[-1]) == ("malformed", "truncated")
    assert "could not be read" not in s.detail["error"]
    assert not [r for r in caplog.records if r.exc_info]


def test_walker_bug_is_reported_without_its_text(monkeypatch, caplog):
    from labelcheck.labels import read

    def broken(fp, found, head=b""):
        raise IndexError("secret detail")

    monkeypatch.setitem(read.FORMATS, "jpeg", (broken, "image/jpeg", "gb45438_xmp"))
    [s] = read_labels(io.BytesIO(mf.jpeg()))
    assert s.reasons == ["malformed", "unreadable"] and "secret" not in json.dumps(s.to_dict())


# --- the merged result ---------------------------------------------------------


def gb(label: str, source: str = "gb45438_xmp") -> Signal:
    return Signal(source, "declared", {"1": "confirmed", "2": "possible"}[label], ["gb45438_label"],
                  {"aigc": dict(mf.LABEL, Label=label)})


def test_signals_are_capped_and_the_rest_counted():
    signals = [gb(str(1 + i % 2)) for i in range(3_000)] + [Signal("gb45438_xmp", "malformed", None, ["malformed", "limit"], {"limit": "items"})]
    r = merge(None, signals)
    assert len(r["signals"]) == MAX_SIGNALS and r["signals_omitted"] == 3_001 - MAX_SIGNALS
    assert r["signals"][-1]["status"] == "malformed"  # the one that decides "invalid" is shown, in its place
    assert r["status"] == "invalid" and "signals_conflict" in r["reasons"]
    assert len(json.dumps(r)) < 8 << 10


def test_conflicts_are_grouped_by_source_not_listed_per_pair():
    r = merge({"status": "verified", "category": "confirmed", "reasons": [], "label": {"Label": "1"}},
              [gb(str(1 + i % 2)) for i in range(3_000)])
    assert r["conflicts"] == [
        'claim says Label "1" (confirmed) but gb45438_xmp (x1500) say Label "2" (possible)',
        'gb45438_xmp (x1500) say Label "1" (confirmed) but gb45438_xmp (x1500) say Label "2" (possible)',
    ]


def test_conflict_lines_are_capped():
    sources = [f"gb45438_{n}" for n in ("xmp", "exif", "mp4", "id3", "wav", "meta")]
    r = merge(None, [gb(str(1 + i % 2), src) for i, src in enumerate(sources)] + [gb("2", "gb45438_xmp")])
    assert len(r["conflicts"]) == MAX_CONFLICTS and r["conflicts"][-1].startswith("and ")


def test_pipeline_result_is_a_few_kb_for_a_hostile_file():
    data = cases.png_conflicting_chunks(3_000)
    r = merge(None, read_labels(io.BytesIO(data)))
    assert len(json.dumps(r, ensure_ascii=False)) < 8 << 10 and r["signals_omitted"] > 0
