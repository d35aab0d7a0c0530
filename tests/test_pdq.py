"""PDQ hashes of images, ``content.pdq`` in claims, and the multi-index
search over them (docs/protocol.md §12)."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image, ImageDraw, ImageFilter

from labelcheck import claims
from labelcheck.claims import ClaimError
from labelcheck.claims import pdq
from labelcheck.claims.trust import TrustRegistry
from labelcheck.ledger import keyfile as keys
from labelcheck.ledger.pdq_search import PdqSearch

pytestmark = pytest.mark.skipif(not pdq.available(), reason="pdqhash and numpy are not installed")

SHA = "ab" * 32


def photo(seed: int, size=(320, 240)) -> Image.Image:
    """A photograph-like image: blurred random colour fields under a few discs."""
    rng = random.Random(seed)
    small = Image.new("RGB", (16, 12))
    small.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(16 * 12)])
    img = small.resize(size, Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(1.5))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y, r = rng.randrange(size[0]), rng.randrange(size[1]), rng.randrange(10, 60)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randrange(256) for _ in range(3)))
    return img


def encoded(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def test_hash_is_64_hex_digits_with_a_quality():
    got = pdq.image_pdq(encoded(photo(1)))
    assert got is not None
    value, quality = got
    assert pdq.is_pdq(value) and 0 <= quality <= 100 and quality >= 50


def test_reencoded_and_resized_image_stays_near_and_other_images_are_far():
    original = photo(2)
    a = pdq.image_pdq(encoded(original))[0]
    half = original.resize((160, 120), Image.Resampling.LANCZOS)
    b = pdq.image_pdq(encoded(half, "JPEG", quality=70))[0]
    assert pdq.distance(a, b) <= 31
    others = [pdq.image_pdq(encoded(photo(seed)))[0] for seed in range(10, 20)]
    assert min(pdq.distance(a, o) for o in others) > 31


def test_file_objects_and_transparent_images_hash():
    rgba = photo(3).convert("RGBA")
    assert pdq.image_pdq(io.BytesIO(encoded(rgba)))[0] == pdq.image_pdq(encoded(rgba))[0]


def test_what_is_not_an_image_has_no_hash():
    assert pdq.image_pdq(b"not an image at all") is None
    assert pdq.image_pdq(encoded(photo(4))[:60]) is None  # truncated


def test_distance_counts_differing_bits():
    assert pdq.distance("0" * 64, "0" * 64) == 0
    assert pdq.distance("0" * 64, "f" * 64) == 256
    assert pdq.distance("0" * 63 + "3", "0" * 64) == 2


# --- content.pdq in claims --------------------------------------------------


def test_payload_carries_pdq_and_quality():
    signer = keys.generate_key("pdq-ai")
    body = claims.build_payload(SHA, "image/png", "1", issuer=signer, pdq=("0f" * 32, 87))
    assert body["content"]["pdq"] == "0f" * 32 and body["content"]["pdq_quality"] == 87
    env = claims.sign_envelope(body, signer)
    assert claims.parse_envelope(env).body["content"]["pdq"] == "0f" * 32
    plain = claims.build_payload(SHA, "image/png", "1", issuer=signer)  # still valid without it
    assert "pdq" not in plain["content"]


@pytest.mark.parametrize("value", ["0F" * 32, "0f" * 31, "0f" * 33, "xy" * 32, 12, None, ["0f" * 32], ""])
def test_malformed_pdq_is_a_claim_error_naming_the_field(value):
    signer = keys.generate_key("pdq-ai")
    with pytest.raises(ClaimError) as info:
        claims.build_payload(SHA, "image/png", "1", issuer=signer, pdq=(value, 80))
    assert info.value.field == "content.pdq" and info.value.code == "malformed"
    assert "64 lowercase hex digits" in info.value.message


@pytest.mark.parametrize("quality", [-1, 101, 50.5, "80", True, None])
def test_malformed_pdq_quality_is_a_claim_error(quality):
    signer = keys.generate_key("pdq-ai")
    with pytest.raises(ClaimError) as info:
        claims.build_payload(SHA, "image/png", "1", issuer=signer, pdq=("0f" * 32, quality))
    assert info.value.field == "content.pdq_quality"


def test_quality_without_a_hash_is_refused():
    signer = keys.generate_key("pdq-ai")
    body = claims.build_payload(SHA, "image/png", "1", issuer=signer)
    body["content"]["pdq_quality"] = 90
    with pytest.raises(ClaimError, match="without content.pdq"):
        claims.parse_envelope(claims.sign_envelope(body, signer))  # signing does not check the payload


def test_verifier_reports_a_malformed_pdq_in_a_signed_claim():
    signer = keys.generate_key("pdq-ai")
    body = claims.build_payload(SHA, "image/png", "1", issuer=signer)
    body["content"]["pdq"] = "not a hash"
    verdict = claims.verify_claim(claims.sign_envelope(body, signer), TrustRegistry())
    assert verdict.status == "invalid" and "malformed" in verdict.reasons
    assert any("content.pdq" in m for m in verdict.messages)


# --- the multi-index search -------------------------------------------------


def _flip(digest: bytes, bits) -> bytes:
    out = bytearray(digest)
    for b in bits:
        out[b // 8] ^= 1 << (b % 8)
    return bytes(out)


@pytest.mark.parametrize("threshold", [0, 15, 31])
def test_search_finds_exactly_what_brute_force_finds(threshold):
    rng = random.Random(threshold)
    hashes = [rng.randbytes(32) for _ in range(3000)]
    search = PdqSearch()
    search.add([(i + 1, h) for i, h in enumerate(hashes[:2000])])  # merged into the buckets
    search.add([(i + 1, h) for i, h in enumerate(hashes[2000:], 2000)])  # still in the side list
    queries = [_flip(hashes[rng.randrange(3000)], rng.sample(range(256), rng.randrange(threshold + 8)))
               for _ in range(60)] + [rng.randbytes(32) for _ in range(20)]
    for q in queries:
        want = sorted((bin(int.from_bytes(q, "big") ^ int.from_bytes(h, "big")).count("1"), i + 1)
                      for i, h in enumerate(hashes))
        want = [w for w in want if w[0] <= threshold][:8]
        assert search.search(q, threshold) == want


def test_search_refuses_thresholds_it_cannot_guarantee():
    search = PdqSearch()
    with pytest.raises(ValueError):
        search.search(bytes(32), 48)
    with pytest.raises(ValueError):
        search.add([(1, b"short")])
