"""Labels that survive the trip: PDQ matching after a platform's re-encoding,
false matches, lookup latency at a million fingerprints, publishing rate.

    scripts/bench durable [--synthetic N] [--fingerprints N] [--queries N] [--claims N] [--batch N]

Images: the sample photographs scikit-image ships in its package (only the
files bundled with it, nothing is downloaded), each whole and, from 512 px
a side, as four quadrants too, plus generated images (blurred colour fields under discs, lines
and text-like strokes) when scikit-image is absent or for volume. Half the
sources are registered, half are not; crops of one source stay on one side.

* Survival: each registered image is re-encoded as a platform does (resized
  to 50%, JPEG quality 70, metadata stripped) and looked up; the share found
  (aim >= 0.95) at each threshold.
* False matches: the distances between every pair of unregistered images
  from distinct sources (aim: none within the threshold), and every
  unregistered image (re-encoded too) looked up among the registered.
* Lookup: p50/p99 of the multi-index search over N registered fingerprints
  (aim: p99 < 5 ms at 1,000,000), full path included (the SQLite index in a
  ledger database, rows read back), against a numpy brute-force scan of the
  same hashes as the ceiling (ratio = brute-force time / index time).
* Publishing: claims/s through POST /v1/claims in batches (Flask's test
  client, a real ledger with fsync), against verify_claim alone on the same
  claims (the signature check every claim needs) as the ceiling; then
  registry matches: POST /v1/verify items giving only the SHA-256 of
  published media, each matched in the registry, its claim read back from
  the ledger and verified again, items per CPU second against the same ceiling.

Prints tables, then one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from labelcheck import claims  # noqa: E402
from labelcheck.claims import pdq  # noqa: E402
from labelcheck.ledger import keyfile  # noqa: E402
from labelcheck.ledger.claim_index import IndexedClaim  # noqa: E402
from labelcheck.ledger.log import Ledger  # noqa: E402
from labelcheck.pipeline.claim_lookup import MIN_QUALITY, RegistryLookup  # noqa: E402
from labelcheck.util import b64  # noqa: E402

THRESHOLDS = (15, 19, 23, 27, 31)
CHOSEN = 31


# --- images --------------------------------------------------------------------------


def sample_photos() -> list[tuple[str, Image.Image]]:
    """(source, image) for the photographs bundled with scikit-image."""
    try:
        import skimage
    except ImportError:
        return []
    folder = Path(skimage.__file__).parent / "data"
    out = []
    for path in sorted(folder.glob("*")):
        if path.suffix.lower() not in (".png", ".jpg") or "chessboard" in path.name:
            continue
        with Image.open(path) as img:
            img = img.convert("RGB")
        if min(img.size) < 128:
            continue
        source = "motorcycle" if path.name.startswith("motorcycle") else path.stem
        out.append((source, img))
        w, h = img.size
        if min(w, h) >= 512:  # quadrants big enough to be pictures of their own
            for i, (x, y) in enumerate(((0, 0), (w // 2, 0), (0, h // 2), (w // 2, h // 2))):
                out.append((source, img.crop((x, y, x + w // 2, y + h // 2))))
    return out


def synthetic(seed: int) -> Image.Image:
    rng = random.Random(seed)
    w, h = rng.choice([(640, 480), (480, 640), (512, 512), (800, 450)])
    grid = (rng.randrange(4, 24), rng.randrange(3, 18))
    small = Image.new("RGB", grid)
    small.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(grid[0] * grid[1])])
    img = small.resize((w, h), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 4)))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randrange(3, 30)):
        x, y, r = rng.randrange(w), rng.randrange(h), rng.randrange(5, 120)
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        else:
            draw.line((x, y, rng.randrange(w), rng.randrange(h)), fill=colour, width=rng.randrange(1, 12))
    return img


def platform(img: Image.Image) -> bytes:
    """Resized to 50%, JPEG quality 70, no metadata (nothing but pixels is saved)."""
    half = img.resize((max(1, img.width // 2), max(1, img.height // 2)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    half.save(out, "JPEG", quality=70)
    return out.getvalue()


def png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


# --- survival and false matches -------------------------------------------------------


def matching(args) -> dict:
    pool = [(f"photo:{s}", img) for s, img in sample_photos()]
    pool += [(f"synthetic:{i}", synthetic(i)) for i in range(args.synthetic)]
    sources = sorted({s for s, _ in pool})
    random.Random(1).shuffle(sources)
    registered_sources = set(sources[: len(sources) // 2])
    reg, unreg = [], []
    for source, img in pool:
        original = pdq.image_pdq(png(img))
        shared = pdq.image_pdq(platform(img))
        (reg if source in registered_sources else unreg).append((source, original, shared))
    reg_hashes = [h for _, h, _ in reg]
    survived = {t: 0 for t in THRESHOLDS}
    photo_survived, photo_total = 0, 0
    distances = []
    for i, (_, original, shared) in enumerate(reg):
        d = pdq.distance(original[0], shared[0])
        distances.append(d)
        nearest = min(range(len(reg)), key=lambda j: pdq.distance(reg_hashes[j][0], shared[0]))
        for t in THRESHOLDS:
            ok = shared[1] >= MIN_QUALITY and nearest == i and d <= t
            survived[t] += ok
        if reg[i][0].startswith("photo:"):
            photo_total += 1
            photo_survived += shared[1] >= MIN_QUALITY and nearest == i and d <= CHOSEN
    pair_d = [pdq.distance(a[1][0], b[1][0]) for k, a in enumerate(unreg) for b in unreg[k + 1:]
              if a[0] != b[0]]
    cross = [min(pdq.distance(u[q][0], r[0]) for r in reg_hashes) for u in unreg for q in (1, 2)]
    photos = sum(1 for s, _ in pool if s.startswith("photo:"))
    return {
        "images": len(pool), "photos": photos, "synthetic": len(pool) - photos,
        "registered": len(reg), "unregistered": len(unreg),
        "survival": {t: survived[t] / len(reg) for t in THRESHOLDS},
        "photo_survival": photo_survived / max(1, photo_total), "photos_registered": photo_total,
        "distance_after_platform": {"p50": _pct(distances, 50), "p95": _pct(distances, 95),
                                    "max": max(distances)},
        "low_quality_after_platform": sum(1 for _, _, s in reg if s[1] < MIN_QUALITY),
        "distinct_pairs": len(pair_d), "distinct_pair_min_distance": min(pair_d),
        "false_pairs": {t: sum(1 for d in pair_d if d <= t) for t in THRESHOLDS},
        "unregistered_lookups": len(cross),
        "false_lookups": {t: sum(1 for d in cross if d <= t) for t in THRESHOLDS},
        "lookup_min_distance": min(cross),
    }


def _pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


# --- lookup latency ---------------------------------------------------------------------


def latency(args, data_dir: Path) -> dict:
    """Multi-index lookups over ``--fingerprints`` hashes in a real ledger database."""
    rng = np.random.default_rng(7)
    n = args.fingerprints
    ledger = Ledger.open_dir(data_dir, origin="bench.localhost/durable")
    try:
        lookup = RegistryLookup(ledger)
        hashes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
        t0 = time.perf_counter()
        for start in range(0, n, 50_000):
            rows = [IndexedClaim(f"urn:bench:{i}", i, "0" * 64, "0" * 64, "bench+00000000",
                                 hashlib.sha256(b"%d" % i).hexdigest(), hashes[i].tobytes().hex())
                    for i in range(start, min(n, start + 50_000))]
            lookup.index.add(rows, 0)
        fill = time.perf_counter() - t0
        t0 = time.perf_counter()
        lookup.similar("0" * 64)  # loads the table into the in-memory index
        load = time.perf_counter() - t0
        queries = []
        for k in range(args.queries):  # half near a registered hash (11-31 bits flipped), half random
            q = hashes[rng.integers(n)].copy() if k % 2 == 0 else rng.integers(0, 256, 32, dtype=np.uint8)
            if k % 2 == 0:
                for b in rng.choice(256, int(rng.integers(11, 32)), replace=False):
                    q[b // 8] ^= 1 << (b % 8)
            queries.append(q.tobytes().hex())
        times, found = [], 0
        for q in queries:
            t = time.perf_counter()
            found += bool(lookup.similar(q, CHOSEN))
            times.append(time.perf_counter() - t)
        brute = _brute_force(hashes, queries[: min(50, len(queries))])
        sha_times = []
        for i in rng.integers(n, size=min(1000, args.queries)):
            t = time.perf_counter()
            lookup.index.by_sha256(hashlib.sha256(b"%d" % int(i)).hexdigest())
            sha_times.append(time.perf_counter() - t)
    finally:
        ledger.close()
    ms = sorted(t * 1000 for t in times)
    return {"fingerprints": n, "fill_s": fill, "load_s": load, "queries": len(queries),
            "near_found": found, "near_asked": (len(queries) + 1) // 2,
            "p50_ms": _pct(ms, 50), "p99_ms": _pct(ms, 99), "max_ms": ms[-1],
            "brute_force_ms": brute, "ratio_brute_over_p50": brute / _pct(ms, 50),
            "sha256_p99_ms": _pct([t * 1000 for t in sha_times], 99)}


def _brute_force(hashes, queries) -> float:
    words = hashes.view(np.uint64).reshape(-1, 4)
    times = []
    for q in queries:
        qw = np.frombuffer(bytes.fromhex(q), dtype=np.uint64)
        t = time.perf_counter()
        d = np.bitwise_count(words ^ qw).sum(axis=1)
        _ = np.flatnonzero(d <= CHOSEN)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


# --- publishing --------------------------------------------------------------------------


def publishing(args, data_dir: Path) -> dict:
    from labelcheck.web.app import create_app

    app = create_app({"data_dir": data_dir, "verify_rate": 0})
    svc = app.extensions["labelcheck"].services
    client = app.test_client()
    signer = keyfile.generate_key("bench-ai")
    token = {"Authorization": "Bearer " + app.extensions["labelcheck"].admin_token}
    assert client.post("/v1/producers", json={"name": "Bench AI", "vkey": signer.vkey}, headers=token).status_code == 201
    rng = random.Random(3)
    envs = []
    for i in range(args.claims):
        body = claims.build_payload(hashlib.sha256(b"media %d" % i).hexdigest(), "image/jpeg", "1", issuer=signer,
                                    pdq=(rng.randbytes(32).hex(), 90))
        envs.append(claims.sign_envelope(body, signer))
    registry = svc.registry
    t0 = time.process_time()
    for env in envs[: min(2000, len(envs))]:
        claims.verify_claim(env, registry)
    verify_rate = min(2000, len(envs)) / (time.process_time() - t0)
    t0, c0 = time.perf_counter(), time.process_time()
    for start in range(0, len(envs), args.batch):
        r = client.post("/v1/claims", json={"claims": envs[start:start + args.batch]})
        assert r.status_code == 201, r.data[:300]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    matches = _matching(client, envs, args.batch)
    svc.close()
    rate = len(envs) / wall
    return {"claims": len(envs), "batch": args.batch, "claims_per_s": rate, "claims_per_cpu_s": len(envs) / cpu,
            "verify_claim_per_s": verify_rate, "ratio_to_verify_claim": len(envs) / cpu / verify_rate,
            "match_items": matches[0], "match_per_cpu_s": matches[1],
            "match_ratio_to_verify_claim": matches[1] / verify_rate}


def _matching(client, envs, batch: int) -> tuple[int, float]:
    """Items of unlabelled copies of published media (their SHA-256 only),
    each matched exactly in the registry: read back from the ledger and its
    claim verified again (docs/protocol.md §12). (items, items per CPU second)."""
    shas = [json.loads(b64.decode(e["payload"]))["content"]["sha256"] for e in envs]
    picks = [shas[(k * 7919) % len(shas)] for k in range(min(2000, len(shas)))]  # spread over the commits
    t0 = time.process_time()
    for start in range(0, len(picks), batch):
        r = client.post("/v1/verify", json={"items": [{"content_sha256": s} for s in picks[start:start + batch]]})
        assert r.status_code == 200 and all("registry_exact" in x["reasons"] for x in r.json["results"]), r.data[:300]
    return len(picks), len(picks) / (time.process_time() - t0)


# --- report -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=300)
    parser.add_argument("--fingerprints", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--claims", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    if not pdq.available():
        sys.exit("scripts/bench durable needs the optional packages pdqhash and numpy")
    m = matching(args)
    print(f"images: {m['images']} ({m['photos']} from scikit-image's sample photos, {m['synthetic']} generated); "
          f"{m['registered']} registered, {m['unregistered']} not")
    print(f"{'threshold':>10}{'survive':>10}{'false pairs':>13}{'false lookups':>15}")
    for t in THRESHOLDS:
        print(f"{t:>10}{m['survival'][t]:>10.3f}{m['false_pairs'][t]:>13}{m['false_lookups'][t]:>15}")
    print(f"survival at {CHOSEN} of the {m['photos_registered']} registered sample photos alone: "
          f"{m['photo_survival']:.3f}; {m['low_quality_after_platform']} registered images fall under "
          f"quality {MIN_QUALITY} after the platform (not looked up)")
    print(f"distance after the platform: p50 {m['distance_after_platform']['p50']}, "
          f"p95 {m['distance_after_platform']['p95']}, max {m['distance_after_platform']['max']}; "
          f"closest distinct pair {m['distinct_pair_min_distance']} of {m['distinct_pairs']} pairs; "
          f"closest unregistered lookup {m['lookup_min_distance']} of {m['unregistered_lookups']}")
    with tempfile.TemporaryDirectory() as tmp:
        lat = latency(args, Path(tmp) / "lookup")
        pub = publishing(args, Path(tmp) / "publish")
    print(f"lookup over {lat['fingerprints']:,} fingerprints: p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms "
          f"(aim < 5), max {lat['max_ms']:.2f} ms; brute force {lat['brute_force_ms']:.1f} ms "
          f"(x{lat['ratio_brute_over_p50']:.0f}); near hashes found {lat['near_found']}/{lat['near_asked']}; "
          f"exact SHA-256 p99 {lat['sha256_p99_ms']:.3f} ms; table filled in {lat['fill_s']:.1f} s, "
          f"loaded in {lat['load_s']:.1f} s")
    print(f"publishing: {pub['claims_per_s']:,.0f} claims/s in batches of {pub['batch']} (aim >= 2,000), "
          f"{pub['claims_per_cpu_s']:,.0f} per CPU second; verify_claim alone {pub['verify_claim_per_s']:,.0f}/s, ratio {pub['ratio_to_verify_claim']:.2f}")
    print(f"registry matches: {pub['match_per_cpu_s']:,.0f} items per CPU second ({pub['match_items']:,} unlabelled "
          f"copies of published media, each read back and verified again), ratio to verify_claim alone "
          f"{pub['match_ratio_to_verify_claim']:.2f}")
    print(json.dumps({"benchmark": "durable", "threshold": CHOSEN, "matching": m, "lookup": lat, "publish": pub}))


if __name__ == "__main__":
    main()
