"""Audit-report generation: entries per second and peak memory.

    scripts/bench audit_report [--entries N] [--workdir DIR]

Builds a real ledger of N realistic verification and registry entries
(default 100,000), exports it, then measures on the same bundle:

Rates are entries per CPU second (this process and its worker processes;
the machine is shared, so wall time mostly measures the neighbours), best
of two runs; wall-clock rates are printed too.

* ``verify``: ``ledger.bundle.verify_bundle`` alone, the ceiling: a report
  verifies, so it can never be faster than that;
* ``verify + count``: ``audit.report.audit_data``, the one read that verifies
  the bundle and hands each entry to the counters (``on_entry``);
* ``report``: ``audit.report.build_report``, that read and the HTML; its
  ratio to ``verify`` is what counts (aim at least 0.4);
* peak memory (``tracemalloc``, Python allocations of this process) of
  verifying and counting in one process on bundles of N/10 and N entries
  (flat means it keeps counters, not entries), and of the whole
  ``build_report`` at N (which adds ``verify_bundle``'s blocks in flight).

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from labelcheck.ledger import Ledger, note, verify_bundle  # noqa: E402
from labelcheck.audit.report import audit_data, build_report  # noqa: E402
from labelcheck.audit.report.gather import AuditData  # noqa: E402

ORIGIN = "bench.example/log"
STATUSES = ["verified"] * 6 + ["invalid", "invalid", "unverified", "declared", "none"]
REASONS = {"verified": ["signature_ok", "content_match"], "invalid": ["signature_ok", "content_mismatch"],
           "unverified": ["signature_ok", "fetch_failed"], "declared": [], "none": []}


def records(n: int, start: int, rng: random.Random, keys: list[str]):
    for i in range(start, start + n):
        if i % 5000 == 0:
            key = keys[(i // 5000) % len(keys)]
            yield {"kind": "registry", "action": "add", "time": _time(i, n), "registry_version": "0" * 64,
                   "producer": {"key_id": key, "name": f"Producer {key[:8]}", "filing": "F-1",
                                "roles": ["producer"], "revoked_at": None, "vkey": key + "+AQ"}}
            continue
        status = rng.choice(STATUSES)
        yield {"kind": "verification", "time": _time(i, n), "status": status,
               "category": rng.choice(["confirmed", "possible", "suspected", None]),
               "reasons": REASONS[status], "key_id": rng.choice(keys),
               "claim_digest": f"{rng.getrandbits(256):064x}", "claim_id": f"urn:uuid:{rng.getrandbits(128):032x}",
               "content_sha256": {"claimed": f"{rng.getrandbits(256):064x}", "observed": None},
               "binding": "client_sha256", "page_origin": "https://news.example", "media_origin": None,
               "server": "labelcheck/0.1.0", "registry_version": "0" * 64}


def _time(i: int, n: int) -> str:
    day = 1 + (i * 30) // max(n, 1) % 30
    return f"2025-06-{day:02d}T{i % 24:02d}:{i % 60:02d}:00Z"


def export(led: Ledger, path: Path) -> Path:
    with open(path, "wb") as fp:
        led.export(fp)
    return path


def build(workdir: Path, n: int) -> tuple[Path, Path, str]:
    """The ledger of ``n`` entries and its bundles at n/10 and n."""
    rng = random.Random(1)
    keys = [f"producer-{k}+{rng.getrandbits(32):08x}" for k in range(200)]
    small_n = max(1, n // 10)
    with Ledger.open_dir(workdir / "data", origin=ORIGIN) as led:
        done = 0
        for target, name in ((small_n, "small.ndjson"), (n, "big.ndjson")):
            while done < target:
                batch = min(1000, target - done)
                led.append(list(records(batch, done, rng, keys)))
                done += batch
            path = export(led, workdir / name)
            if name == "small.ndjson":
                small = path
        return small, path, led.verifier_key


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (verification forks workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn, repeat: int = 2) -> tuple[float, float]:
    """The best (CPU seconds, wall seconds) of ``repeat`` runs: the machine is shared."""
    best_cpu = best_wall = float("inf")
    for _ in range(repeat):
        c, t = cpu_seconds(), time.perf_counter()
        fn()
        best_cpu = min(best_cpu, cpu_seconds() - c)
        best_wall = min(best_wall, time.perf_counter() - t)
    return best_cpu, best_wall


def peak_mib(fn) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--workdir", type=Path, help="keep the ledger and bundles here (default: a temporary directory)")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="labelcheck-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        t_build = time.perf_counter()
        small, big, vkey = build(workdir, args.entries)
        t_build = time.perf_counter() - t_build
        verifier = note.Verifier.from_vkey(vkey)

        def verify_only(path):
            with open(path, "rb") as fp:
                assert verify_bundle(fp, vkey).ok

        def count_one_process(path):
            data = AuditData()
            with open(path, "rb") as fp:
                assert verify_bundle(fp, vkey, workers=1, on_entry=data.count).ok

        html = []
        big.read_bytes()  # warm the page cache, so no run pays for the disk
        (t_verify, w_verify), (t_count, w_count), (t_report, w_report) = (
            timed(lambda: verify_only(big)), timed(lambda: audit_data(big, verifier)),
            timed(lambda: html.append(build_report(big, verifier))))
        peak_small = peak_mib(lambda: count_one_process(small))
        peak_big = peak_mib(lambda: count_one_process(big))
        peak_report = peak_mib(lambda: build_report(big, verifier))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    n = args.entries
    result = {
        "bench": "audit_report",
        "entries": n,
        "verify_entries_per_cpu_s": round(n / t_verify),
        "verify_count_entries_per_cpu_s": round(n / t_count),
        "report_entries_per_cpu_s": round(n / t_report),
        "ratio_report_to_verify": round(t_verify / t_report, 3),
        "verify_entries_per_s": round(n / w_verify),
        "report_entries_per_s": round(n / w_report),
        "count_peak_mib": round(peak_big, 2),
        "count_peak_mib_at_tenth": round(peak_small, 2),
        "count_peak_ratio_n_to_tenth": round(peak_big / peak_small, 2) if peak_small else None,
        "peak_mib": round(peak_report, 2),
        "html_bytes": len(html[0]),
        "build_seconds": round(t_build, 1),
    }
    rows = [("bundle verification (ceiling)", f"{result['verify_entries_per_cpu_s']:,}/cpu-s", "1.000"),
            ("verify + count (one read)", f"{result['verify_count_entries_per_cpu_s']:,}/cpu-s",
             f"{t_verify / t_count:.3f}"),
            ("report (verify + count + HTML)", f"{result['report_entries_per_cpu_s']:,}/cpu-s",
             f"{result['ratio_report_to_verify']:.3f}"),
            ("report, wall clock", f"{result['report_entries_per_s']:,}/s",
             f"{w_verify / w_report:.3f}"),
            (f"verify + count, one process, peak at {max(1, n // 10):,}", f"{peak_small:.2f} MiB", ""),
            (f"verify + count, one process, peak at {n:,}", f"{peak_big:.2f} MiB", f"{result['count_peak_ratio_n_to_tenth']}"),
            (f"build_report peak memory at {n:,}", f"{peak_report:.2f} MiB", "")]
    print(f"{'measure':36} {'value':>18} {'ratio':>8}")
    for name, value, ratio in rows:
        print(f"{name:36} {value:>18} {ratio:>8}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
