"""C2PA manifests: signed by the tests' own chain, tampered copies, and the shared fixtures."""

from __future__ import annotations

import io

import pytest

import media_factory as mf
from conftest import shared_file
from labelcheck.labels import embed_label, merge, read_labels

TRAINED = mf.IPTC + "trainedAlgorithmicMedia"


@pytest.fixture(scope="module")
def anchors(tmp_path_factory):
    path = tmp_path_factory.mktemp("c2pa") / "anchors.pem"
    path.write_bytes(mf.c2pa_chain().root_pem)
    return str(path)


@pytest.fixture(scope="module")
def signed():
    return mf.c2pa_sign(mf.jpeg(48, 32))


def c2pa_signals(data: bytes, anchors: str | None = None):
    return [s for s in read_labels(io.BytesIO(data), c2pa_anchors=anchors) if s.source == "c2pa"]


def test_trusted_with_our_anchor(signed, anchors):
    [s] = c2pa_signals(signed, anchors)
    assert (s.status, s.category, s.reasons) == ("trusted", "confirmed", ["c2pa_trusted"])
    c = s.detail["c2pa"]
    assert c["validation_state"] == "Trusted" and c["failures"] == []
    assert c["digital_source_type"] == TRAINED and c["signer"] == "labelcheck test signer"
    assert merge(None, [s])["status"] == "verified"


def test_valid_but_untrusted_without_anchors(signed):
    [s] = c2pa_signals(signed)
    assert (s.status, s.reasons) == ("valid", ["c2pa_untrusted"])
    assert s.detail["c2pa"]["failures"] == ["signingCredential.untrusted"]
    assert merge(None, [s])["status"] == "declared"


def test_anchor_of_another_chain_is_not_trusted(signed, tmp_path):
    other = tmp_path / "other.pem"
    other.write_bytes(shared_file("fixtures", "c2pa", "test_cert_root_bundle.pem").read_bytes())
    [s] = c2pa_signals(signed, str(other))
    assert s.status == "valid"


def test_pixels_changed_after_signing(signed, anchors):
    [s] = c2pa_signals(mf.tamper_pixels(signed), anchors)
    assert s.status == "invalid" and s.category is None
    assert s.reasons[0] == "c2pa_invalid" and "assertion.dataHash.mismatch" in s.reasons
    assert merge(None, [s])["status"] == "invalid"


def test_manifest_bytes_changed(signed, anchors):
    [s] = c2pa_signals(mf.tamper_manifest(signed), anchors)
    assert s.status == "invalid" and s.reasons[0] == "c2pa_invalid"
    assert "claimSignature.mismatch" in s.reasons


def test_label_embedded_after_signing_breaks_the_manifest(signed, anchors):
    """Why the documented order is: embed the label first, then sign (and
    why embedding into a signed file needs force=True)."""
    after = embed_label(signed, mf.LABEL, force=True)
    assert c2pa_signals(after, anchors)[0].status == "invalid"
    before = mf.c2pa_sign(embed_label(mf.jpeg(48, 32), mf.LABEL))
    found = read_labels(io.BytesIO(before), c2pa_anchors=anchors)
    assert sorted((s.source, s.status) for s in found) == [("c2pa", "trusted"), ("gb45438_xmp", "declared")]


def test_signed_png_and_no_source_type(anchors):
    data = mf.c2pa_sign(mf.png(), "image/png", digital_source_type=mf.IPTC + "digitalCapture")
    [s] = c2pa_signals(data, anchors)
    assert (s.status, s.category, s.detail["c2pa"]["ai"]) == ("trusted", None, False)


def test_missing_anchor_file_is_an_invalid_signal(signed, tmp_path):
    [s] = c2pa_signals(signed, str(tmp_path / "absent.pem"))
    assert s.status == "invalid" and "trust_anchors_unreadable" in s.reasons


def test_no_manifest_no_signal():
    assert c2pa_signals(mf.jpeg()) == []


# --- shared fixtures (../shared/fixtures/c2pa, see EXPECTED.md) ------------------


def shared(name: str) -> bytes:
    return shared_file("fixtures", "c2pa", name).read_bytes()


def test_shared_c_jpg_trusted_with_its_anchors():
    pem = str(shared_file("fixtures", "c2pa", "test_cert_root_bundle.pem"))
    [s] = c2pa_signals(shared("C.jpg"), pem)
    assert s.status == "trusted"
    assert s.detail["c2pa"]["digital_source_type"] == mf.IPTC + "algorithmicMedia"
    assert s.category == "confirmed"
    [untrusted] = c2pa_signals(shared("C.jpg"))
    assert untrusted.status == "valid" and untrusted.detail["c2pa"]["failures"] == ["signingCredential.untrusted"]


def test_shared_xca_jpg_invalid():
    pem = str(shared_file("fixtures", "c2pa", "test_cert_root_bundle.pem"))
    [s] = c2pa_signals(shared("XCA.jpg"), pem)
    assert s.status == "invalid"
    assert s.detail["c2pa"]["failures"] == ["assertion.dataHash.mismatch"]
    assert s.reasons == ["c2pa_invalid", "assertion.dataHash.mismatch"]


def test_shared_no_manifest_jpg():
    assert read_labels(io.BytesIO(shared("no_manifest.jpg"))) == []


def test_shared_xmp_only_jpg_gives_iptc_declared():
    found = read_labels(io.BytesIO(shared("xmp_dst_trainedAlgorithmicMedia.jpg")))
    assert [(s.source, s.status, s.category) for s in found] == [("iptc_dst", "declared", "confirmed")]
    assert found[0].detail["digital_source_type"] == TRAINED
    assert merge(None, found)["status"] == "declared"


def test_concurrent_reads_share_one_context(signed, anchors):
    import threading

    statuses = []

    def work():
        for _ in range(5):
            statuses.extend(s.status for s in c2pa_signals(signed, anchors))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == ["trusted"] * 20


@pytest.mark.parametrize(
    "media_type,make",
    [
        ("image/png", lambda: mf.png()),
        ("image/webp", lambda: mf.webp()),
        ("audio/wav", lambda: mf.wav()),
        ("audio/mpeg", lambda: mf.mp3()),
        ("video/mp4", lambda: mf.mp4().data),
    ],
)
def test_every_format_embed_then_sign(media_type, make, anchors):
    """The documented order works in every container: both signals are read back."""
    data = mf.c2pa_sign(embed_label(make(), mf.LABEL), media_type)
    found = read_labels(io.BytesIO(data), c2pa_anchors=anchors)
    assert sorted(s.status for s in found) == ["declared", "trusted"], [s.to_dict() for s in found]
    r = merge(None, found)
    assert (r["status"], r["category"], r["conflicts"]) == ("verified", "confirmed", [])
