"""Two versions of the server side by side: which costs less CPU a request.

    scripts/bench server_ab --base REV [--head REV] [--kind single|batch|health]
                            [--slices N] [--seconds S] [--tiny]

A change worth a few percent cannot be seen by measuring one version after
the other on a shared machine: runs minutes apart differ by 10% and more
(the figures of ``scripts/bench server`` move that much). Here both versions
serve at once, each a ``labelcheck serve`` with the same workers and threads
on its own port and ledger, loaded with the same requests by the same number
of clients in the same slices, so whatever else the machine does falls on
both. Each slice gives each side's server CPU (user and sys of all its
processes, from /proc) per request and its requests per second; the report
is the mean of each and of the per-slice difference, with its standard
error. CPU per request is the figure to go by: the two sides also compete
for the cores, so a side whose processes can use more of them gets more
requests through.

REV is any git revision: it is checked out (``git worktree``) in a temporary
directory and imported from there (``labelcheck`` is server/,
``labelcheck.ledger`` is ledger/, as pyproject's package-dir says), with the
dependencies installed in .venv. Without ``--head`` the head is the working
tree as it is. Linux only (/proc). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import server as bench  # scripts/benchmarks/server.py: the load, the fixtures, /proc
from _stats import mean_and_error

from labelcheck.ledger import keyfile as keys

ROOT = bench.ROOT


def checkout(rev: str, tmp: Path, name: str) -> tuple[Path, str]:
    """A worktree of ``rev`` at ``tmp/name`` and the PYTHONPATH that imports ``labelcheck`` from it."""
    tree = tmp / name
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), rev], check=True)
    if not (tree / "server" / "ledger").exists():
        (tree / "server" / "ledger").symlink_to("../ledger")
    path = tree.with_name(tree.name + "-path")
    path.mkdir()
    (path / "labelcheck").symlink_to(tree / "server")
    return tree, str(path)


def side(name: str, pythonpath: str | None, tmp: Path, args, signer) -> dict:
    """Start one side's server and register the benchmark's producer on it."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    data = tmp / f"data-{name}"
    proc, base = bench.start_server(data, args.workers, args.threads, env=env)
    admin = {"Authorization": "Bearer " + (data / "admin.token").read_text().strip()}
    bench.post_json(base, "/v1/producers", {"name": "Bench AI", "vkey": signer.vkey}, admin)
    return {"name": name, "proc": proc, "base": base, "cpu": [], "rps": []}


def requests_for(kind: str, items: list, batch: int) -> list:
    if kind == "health":
        return [("GET", "/healthz", None)]
    if kind == "single":
        return [("POST", "/v1/verify", json.dumps({"items": [it]}).encode()) for it in items]
    return [("POST", "/v1/verify", json.dumps({"items": items[i:i + batch]}).encode())
            for i in range(0, len(items) - batch + 1, batch)]


def one_slice(sides: list[dict], reqs: list, start: int, args) -> int:
    """Load both sides at once for one slice; record each side's CPU per request and rate."""
    before = [bench.cpu_snapshot(s["proc"].pid) for s in sides]
    out: dict = {}

    def run(s: dict) -> None:
        done: list = []
        rps, errors = bench.load(s["base"], reqs, args.seconds, args.clients, args.connections, start=start,
                                 counts=done)
        out[s["name"]] = (rps, done[0], errors)

    threads = [threading.Thread(target=run, args=(s,)) for s in sides]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = 0
    for s, b in zip(sides, before):
        a = bench.cpu_snapshot(s["proc"].pid)
        rps, done, err = out[s["name"]]
        cpu = a["server_user"] + a["server_sys"] - b["server_user"] - b["server_sys"]
        s["cpu"].append(cpu / max(done, 1) * 1e6)
        s["rps"].append(rps)
        errors += err
    return errors


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="git revision of the base side")
    ap.add_argument("--head", default=None, help="git revision of the head side (default: the working tree)")
    ap.add_argument("--kind", choices=("single", "batch", "health"), default="single",
                    help="single-item verifies (default), batches of 100, or GET /healthz")
    ap.add_argument("--slices", type=int, default=6, help="slices of load (default 6)")
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds a slice (default 3)")
    ap.add_argument("--clients", type=int, default=4, help="client processes a side (default 4)")
    ap.add_argument("--connections", type=int, default=8, help="connections a client process (default 8)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="gunicorn workers a side")
    ap.add_argument("--threads", type=int, default=bench.Config.threads, help="threads a worker")
    ap.add_argument("--tiny", action="store_true", help="a smoke run: 2 slices of 0.5 s, 1 client")
    args = ap.parse_args(argv)
    if args.tiny:
        args.slices, args.seconds, args.clients, args.connections = 2, 0.5, 1, 2
    batch = 100
    signer = keys.generate_key("bench-ai")
    wanted = int(args.slices * args.seconds * 4000 * (batch if args.kind == "batch" else 1)) + 1000
    items, _ = bench.make_claims(signer, min(wanted, 60_000) if not args.tiny else 400)
    reqs = requests_for(args.kind, items, batch)
    errors = 0
    with tempfile.TemporaryDirectory(prefix="labelcheck-ab-") as tmp_name:
        tmp = Path(tmp_name)
        trees: list[Path] = []
        sides: list[dict] = []
        try:
            tree, base_path = checkout(args.base, tmp, "base")
            trees.append(tree)
            head_path = None
            if args.head is not None:
                tree, head_path = checkout(args.head, tmp, "head")
                trees.append(tree)
            sides = [side("base", base_path, tmp, args, signer), side("head", head_path, tmp, args, signer)]
            for s in sides:
                bench.load(s["base"], reqs[:50], 0.3, 1, 2)  # warm up: imports, first commits
            start = 100
            for i in range(args.slices):
                errors += one_slice(sides, reqs, start, args)
                start += int(max(max(s["rps"][-1] for s in sides) * args.seconds, 1)) + 100
                print(f"slice {i + 1}: " + "  ".join(f"{s['name']} {s['rps'][-1]:8.0f}/s {s['cpu'][-1]:7.0f} us CPU"
                                                    for s in sides), flush=True)
        finally:
            for s in sides:
                s["proc"].send_signal(signal.SIGTERM)
                try:
                    s["proc"].wait(timeout=20)
                except subprocess.TimeoutExpired:
                    s["proc"].kill()
            for tree in trees:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)

    base, head = sides
    diff = [100 * (h - b) / b for b, h in zip(base["cpu"], head["cpu"])]
    d_mean, d_err = mean_and_error(diff)
    unit = "100-item request" if args.kind == "batch" else "request"
    print(f"{'side':<6}{'requests/s':>12}{f'server CPU us a {unit}':>32}")
    for s in sides:
        m, e = mean_and_error(s["cpu"])
        print(f"{s['name']:<6}{statistics.fmean(s['rps']):>12,.0f}{m:>24,.0f} +- {e:,.0f}")
    print(f"head vs base: server CPU a request {d_mean:+.1f}% +- {d_err:.1f}% (mean of {len(diff)} paired slices, "
          f"standard error); {errors} non-200 answers")
    print(json.dumps({
        "benchmark": "server_ab", "kind": args.kind, "base": args.base, "head": args.head or "working tree",
        "base_cpu_us": [round(x, 1) for x in base["cpu"]], "head_cpu_us": [round(x, 1) for x in head["cpu"]],
        "base_rps": [round(x, 1) for x in base["rps"]], "head_rps": [round(x, 1) for x in head["rps"]],
        "cpu_change_pct": round(d_mean, 2), "cpu_change_stderr_pct": round(d_err, 2), "errors": errors,
        "workers": args.workers, "threads": args.threads, "slices": args.slices, "seconds": args.seconds,
    }))
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
