"""Export benchmark: ``scripts/bench export [--size N] [--cache DIR]``.

Export and offline verification of an ``--size``-entry ledger (default
1,000,000), each in a child process of its own whose peak resident memory
(VmHWM, from ``os.wait4``'s ru_maxrss, which counts the verifier's worker
processes too) is the memory figure, for:

* the unfiltered (complete) bundle;
* a 1% filtered subset: a time range (``--since``/``--until``) covering 1% of
  the seconds the entries' times cycle through. A time filter parses every
  entry, the costliest kind (key id, status and kind first rule entries out
  by a byte search).

Entries per second are the log's entries scanned for export and the bundle's
entries checked for verification. The ceiling, measured in the same run, is
SHA-256 of the same entry lines with hashlib alone; a child that only imports
gives the memory baseline. The ledger is the one ``scripts/bench ledger``
builds (one transaction, cached under ``.bench/``). Prints a table, then one
JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from labelcheck.ledger import bundle, verify_bundle  # noqa: E402
from labelcheck.ledger.filters import Filter  # noqa: E402
from labelcheck.ledger.note import Signer, Verifier  # noqa: E402
from labelcheck.ledger.store import Store  # noqa: E402

PERIOD = 3600  # the benchmark ledger's entry times cycle through one hour, a second apiece


def _ledger_bench():
    """scripts/benchmarks/ledger.py, whose cached builder this reuses (its name would shadow the package)."""
    spec = importlib.util.spec_from_file_location("bench_ledger", Path(__file__).with_name("ledger.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_percent(size: int) -> dict:
    """A time range holding 1% of the entries: the first 1% of the seconds they cycle through."""
    seconds = max(1, min(size, PERIOD) // 100)
    return {"since": "2026-11-25T12:00:00Z", "until": f"2026-11-25T12:{seconds // 60:02d}:{seconds % 60:02d}Z"}


# Children: each does one job and prints {"seconds", "entries"} -----------------


def child_export(db: str, out: str, filt: dict) -> dict:
    store = Store(db, create=False)
    try:
        latest = store.latest_checkpoint()
        verifier = Verifier.from_vkey(store.meta("vkey"))
        t = time.perf_counter()
        with open(out, "wb") as fp:
            bundle.write_bundle(fp, store, latest[1], verifier, filter=Filter.parse(filt))
        return {"seconds": time.perf_counter() - t, "entries": latest[0]}
    finally:
        store.close()


def child_verify(path: str, vkey: str) -> dict:
    t = time.perf_counter()
    with open(path, "rb") as fp:
        report = verify_bundle(fp, vkey)
    if not report.ok:
        raise SystemExit(report.summary())
    return {"seconds": time.perf_counter() - t, "entries": report.size, "summary": report.summary()}


def run_child(*args: str) -> dict:
    """Run this script as a child doing one job; its result and its peak RSS in MiB."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child {args[0]} failed with status {proc.returncode}")
    result = json.loads(out)
    result["peak_mib"] = usage.ru_maxrss / 1024  # KiB on Linux
    return result


# The parent -----------------------------------------------------------------


def hash_ceiling(path: Path) -> tuple[float, int]:
    """Entry lines per second that hashlib alone hashes (RFC 9162 leaf hashes)."""
    n, sha = 0, hashlib.sha256
    t = time.perf_counter()
    with open(path, "rb") as fp:
        fp.readline()
        for line in fp:
            sha(b"\x00" + line[:-1]).digest()
            n += 1
    return n / (time.perf_counter() - t), n


def bench_case(d: Path, work: Path, vkey: str, name: str, filt: dict) -> dict:
    out = work / f"{name}.ndjson"
    exported = run_child("export", str(d / "ledger.db"), str(out), json.dumps(filt))
    verified = run_child("verify", str(out), vkey)
    result = {
        "filter": filt, "entries": verified["entries"], "bundle_mb": out.stat().st_size / 1e6,
        "export_s": exported["seconds"], "export_per_s": exported["entries"] / exported["seconds"],
        "export_peak_mib": exported["peak_mib"],
        "verify_s": verified["seconds"], "verify_per_s": verified["entries"] / max(verified["seconds"], 1e-9),
        "verify_peak_mib": verified["peak_mib"], "summary": verified["summary"],
    }
    out.unlink()
    return result


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000, help="entries in the ledger (default 1,000,000)")
    ap.add_argument("--cache", type=Path, default=REPO / ".bench", help="where the ledger is kept (default .bench/)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        job, *rest = args.child
        if job == "idle":
            result = {"seconds": 0.0, "entries": 0}
        elif job == "export":
            result = child_export(rest[0], rest[1], json.loads(rest[2]))
        else:
            result = child_verify(rest[0], rest[1])
        print(json.dumps(result))
        return

    args.cache.mkdir(parents=True, exist_ok=True)
    d = _ledger_bench().big_ledger(args.size, args.cache)
    vkey = Signer.from_skey((d / "ledger.key").read_text()).vkey
    baseline = run_child("idle")["peak_mib"]
    with tempfile.TemporaryDirectory(prefix="export-bench-", dir=args.cache) as tmp:
        work = Path(tmp)
        results = {"unfiltered": bench_case(d, work, vkey, "unfiltered", {}),
                   "filtered": bench_case(d, work, vkey, "filtered", one_percent(args.size))}
    ceiling, n = hash_ceiling(d / "bundle.ndjson")
    assert n == args.size, f"the cached bundle holds {n} entries, not {args.size}"

    rows = [("figure", "entries/s", "ratio to ceiling", "seconds", "peak RSS (MiB)")]
    for name, label in (("unfiltered", "complete"), ("filtered", "1% filtered")):
        r = results[name]
        r["export_ratio"], r["verify_ratio"] = r["export_per_s"] / ceiling, r["verify_per_s"] / ceiling
        rows.append((f"export, {label} ({r['entries']:,} of {args.size:,})", f"{r['export_per_s']:,.0f}",
                     f"{r['export_ratio']:.3f}", f"{r['export_s']:.2f}", f"{r['export_peak_mib']:.1f}"))
        rows.append((f"verify offline, {label}", f"{r['verify_per_s']:,.0f}", f"{r['verify_ratio']:.3f}",
                     f"{r['verify_s']:.2f}", f"{r['verify_peak_mib']:.1f}"))
    rows.append(("ceiling: hashlib SHA-256 of the lines", f"{ceiling:,.0f}", "1", "", ""))
    rows.append(("child that only imports (baseline)", "", "", "", f"{baseline:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(json.dumps({"benchmark": "export", "size": args.size, "ceiling_per_s": ceiling,
                      "baseline_peak_mib": baseline, **results}, sort_keys=True))


if __name__ == "__main__":
    main()
