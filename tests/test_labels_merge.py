"""merge(): one docs/protocol.md §3 result from a claim verdict and the label signals."""

from __future__ import annotations

import pytest

from labelcheck.labels import Signal, merge, page_meta_signal

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def gb(label: str = "1", source: str = "gb45438_xmp") -> Signal:
    cat = {"1": "confirmed", "2": "possible", "3": "suspected"}[label]
    return Signal(source, "declared", cat, ["gb45438_label"], {"aigc": {"Label": label, "ContentProducer": "p", "ProduceID": "i"}})


def iptc(code: str) -> Signal:
    ai = code in ("trainedAlgorithmicMedia", "compositeSynthetic")
    return Signal("iptc_dst", "declared", "confirmed" if ai else None, ["iptc_digital_source_type"], {"digital_source_type": IPTC + code, "ai": ai})


def c2pa(status: str, code: str | None = "trainedAlgorithmicMedia", failures=()) -> Signal:
    reason = {"trusted": ["c2pa_trusted"], "valid": ["c2pa_untrusted"], "invalid": ["c2pa_invalid", *failures]}[status]
    dst = IPTC + code if code else None
    ai = None if code is None else code in ("trainedAlgorithmicMedia", "algorithmicMedia")
    category = "confirmed" if ai and status != "invalid" else None
    return Signal("c2pa", status, category, reason, {"c2pa": {"validation_state": status.title(), "failures": list(failures), "digital_source_type": dst, "ai": ai}})


def malformed() -> Signal:
    return Signal("gb45438_xmp", "malformed", None, ["malformed", "label_invalid_json"], {"error": "x"})


def claim(status="verified", label="1", reasons=None, **extra) -> dict:
    category = {"1": "confirmed", "2": "possible", "3": "suspected"}.get(label)
    default = {"verified": ["signature_ok", "content_match"], "invalid": ["signature_ok", "content_mismatch"], "unverified": ["signature_ok", "fetch_failed"]}[status]
    return {"status": status, "category": category, "reasons": reasons or default, "label": {"Label": label}, "producer": {"name": "gen"}, **extra}


def test_nothing_is_none():
    r = merge(None, [])
    assert r == {"status": "none", "category": None, "reasons": [], "signals": [], "conflicts": [], "signals_omitted": 0}


def test_verified_claim_alone_and_with_agreeing_label():
    r = merge(claim(), [gb("1")])
    assert (r["status"], r["category"], r["conflicts"]) == ("verified", "confirmed", [])
    assert r["reasons"] == ["signature_ok", "content_match", "gb45438_label"]
    assert r["signals"][0]["source"] == "gb45438_xmp"


def test_embedded_labels_alone_are_declared_with_their_category():
    for label, category in (("1", "confirmed"), ("2", "possible"), ("3", "suspected")):
        r = merge(None, [gb(label, "gb45438_mp4")])
        assert (r["status"], r["category"], r["conflicts"]) == ("declared", category, [])
    assert merge(None, [page_meta_signal('{"AIGC":{"Label":"2","ContentProducer":"p","ProduceID":"i"}}')])["category"] == "possible"


def test_iptc_alone():
    assert (merge(None, [iptc("trainedAlgorithmicMedia")])["status"], merge(None, [iptc("trainedAlgorithmicMedia")])["category"]) == ("declared", "confirmed")
    r = merge(None, [iptc("digitalCapture")])
    assert (r["status"], r["category"]) == ("declared", None)


def test_trusted_c2pa_verifies_on_its_own():
    r = merge(None, [c2pa("trusted")])
    assert (r["status"], r["category"], r["reasons"]) == ("verified", "confirmed", ["c2pa_trusted"])


def test_valid_untrusted_c2pa_is_declared():
    r = merge(None, [c2pa("valid")])
    assert (r["status"], r["category"], r["reasons"]) == ("declared", "confirmed", ["c2pa_untrusted"])


def test_invalid_c2pa_is_invalid_with_failure_codes():
    r = merge(None, [c2pa("invalid", failures=["assertion.dataHash.mismatch"]), gb("1")])
    assert r["status"] == "invalid"
    assert r["reasons"] == ["c2pa_invalid", "assertion.dataHash.mismatch", "gb45438_label"]
    assert r["category"] == "confirmed"  # what the remaining label says


def test_malformed_label_is_invalid():
    r = merge(None, [malformed()])
    assert (r["status"], r["reasons"]) == ("invalid", ["malformed", "label_invalid_json"])


def test_verified_claim_stays_verified_beside_failures_and_reports_them():
    r = merge(claim(), [c2pa("invalid", failures=["assertion.dataHash.mismatch"]), malformed()])
    assert r["status"] == "verified" and r["category"] == "confirmed"
    assert "c2pa_invalid" in r["reasons"] and "malformed" in r["reasons"]


def test_invalid_claim_stays_invalid_even_beside_trusted_c2pa():
    r = merge(claim("invalid", reasons=["signature_invalid"]), [c2pa("trusted")])
    assert r["status"] == "invalid" and r["reasons"][:2] == ["signature_invalid", "c2pa_trusted"]


def test_unverified_claim_upgraded_by_trusted_c2pa_but_not_by_declared():
    assert merge(claim("unverified"), [c2pa("trusted")])["status"] == "verified"
    assert merge(claim("unverified"), [gb("1")])["status"] == "unverified"


# --- conflicts ---------------------------------------------------------------


def test_conflict_claim_label_vs_embedded_label():
    r = merge(claim(label="1"), [gb("3")])
    assert r["status"] == "verified"  # reported, never hidden, and the claim still stands
    assert r["reasons"][-1] == "signals_conflict"
    [line] = r["conflicts"]
    assert "claim" in line and "gb45438_xmp" in line and '"1"' in line and '"3"' in line


def test_conflict_between_two_embedded_labels():
    r = merge(None, [gb("1", "gb45438_xmp"), gb("2", "gb45438_exif")])
    assert r["status"] == "declared" and "signals_conflict" in r["reasons"]
    assert "gb45438_xmp" in r["conflicts"][0] and "gb45438_exif" in r["conflicts"][0]


def test_conflict_page_meta_vs_file_label():
    meta = page_meta_signal('{"Label":"2","ContentProducer":"p","ProduceID":"i"}')
    r = merge(None, [gb("1"), meta])
    assert "gb45438_meta" in r["conflicts"][0]


def test_conflict_c2pa_says_ai_claim_source_type_says_not():
    r = merge(claim(digital_source_type=IPTC + "digitalCapture"), [c2pa("valid")])
    assert any("claim digital_source_type says not AI-generated but c2pa says AI-generated" == line for line in r["conflicts"])
    assert "signals_conflict" in r["reasons"]


def test_conflict_source_type_says_not_ai_but_label_says_ai():
    r = merge(None, [gb("1"), iptc("digitalCapture")])
    assert r["conflicts"] == ["gb45438_xmp says AI-generated but iptc_dst says not AI-generated"]
    r = merge(claim(), [c2pa("trusted", "digitalCapture")])
    assert r["conflicts"] == ["claim says AI-generated but c2pa says not AI-generated"]


def test_conflict_claim_for_other_bytes_beside_valid_manifest():
    r = merge(claim("invalid"), [c2pa("valid")])
    assert r["status"] == "invalid"
    assert any("content_mismatch" in line and "c2pa" in line for line in r["conflicts"])
    assert "signals_conflict" in r["reasons"]


def test_no_conflict_when_sources_agree_or_say_nothing():
    assert merge(claim(), [c2pa("trusted"), iptc("compositeSynthetic"), gb("1")])["conflicts"] == []
    assert merge(None, [c2pa("valid", None), gb("2")])["conflicts"] == []
    # An invalid manifest's source type is not evidence either way.
    assert merge(None, [c2pa("invalid", "digitalCapture"), gb("1")])["conflicts"] == []


def test_signal_dicts_are_accepted():
    s = gb("2")
    assert merge(None, [s.to_dict()]) == merge(None, [s])


@pytest.mark.parametrize("status", [None, "verified", "invalid", "unverified", "none", ""])
@pytest.mark.parametrize("category", [None, "", "ai-generated"])
@pytest.mark.parametrize("reasons", [None, [], ["signature_ok", "content_mismatch"]])
def test_a_claim_without_signals_merges_as_the_general_rule_says(status, category, reasons):
    """merge() answers a claim alone without the signal rules; the answer is
    the one the full rules give (statuses, categories and reasons as they came)."""
    from labelcheck.labels.merge import _merge

    claim = {k: v for k, v in {"status": status, "category": category, "reasons": reasons}.items() if v is not None}
    for given in ([claim] + ([None] if not claim else [])):
        got = merge(given, [])
        assert got == _merge(given, []) and list(got) == list(_merge(given, []))
        assert got["reasons"] is not (given or {}).get("reasons")  # a copy: the result is the caller's to extend
