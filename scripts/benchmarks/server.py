"""The verification server under load, against ceilings measured in the same run.

    scripts/bench server [--seconds S] [--clients C] [--connections K] [--workers W] [--threads T]
                         [--only fetch] [--tiny] [--cpu]

One ``labelcheck serve`` (gunicorn, gthread, the settings of production) on a
free 127.0.0.1 port, loaded by C client processes of K keep-alive
connections each, on loopback only. The load keeps as many requests in
flight as the server has threads (4 x 8 = 32 against 2 workers x 16 threads
on 2 cores): with fewer, it would measure round trips instead of throughput
(Little's law), since every thread waiting on the ledger's fsync leaves its
client idle (4 x 12 = 48 measured the same as 32); both sides of each ratio
are measured with the same load:

1. single-item ``POST /v1/verify`` requests per second, against ``GET
   /healthz`` of the same app (a trivial JSON endpoint): the cost of a
   verification and its ledger append over the cost of an HTTP round trip
   (aim >= 0.5); the ratio of the best slices, and beside it the mean of
   the slices' own ratios with its standard error;
2. claims per second in batches of 100 (ledger appends included), against raw
   PyNaCl verifications of the same signed messages on 2 processes
   (aim >= 0.4);
3. the fetch path: claims per second when the server fetches 100 KB PNGs
   from a local static file server (distinct URLs, so no cache hits), against
   the clients fetching the same files directly.

Measures 1 and 2 send distinct claims throughout (``--claims``, default
20,000, far more than the server's per-process memory of verified
signatures holds, ``claims.sigcache``), so every verification there is a
real one; the fetch path sends one claim for one image under distinct URLs,
as a page's CDN variants of one image would, so it measures the fetching.
The per-process rate limiter is turned off (LABELCHECK_VERIFY_RATE=0): it
would measure itself. Prints a table, then one JSON line. ``--cpu`` (a
diagnostic, Linux) also prints, for measures 1 and 2, the CPU each request
or claim cost the server (user, sys), the clients and the whole machine,
the server's context switches and the machine's idle share, over all slices.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import http.server
import io
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from _stats import mean_and_error  # noqa: E402  (scripts/benchmarks/_stats.py)
from labelcheck import claims  # noqa: E402
from labelcheck.claims import sigcache  # noqa: E402
from labelcheck.pipeline.config import Config  # noqa: E402
from labelcheck.ledger import keyfile as keys  # noqa: E402

LABELCHECK = str(Path(sys.executable).with_name("labelcheck"))


# --- load generation (runs in client processes) -----------------------------


def _client(base: str, requests_: list[tuple[str, str, bytes | None]], seconds: float, threads: int, out,
            first: int = 0, stride: int | None = None):
    """Send ``requests_`` round-robin over keep-alive connections for ``seconds``,
    thread t taking ``first + t``, then every ``stride``-th; put (requests
    done, errors) on ``out``."""
    host = urlsplit(base)
    done = [0] * threads
    errors = [0] * threads
    deadline = time.monotonic() + seconds

    def loop(t: int) -> None:
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
        i = first + t
        while time.monotonic() < deadline:
            method, path, body = requests_[i % len(requests_)]
            i += stride or threads
            headers = {"Content-Type": "application/json"} if body is not None else {}
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    done[t] += 1
                else:
                    errors[t] += 1
            except (OSError, http.client.HTTPException):
                errors[t] += 1
                conn.close()
                conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
        conn.close()

    pool = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    out.put((sum(done), sum(errors)))


def load(base: str, requests_, seconds: float, clients: int, threads: int = 2, start: int = 0,
         counts: list | None = None) -> tuple[float, int]:
    """Requests per second over ``clients`` processes, and the error count
    (the requests done are appended to ``counts`` when given). Every
    connection takes its own requests of ``requests_``, from ``start`` on, so
    no two send the same one unless the list wraps around."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    stride = clients * threads
    procs = [ctx.Process(target=_client, args=(base, requests_, seconds, threads, out, start + c * threads, stride))
             for c in range(clients)]
    start = time.monotonic()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = max(seconds, time.monotonic() - start)
    if counts is not None:
        counts.append(sum(r[0] for r in results))
    return sum(r[0] for r in results) / elapsed, sum(r[1] for r in results)


# --- diagnostics (--cpu): where each measure's CPU went (Linux /proc) ---------


def cpu_snapshot(server_pid: int) -> dict[str, float]:
    """CPU seconds and context switches of the server (master and workers,
    every thread), CPU seconds of this process's waited-for children (the
    client processes), and the machine's busy and idle seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [server_pid]
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == server_pid:
                pids.append(int(entry))
        except (OSError, IndexError, ValueError):
            pass  # gone meanwhile
    out = {"server_user": 0.0, "server_sys": 0.0, "ctxsw": 0.0}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out["server_user"] += int(fields[11]) / tick
            out["server_sys"] += int(fields[12]) / tick
            for task in os.listdir(f"/proc/{pid}/task"):
                for line in Path(f"/proc/{pid}/task/{task}/status").read_text().splitlines():
                    if "ctxt_switches:" in line:  # voluntary and not
                        out["ctxsw"] += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            pass
    children = os.times()
    out["clients"] = children.children_user + children.children_system
    cpu = [int(x) / tick for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    out["idle"], out["busy"] = cpu[3] + cpu[4], sum(cpu[:8]) - cpu[3] - cpu[4]  # guest time is in user already
    return out


def cpu_line(name: str, d: dict, requests: float, per: str = "request") -> str:
    """One measure's CPU per request in microseconds, and the machine's idle
    share, from ``d``: what ``cpu_snapshot`` counted over its slices."""
    us = 1e6 / max(requests, 1)
    idle = d["idle"] / max(d["idle"] + d["busy"], 1e-9)
    return (f"{name:<8} server {us * d['server_user']:8.0f} user {us * d['server_sys']:6.0f} sys, "
            f"clients {us * d['clients']:6.0f}, machine busy {us * d['busy']:8.0f} us/{per}; "
            f"{d['ctxsw'] / max(requests, 1):6.1f} server context switches/{per}; machine idle {100 * idle:4.1f}%")


# --- the ceiling: raw Ed25519 verifications on 2 processes --------------------


def _raw_verify(public_key: bytes, pairs, seconds: float, out) -> None:
    import nacl.signing

    vk = nacl.signing.VerifyKey(public_key)
    done, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        for message, sig in pairs:
            vk.verify(message, sig)
        done += len(pairs)
    out.put(done / seconds)


def raw_verifications(public_key: bytes, pairs, seconds: float, processes: int = 2) -> float:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_raw_verify, args=(public_key, pairs, seconds, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    total = sum(out.get() for _ in procs)
    for p in procs:
        p.join()
    return total


# --- fixtures: server, producer, claims, media --------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data: Path, workers: int, threads: int, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(env if env is not None else os.environ, LABELCHECK_VERIFY_RATE="0")
    proc = subprocess.Popen([LABELCHECK, "serve", "--port", str(port), "--data-dir", str(data),
                             "--workers", str(workers), "--threads", str(threads), "--fetch-allow", "127.0.0.1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{proc.stdout.read()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, base
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def post_json(base: str, path: str, body, headers=None) -> dict:
    host = urlsplit(base)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    if resp.status >= 300:
        raise SystemExit(f"{path}: {resp.status} {data}")
    return data


def make_claims(signer, n: int):
    """``n`` distinct claims, the items sending them, and the (message, sig) pairs."""
    items, pairs = [], []
    for i in range(n):
        sha = hashlib.sha256(b"bench media %d" % i).hexdigest()
        body = claims.build_payload(sha, "image/png", "1", issuer=signer, filing="BENCH-1",
                                    url=f"https://media.example/{i}.png")
        env = claims.sign_envelope(body, signer)
        items.append({"claim": env, "content_sha256": sha, "page_url": "https://news.example/article"})
        message = claims.pae(claims.PAYLOAD_TYPE, claims.dumps_compact(body))
        pairs.append((message, signer.sign(message)))
    return items, pairs


def png_of_size(target: int) -> bytes:
    """A real PNG of about ``target`` bytes (noise does not compress)."""
    from PIL import Image

    side = int((target / 3) ** 0.5)
    img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=0)
    return out.getvalue()


def _static_server(body: bytes, ready) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ready.put(httpd.server_address[1])
    httpd.serve_forever()


def start_static(body: bytes):
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Queue()
    proc = ctx.Process(target=_static_server, args=(body, ready), daemon=True)
    proc.start()
    return proc, f"http://127.0.0.1:{ready.get(timeout=10)}"


# --- main -------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="seconds of load per measure (default 6)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating slices per measure; the best counts")
    ap.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    ap.add_argument("--connections", type=int, default=8, help="keep-alive connections per client process (default 8)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="gunicorn workers (default: cores)")
    ap.add_argument("--threads", type=int, default=Config.threads,
                    help=f"threads per worker (default {Config.threads}, as labelcheck serve)")
    ap.add_argument("--batch", type=int, default=100, help="items per batch request (default 100)")
    ap.add_argument("--fetch-batch", type=int, default=20, help="media per fetch request (default 20)")
    ap.add_argument("--claims", type=int, default=20_000,
                    help="distinct claims cycled through by measures 1 and 2 (default 20,000)")
    ap.add_argument("--tmp", default=None, help="where the ledger lives (default: the system temp dir; "
                                            "/dev/shm shows the cost of fsync)")
    ap.add_argument("--only", choices=("all", "fetch"), default="all", help="run only the fetch path measure")
    ap.add_argument("--tiny", action="store_true", help="a smoke run: 0.5 s per measure, 1 client")
    ap.add_argument("--cpu", action="store_true", help="also print each measure's CPU per request (server user and "
                    "sys, clients, machine), server context switches and machine idle, from /proc (Linux)")
    args = ap.parse_args(argv)
    if args.tiny:
        args.seconds, args.rounds, args.clients, args.connections, args.batch, args.fetch_batch = 0.5, 1, 1, 2, 10, 4
        args.claims = 400
    slice_s = args.seconds / args.rounds

    with tempfile.TemporaryDirectory(prefix="labelcheck-bench-", dir=args.tmp) as tmp:
        data = Path(tmp) / "data"
        proc, base = start_server(data, args.workers, args.threads)
        static = None
        try:
            admin = {"Authorization": "Bearer " + (data / "admin.token").read_text().strip()}
            signer = keys.generate_key("bench-ai")
            post_json(base, "/v1/producers", {"name": "Bench AI", "vkey": signer.vkey}, admin)
            if not args.tiny and args.claims < 4 * sigcache.CAPACITY:
                print(f"note: --claims {args.claims} is near the server's memory of verified signatures "
                      f"({sigcache.CAPACITY} per process): some verifications will be remembered ones", file=sys.stderr)
            items, pairs = make_claims(signer, max(args.claims if args.only == "all" else 0, 2 * args.batch))

            singles = [("POST", "/v1/verify", json.dumps({"items": [it]}).encode()) for it in items]
            batches = [("POST", "/v1/verify", json.dumps({"items": items[i:i + args.batch]}).encode())
                       for i in range(0, len(items) - args.batch + 1, args.batch)]
            check = post_json(base, "/v1/verify", {"items": items[:2]})["results"]
            assert [r["status"] for r in check] == ["verified"] * 2, check

            # Alternating slices, best of each: both sides of a ratio see the same
            # (shared, noisy) machine, and the best slice is the least disturbed.
            best = {"health": 0.0, "single": 0.0, "batch": 0.0, "raw": 0.0}
            by_round: dict[str, list[float]] = {"health": [], "single": []}  # requests/s of each slice
            sent = {"health": 0, "single": 0, "batch": 0}  # each slice goes on where the last one stopped
            errors = 0
            cpu: dict[str, list] = {}  # --cpu: per measure, [CPU spent in its slices, requests done]
            for _ in range(args.rounds if args.only == "all" else 0):
                for name, reqs in (("health", [("GET", "/healthz", None)]), ("single", singles),
                                   ("batch", batches)):
                    before, done = (cpu_snapshot(proc.pid) if args.cpu else None), []
                    rps, err = load(base, reqs, slice_s, args.clients, args.connections, start=sent[name], counts=done)
                    if args.cpu:
                        after = cpu_snapshot(proc.pid)
                        spent = cpu.setdefault(name, [dict.fromkeys(after, 0.0), 0])
                        spent[0] = {k: spent[0][k] + after[k] - before[k] for k in after}
                        spent[1] += done[0]
                    best[name], errors = max(best[name], rps), errors + err
                    by_round.get(name, []).append(rps)
                    sent[name] += int(rps * slice_s) + args.clients * args.connections
                best["raw"] = max(best["raw"], raw_verifications(signer.public_key, pairs[:200], slice_s))
            health_rps, single_rps, raw_vps = best["health"], best["single"], best["raw"]
            batch_cps = best["batch"] * args.batch

            image = png_of_size(100 * 1024)
            static, media_base = start_static(image)
            sha = hashlib.sha256(image).hexdigest()
            env = claims.sign_envelope(claims.build_payload(sha, "image/png", "1", issuer=signer), signer)
            counter = iter(range(10**9))

            def fetch_body() -> bytes:  # distinct URLs: every fetch is a real one
                return json.dumps({"items": [{"claim": env, "media_url": f"{media_base}/img.png?n={next(counter)}"}
                                             for _ in range(args.fetch_batch)]}).encode()

            fetch_reqs = [("POST", "/v1/verify", fetch_body()) for _ in range(1000)]
            check = post_json(base, "/v1/verify", json.loads(fetch_body()))["results"]
            assert {r["binding"] for r in check} == {"fetched"} and {r["status"] for r in check} == {"verified"}, check
            fetch_rps = direct_rps = 0.0
            direct = [("GET", f"/img.png?d={i}", None) for i in range(100)]
            for _ in range(args.rounds):
                rps, err = load(base, fetch_reqs, slice_s, args.clients, args.connections)
                fetch_rps, errors = max(fetch_rps, rps), errors + err
                rps, err = load(media_base, direct, slice_s, args.clients, args.connections)
                direct_rps, errors = max(direct_rps, rps), errors + err
            fetch_cps = fetch_rps * args.fetch_batch
        finally:
            if static is not None:
                static.terminate()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    r1 = single_rps / health_rps if health_rps else 0.0
    # The single-item ratio slice by slice (each single slice right after its
    # /healthz slice): how far apart the slices are, as a standard error.
    r1_rounds = [s / h for s, h in zip(by_round["single"], by_round["health"]) if h]
    r1_mean, r1_error = mean_and_error(r1_rounds)
    r2 = batch_cps / raw_vps if raw_vps else 0.0
    r3 = fetch_cps / direct_rps
    print(f"{'measure':<52}{'per second':>12}{'ratio':>8}{'aim':>6}")
    print(f"{'GET /healthz requests':<52}{health_rps:>12,.0f}")
    print(f"{'POST /v1/verify, 1 item, requests':<52}{single_rps:>12,.0f}{r1:>8.2f}{'0.5':>6}"
          f"   slice by slice {r1_mean:.2f} +- {r1_error:.2f}")
    print(f"{'raw PyNaCl verifications, 2 processes':<52}{raw_vps:>12,.0f}")
    print(f"{f'claims in batches of {args.batch} (ledger included)':<52}{batch_cps:>12,.0f}{r2:>8.2f}{'0.4':>6}")
    print(f"{'direct GETs of the 100 KB PNG':<52}{direct_rps:>12,.0f}")
    print(f"{f'claims, server fetches 100 KB PNGs ({args.fetch_batch}/request)':<52}{fetch_cps:>12,.0f}{r3:>8.2f}")
    print(f"{args.workers} worker(s) x {args.threads} threads, {args.clients} client processes x {args.connections} connections, "
          f"{args.seconds:g} s per measure in {args.rounds} slices (best counts), {errors} non-200 answers, "
          f"{os.cpu_count()} cores")
    for name, (spent, done) in cpu.items():  # --cpu
        print(cpu_line(name, spent, done * (args.batch if name == "batch" else 1),
                       "claim" if name == "batch" else "request"))
    print(json.dumps({
        "benchmark": "server", "healthz_rps": round(health_rps, 1), "verify1_rps": round(single_rps, 1),
        "verify1_ratio": round(r1, 3), "target_verify1_ratio": 0.5,
        "verify1_ratio_slices": [round(r, 3) for r in r1_rounds], "verify1_ratio_stderr": round(r1_error, 3),
        "batch_claims_per_s": round(batch_cps, 1), "raw_verifies_per_s_2proc": round(raw_vps, 1),
        "batch_ratio": round(r2, 3), "target_batch_ratio": 0.4, "batch": args.batch,
        "fetch_claims_per_s": round(fetch_cps, 1), "direct_fetch_per_s": round(direct_rps, 1),
        "fetch_ratio": round(r3, 3), "image_bytes": len(image), "errors": errors,
        "workers": args.workers, "threads": args.threads, "clients": args.clients, "connections": args.connections, "seconds": args.seconds,
        "rounds": args.rounds,
    }))
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
