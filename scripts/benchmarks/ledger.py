"""Ledger benchmark: ``scripts/bench ledger [--size N] [--batches B] [--proofs P]``.

Each figure is a ratio to a ceiling measured in the same run, since the
machine is shared and noisy:

* durable appends, batches of 100, against raw sqlite3 inserts of rows of the
  same size (the entries with a placeholder ``prev``) in batches of 100 with the
  same pragmas (WAL, synchronous=FULL), the two in alternating slices (with
  the standard error of the slices' ratios); by the clock, and by process CPU
  time (which a slow fsync does not hide);
* the cost of the signed checkpoint every commit stores: the same batches
  appended by a ledger whose commits store none, in the same alternating
  slices (aim: signing costs at most 10%), and the time to build every
  receipt's inclusion proof from the commit's own hashes;
* single appends from 8 threads with group commit, against one thread without;
* inclusion and consistency proofs at ``--size`` entries (p50/p99), against
  raw SQLite reads, by primary key, of the rows holding the same stored
  hashes (a row per commit of 100 entries, as appends write them);
* bundle verification at ``--size`` entries, entries/s, against SHA-256 of the
  same lines with hashlib alone.

The big ledger is built once (one transaction) and cached under ``.bench/``.
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from _stats import mean_and_error  # noqa: E402  (scripts/benchmarks/_stats.py)
from labelcheck.ledger import Ledger, canonical, merkle, verify_bundle  # noqa: E402
from labelcheck.ledger.store import Store, connect  # noqa: E402
from labelcheck.ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint  # noqa: E402
from labelcheck.ledger.note import Signer, Verifier  # noqa: E402
from labelcheck.ledger.commit import GroupCommit  # noqa: E402
from labelcheck.ledger.verify import TreeStream  # noqa: E402
from labelcheck.util import b64  # noqa: E402

ORIGIN = "bench.labelcheck.example/log"
CACHE_VERSION = 3  # 2: stored hashes, 3: and entries, in runs of one commit of 100 entries each, as appends write them
RUN = 100


def record(i: int) -> dict:
    """A verification record shaped like the server's (docs/protocol.md §4)."""
    h = hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
    return {
        "kind": "verification",
        "time": f"2026-11-25T12:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "claim_digest": "sha256:" + h,
        "content_sha256": h[::-1],
        "key_id": f"producer{i % 17}.example+{i % 65536:08x}",
        "status": ("verified", "tampered", "mismatch", "declared")[i % 4],
        "category": "ai-generated",
        "reasons": ["signature valid", "content bytes match"],
        "page_origin": f"https://news{i % 97}.example",
        "server_version": "0.1.0",
        "registry_version": i % 50,
    }


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


# Appends -------------------------------------------------------------------


def bench_batches(work: Path, batches: int, slices: int | None = None) -> dict:
    """Ledger and raw inserts in alternating slices of the same batches, so both
    see the same (shared, noisy) machine; the ratio is of the summed times,
    and its standard error is of the slices' own ratios (how far the figure
    can be trusted on this machine, at this moment).

    A slice is 50 batches (at least 10 slices): each side then meets about one
    WAL checkpoint a slice. With slices of 10 batches a checkpoint (a third
    of the commit time of both sides, averaged) lands in some slices and not
    others, and the slices' ratios scatter by +-0.1 around the same mean."""
    slices = slices or max(10, batches // 50)
    records = [[record(b * 100 + i) for i in range(100)] for b in range(batches)]
    rows = [[(b * 100 + i, canonical.dumps({**r, "index": b * 100 + i, "prev": "x" * 44}))
             for i, r in enumerate(batch)] for b, batch in enumerate(records)]
    db = connect(work / "raw.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE entries(idx INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    t = t_raw = cpu = cpu_raw = 0.0
    ratios = []  # raw time / ledger time, slice by slice
    with Ledger.open_dir(work / "batches", origin=ORIGIN) as led:
        step = max(1, batches // slices)
        for at in range(0, batches, step):
            part = range(at, min(batches, at + step))
            start, c = time.perf_counter(), time.process_time()
            for b in part:
                led.append(records[b])
            took, cpu = time.perf_counter() - start, cpu + time.process_time() - c
            start, c = time.perf_counter(), time.process_time()
            for b in part:
                db.execute("BEGIN IMMEDIATE")
                db.executemany("INSERT INTO entries VALUES (?, ?)", rows[b])
                db.execute("COMMIT")
            took_raw, cpu_raw = time.perf_counter() - start, cpu_raw + time.process_time() - c
            t, t_raw = t + took, t_raw + took_raw
            ratios.append(took_raw / took)
        assert led.size() == batches * 100
    db.close()
    n = batches * 100
    _, error = mean_and_error(ratios)
    # The wall-clock ratio moves with the disk's fsync latency (both sides
    # wait for one per batch); the CPU ratio is the work each side does.
    return {"ledger_per_s": n / t, "raw_per_s": n / t_raw, "ratio": (n / t) / (n / t_raw), "ratio_stderr": error,
            "ledger_cpu_us": cpu / n * 1e6, "raw_cpu_us": cpu_raw / n * 1e6, "cpu_ratio": cpu_raw / cpu if cpu else 0.0}


def bench_signing(work: Path, batches: int) -> dict:
    """Batches of 100 by a ledger that signs every commit and by one whose
    commits store no checkpoint, alternating batch by batch (which one goes
    first alternates too); then the receipts' inclusion proofs, timed apart."""
    records = [[record(b * 100 + i) for i in range(100)] for b in range(batches)]
    spare = [[dict(r) for r in batch] for batch in records]
    t_sign = t_bare = t_proofs = 0.0
    with Ledger.open_dir(work / "signed", origin=ORIGIN) as signed, \
            Ledger.open_dir(work / "bare", origin=ORIGIN) as bare:
        bare._appender = GroupCommit(bare._store, sign=None)  # the same commit, no checkpoint
        for b in range(batches):
            for which in ((0, 1) if b % 2 else (1, 0)):
                start = time.perf_counter()
                if which:
                    receipts = signed.append(records[b])
                    t_sign += time.perf_counter() - start
                else:
                    bare.append(spare[b])
                    t_bare += time.perf_counter() - start
            start = time.perf_counter()
            for r in receipts:
                r.inclusion
            t_proofs += time.perf_counter() - start
        assert signed.verify().ok
    n = batches * 100
    return {"signed_per_s": n / t_sign, "unsigned_per_s": n / t_bare, "cost": t_sign / t_bare - 1,
            "proof_us_per_entry": t_proofs / n * 1e6, "proofs_vs_append": t_proofs / t_sign}


def bench_group_commit(work: Path, per_thread: int, threads: int = 8) -> dict:
    with Ledger.open_dir(work / "single", origin=ORIGIN, group_commit=False) as led:
        n1 = per_thread * 2
        t1, _ = timed(lambda: [led.append([record(i)]) for i in range(n1)])
    with Ledger.open_dir(work / "group", origin=ORIGIN) as led:
        start = threading.Barrier(threads + 1)

        def work_(t):
            start.wait()
            for i in range(per_thread):
                led.append([record(t * per_thread + i)])

        pool = [threading.Thread(target=work_, args=(t,)) for t in range(threads)]
        for p in pool:
            p.start()
        start.wait()
        t8 = time.perf_counter()
        for p in pool:
            p.join()
        t8 = time.perf_counter() - t8
        commits = led.commits
    n8 = per_thread * threads
    return {"group_per_s": n8 / t8, "single_per_s": n1 / t1, "ratio": (n8 / t8) / (n1 / t1),
            "appends": n8, "commits": commits}


# The big ledger -------------------------------------------------------------


def big_ledger(size: int, cache: Path) -> Path:
    """A ledger of ``size`` entries under ``cache``, built once in one transaction."""
    d = cache / f"ledger-{size}-v{CACHE_VERSION}"
    if (d / "complete").exists():
        return d
    shutil.rmtree(d, ignore_errors=True)
    t = time.perf_counter()
    print(f"building a {size:,}-entry ledger in {d} (cached for later runs)...", file=sys.stderr)
    Ledger.open_dir(d, origin=ORIGIN).close()
    store = Store(d / "ledger.db")
    conn = store.writer()
    conn.execute("PRAGMA synchronous=OFF")  # a bulk load, redone from scratch if interrupted
    tree, prev = TreeStream(), ""
    with store.write(conn):
        for start in range(0, size, 50_000):
            entries = []
            for i in range(start, min(size, start + 50_000)):
                if i % RUN == 0:
                    hashes, hid = [], merkle.stored_hash_count(i)
                value = record(i)
                value["index"], value["prev"] = i, prev
                data = canonical.encode(value)
                leaf = merkle.leaf_hash(data)
                hashes.extend(tree.add(leaf))
                entries.append((i, data))
                prev = b64.encode(leaf)
                if i % RUN == RUN - 1 or i == size - 1:
                    Store.put_hash_run(conn, hid, hashes)
                    Store.put_entry_run(conn, entries[0][0], [e for _, e in entries])
                    entries = []
        # Signed here, so opening the ledger re-checks only the last few leaves.
        signer = Signer.from_skey((d / "ledger.key").read_text())
        note = sign_checkpoint(Checkpoint(ORIGIN, size, tree.root()), signer)
        Store.put_checkpoint(conn, size, note, time.time())
    store.close()
    with Ledger.open_dir(d, origin=ORIGIN) as led:
        with open(d / "bundle.ndjson", "wb") as out:
            led.export(out)
    (d / "complete").write_text(f"built in {time.perf_counter() - t:.1f} s\n")
    return d


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def run_start(hash_id: int) -> int:
    """The id of the row of the big ledger holding stored hash ``hash_id``:
    the hash is stored by the append of leaf ((n + 1) << level) - 1, in the
    run of that leaf's commit of RUN entries."""
    level, n = merkle.split_stored_hash_index(hash_id)
    leaf = ((n + 1) << level) - 1
    return merkle.stored_hash_count(leaf // RUN * RUN)


def bench_proofs(d: Path, count: int) -> dict:
    rng = random.Random(7)
    out = {}
    with Ledger.open_dir(d, origin=ORIGIN) as led:
        size = led.size()
        store, conn = led._store, led._store.writer()
        read_ids = []

        def recording(ids):
            read_ids.append(list(ids))
            return store.read_hashes(ids, conn)

        for kind in ("inclusion", "consistency"):
            times, raw = [], []
            for _ in range(count):
                a = rng.randrange(size) if kind == "inclusion" else rng.randrange(1, size)
                prove = led.inclusion_proof if kind == "inclusion" else led.consistency_proof
                t, proof = timed(prove, a, size)
                times.append(t)
                ids = []
                (merkle.prove_inclusion if kind == "inclusion" else merkle.prove_consistency)(
                    a, size, lambda i: ids.extend(i) or store.read_hashes(i, conn))
                # The rows holding those hashes (each commit's run starts
                # where its first entry's hashes do), read by primary key.
                held = sorted({run_start(i) for i in ids})
                marks = ",".join("?" * len(held))
                tr, _ = timed(lambda: conn.execute(f"SELECT id, hash FROM hashes WHERE id IN ({marks})", held).fetchall())
                raw.append(tr)
            out[kind] = {
                "p50_ms": statistics.median(times) * 1e3,
                "p99_ms": pct(times, 99) * 1e3,
                "raw_read_p50_ms": statistics.median(raw) * 1e3,
                "raw_read_p99_ms": pct(raw, 99) * 1e3,
                "ratio": statistics.median(raw) / statistics.median(times),
            }
        # Proofs are right, not just fast.
        cp = open_checkpoint(led.checkpoint(), Verifier.from_vkey(led.verifier_key))
        i = rng.randrange(cp.size)
        merkle.verify_inclusion(i, cp.size, led.leaf_hash(i), led.inclusion_proof(i, cp.size), cp.root)
    return out


def bench_bundle(d: Path) -> dict:
    vkey = Signer.from_skey((d / "ledger.key").read_text()).vkey
    path = d / "bundle.ndjson"
    with open(path, "rb") as fp:
        t, report = timed(verify_bundle, fp, vkey)
    assert report.ok, report.summary()
    with open(path, "rb") as fp:
        t1, one = timed(lambda: verify_bundle(fp, vkey, workers=1))
    assert one.ok, one.summary()

    def hash_only():
        n = 0
        with open(path, "rb") as fp:
            fp.readline()
            for line in fp:
                hashlib.sha256(b"\x00" + line[:-1]).digest()
                n += 1
        return n

    t_hash, n = timed(hash_only)
    return {"entries": report.size, "verify_per_s": report.size / t, "hashlib_per_s": n / t_hash,
            "ratio": (report.size / t) / (n / t_hash), "bundle_mb": path.stat().st_size / 1e6,
            "verify_1_process_per_s": one.size / t1, "ratio_1_process": (one.size / t1) / (n / t_hash)}


def bench_open(d: Path) -> dict:
    t, led = timed(lambda: Ledger.open_dir(d, origin=ORIGIN))
    led.close()
    return {"open_ms": t * 1e3}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000, help="entries in the big ledger (default 1,000,000)")
    ap.add_argument("--batches", type=int, default=1000,
                    help="batches of 100 for the append figure (default 1,000: slices of 50 batches)")
    ap.add_argument("--singles", type=int, default=100, help="single appends per thread (8 threads)")
    ap.add_argument("--proofs", type=int, default=2000, help="proofs of each kind to time")
    ap.add_argument("--cache", type=Path, default=REPO / ".bench", help="where the big ledger is kept (default .bench/)")
    args = ap.parse_args(argv)

    results = {}
    with tempfile.TemporaryDirectory(prefix="labelcheck-bench-") as tmp:
        results["append_batch100"] = bench_batches(Path(tmp), args.batches)
        results["signing"] = bench_signing(Path(tmp), args.batches)
        results["group_commit_8_threads"] = bench_group_commit(Path(tmp), args.singles)
    d = big_ledger(args.size, args.cache)
    results["open"] = bench_open(d)
    results["proofs"] = bench_proofs(d, args.proofs)
    results["bundle_verify"] = bench_bundle(d)

    a, g, p, b = (results[k] for k in ("append_batch100", "group_commit_8_threads", "proofs", "bundle_verify"))
    rows = [
        ("durable appends, batches of 100", f"{a['ledger_per_s']:,.0f}/s", f"raw sqlite3 {a['raw_per_s']:,.0f}/s",
         f"{a['ratio']:.2f} +- {a['ratio_stderr']:.2f}", ">= 0.5"),
        ("  the same in process CPU per entry", f"{a['ledger_cpu_us']:.1f} us", f"raw sqlite3 {a['raw_cpu_us']:.1f} us",
         f"{a['cpu_ratio']:.2f}", ""),
        ("  the same, commits storing no checkpoint", f"{results['signing']['unsigned_per_s']:,.0f}/s",
         f"signed {results['signing']['signed_per_s']:,.0f}/s", f"cost {results['signing']['cost']:+.1%}",
         "cost <= 10%"),
        ("  receipts' inclusion proofs", f"{results['signing']['proof_us_per_entry']:.1f} us/entry", "",
         f"{results['signing']['proofs_vs_append']:.1%} of append", ""),
        ("single appends, 8 threads, group commit", f"{g['group_per_s']:,.0f}/s",
         f"1 thread, no grouping {g['single_per_s']:,.0f}/s", f"{g['ratio']:.2f}",
         f"{g['commits']} commits for {g['appends']}"),
    ]
    for kind in ("inclusion", "consistency"):
        q = p[kind]
        rows.append((f"{kind} proof at {args.size:,}", f"p50 {q['p50_ms']:.3f} ms, p99 {q['p99_ms']:.3f} ms",
                     f"raw reads p50 {q['raw_read_p50_ms']:.3f}, p99 {q['raw_read_p99_ms']:.3f} ms",
                     f"{q['ratio']:.2f}", "p99 < 1 ms"))
    rows.append((f"bundle verify at {b['entries']:,}", f"{b['verify_per_s']:,.0f} entries/s",
                 f"hashlib only {b['hashlib_per_s']:,.0f}/s", f"{b['ratio']:.3f}", ">= 150,000/s"))
    rows.append(("  the same in one process", f"{b['verify_1_process_per_s']:,.0f} entries/s",
                 "", f"{b['ratio_1_process']:.3f}", ""))
    rows.append((f"open (start-up check) at {args.size:,}", f"{results['open']['open_ms']:.1f} ms", "", "", ""))
    widths = [max(len(r[i]) for r in rows + [("figure", "measured", "ceiling", "ratio", "aim")]) for i in range(5)]
    for r in [("figure", "measured", "ceiling", "ratio", "aim")] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(json.dumps({"benchmark": "ledger", "size": args.size, **results}, sort_keys=True))


if __name__ == "__main__":
    main()
