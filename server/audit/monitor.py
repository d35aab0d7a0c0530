"""A checkpoint monitor: follow a labelcheck ledger and catch it lying.

Each round fetches ``/v1/checkpoint``, opens it with the verifier key the
monitor was given (never one the server offers) and, when witnesses are
named, requires a quorum of their cosignatures (``audit.trust``; a checkpoint
without it is not trusted, like a server that is down). It then compares it
with the last checkpoint the monitor trusts, kept in a state file:

* first round: the checkpoint is trusted as is (trust on first use);
* same size, same root: nothing changed;
* larger: the server must prove the old tree is a prefix of the new one with
  an RFC 9162 §2.1.4 consistency proof (``/v1/proof/consistency``), checked
  by ``ledger.merkle.verify_consistency`` (§2.1.4.2);
* smaller: a stale copy (a cache, another node of the log, the newest
  checkpoint a witness quorum has cosigned so far) when the server proves
  the trusted tree extends it (``/v1/proof/consistency`` from the served
  size to the trusted one), as Go's sumdb client asks too: nothing wrong,
  and the trusted checkpoint stays;
* smaller and the server cannot prove that (its log no longer reaches the
  trusted size: it shrank or was rolled back), same size with another root
  (a fork), or a proof that fails: the log misbehaved. Both signed notes,
  the trusted one and the one served, are saved as evidence: two notes signed
  by the log's key that no single append-only log could have produced.

The state file is replaced atomically, and only after the signature and the
proof hold, so it only ever holds a checkpoint that was proven to extend the
one before. This is the gossip-free half of a transparency-log monitor as in
Certificate Transparency (RFC 9162 §8.3) and Go's sumdb client.

``check_once`` is pure: it takes a ``fetch(path, params) -> bytes`` function
(``http_fetch`` for a real server; a Flask test client in tests).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import requests

from labelcheck.audit.trust import LogTrust, QuorumError
from labelcheck.ledger import checkpoint, merkle, note
from labelcheck.util import atomic, b64, times

STATE_FORMAT = "labelcheck-monitor/1"
MAX_RESPONSE = 1 << 20  # a checkpoint or a proof is a few KiB at most
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0

OK_KINDS = ("first", "same", "grew", "behind")
ALARM_KINDS = ("shrunk", "forked", "inconsistent")
ERROR_KINDS = ("unreachable", "bad_signature", "no_quorum", "bad_response")

# Exit codes of ``watch`` (and ``labelcheck ledger watch``).
EXIT_OK, EXIT_ALARM, EXIT_USAGE, EXIT_UNCHECKED = 0, 1, 2, 3

Fetch = Callable[[str, "dict[str, int] | None"], bytes]


class FetchError(Exception):
    """The server could not be asked: down, timed out, an HTTP error, too large.
    ``status``: the HTTP status when the server answered with an error."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class MonitorError(Exception):
    """Bad input: a URL that is not http(s), an unusable or foreign state file."""


# --- state ------------------------------------------------------------------------


@dataclass
class State:
    """What the monitor trusts: the latest checkpoint proven consistent."""

    note: bytes | None = None
    checkpoint: checkpoint.Checkpoint | None = None

    @classmethod
    def load(cls, path: str | os.PathLike, verifier: note.Verifier | LogTrust) -> "State":
        """The state in ``path`` (empty when the file does not exist yet).

        The stored note must open with the log's key: a state file written for
        another log or key is refused, never silently replaced. (Its
        cosignatures were counted when it was stored.)
        """
        verifier = LogTrust.of(verifier).log
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise MonitorError(f"cannot read state file {path}: {exc.strerror or exc}") from None
        try:
            doc = json.loads(raw)
            assert isinstance(doc, dict) and doc.get("format") == STATE_FORMAT
            text = doc["checkpoint"].encode("utf-8")
        except (ValueError, AssertionError, KeyError, AttributeError, UnicodeError):
            raise MonitorError(f"{path} is not a labelcheck monitor state file ({STATE_FORMAT})") from None
        try:
            cp = checkpoint.open_checkpoint(text, verifier)
        except (checkpoint.CheckpointError, note.NoteError) as exc:
            raise MonitorError(f"the checkpoint in {path} does not verify with {verifier.key_id}: {exc} "
                               "(a state file of another log or key?)") from None
        return cls(text, cp)

    def save(self, path: str | os.PathLike, *, url: str = "") -> None:
        """Write the state atomically (``util.atomic``: a temporary file, fsync, rename, fsync the folder)."""
        path = Path(path)
        doc = {"format": STATE_FORMAT, "checkpoint": self.note.decode("utf-8"), "url": url,
               "origin": self.checkpoint.origin, "size": self.checkpoint.size, "updated": times.now_text()}
        _write_atomic(path, (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))


def _write_atomic(path: Path, data: bytes) -> None:
    try:
        atomic.write_bytes(path, data)
    except OSError as exc:
        raise MonitorError(f"cannot write {path}: {exc.strerror or exc}") from None


# --- one round ----------------------------------------------------------------------


@dataclass
class Outcome:
    """The result of one round. ``kind`` is one of OK_KINDS, ALARM_KINDS, ERROR_KINDS."""

    kind: str
    message: str
    old_note: bytes | None = None
    new_note: bytes | None = None
    old: checkpoint.Checkpoint | None = None
    new: checkpoint.Checkpoint | None = None
    proof: bytes | None = None  # the consistency-proof response, as served
    evidence: list[Path] = field(default_factory=list)

    @property
    def trusted(self) -> bool:
        """The served checkpoint holds: store it."""
        return self.kind in OK_KINDS

    @property
    def alarm(self) -> bool:
        """The log misbehaved; the two notes prove it."""
        return self.kind in ALARM_KINDS

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.trusted else EXIT_ALARM if self.alarm else EXIT_UNCHECKED


def check_once(fetch: Fetch, verifier: note.Verifier | LogTrust, state: State) -> Outcome:
    """Fetch, verify and compare one checkpoint against ``state`` (see module doc).

    Never raises for anything the server sends; ``fetch`` signals failure
    with FetchError.
    """
    trust = LogTrust.of(verifier)
    old, old_note = state.checkpoint, state.note
    try:
        new_note = fetch("/v1/checkpoint", None)
    except FetchError as exc:
        return Outcome("unreachable", f"cannot fetch the checkpoint: {exc}", old_note, None, old)
    try:
        new = trust.open(new_note, origin=old.origin if old else None)
    except QuorumError as exc:
        return Outcome("no_quorum", f"not trusting the served checkpoint: {exc}", old_note, new_note, old,
                       exc.checkpoint)
    except (checkpoint.CheckpointError, note.NoteError) as exc:
        return Outcome("bad_signature", f"refused the served checkpoint: it does not verify with "
                       f"{trust.log.key_id}: {exc}", old_note, new_note, old)
    out = Outcome("first", "", old_note, new_note, old, new)
    if old is None:
        out.message = f"trusting the first checkpoint seen: size {new.size}, root {b64.encode(new.root)}"
    elif new.size < old.size:
        _check_older(fetch, out)
    elif new.size == old.size:
        if new.root == old.root:
            out.kind, out.message = "same", f"unchanged at size {new.size}"
        else:
            out.kind = "forked"
            out.message = (f"the log FORKED: two different signed roots for size {new.size} "
                           f"({b64.encode(old.root)} and {b64.encode(new.root)})")
    else:
        _check_growth(fetch, out)
    return out


def _check_growth(fetch: Fetch, out: Outcome) -> None:
    old, new = out.old, out.new
    try:
        _prove(fetch, out, old, new)
    except merkle.ProofError as exc:
        out.kind = "inconsistent"
        out.message = (f"the log's checkpoint at size {new.size} is NOT consistent with the trusted one at size "
                       f"{old.size}: {exc} (both signed checkpoints saved as evidence)")
    except (FetchError, ValueError) as exc:
        _unchecked(out, exc)
    else:
        out.kind, out.message = "grew", f"grew from {old.size} to {new.size} entries, consistency proven"


def _check_older(fetch: Fetch, out: Outcome) -> None:
    """A served checkpoint smaller than the trusted one (see the module docstring)."""
    old, new = out.old, out.new
    shrank = (f"the log SHRANK from {old.size} to {new.size} entries: it was truncated or rolled back "
              "(both signed checkpoints saved as evidence)")
    if new.size == 0:  # no proof from the empty tree tells a stale copy from a truncated log
        out.kind, out.message = "shrunk", shrank
        return
    try:
        _prove(fetch, out, new, old)
    except merkle.ProofError as exc:
        out.kind = "inconsistent"
        out.message = (f"the trusted checkpoint at size {old.size} is NOT consistent with the log's older one at "
                       f"size {new.size}: {exc} (both signed checkpoints saved as evidence)")
    except FetchError as exc:
        if exc.status == 400:  # the server says it cannot: the size is beyond its log
            out.kind, out.message = "shrunk", f"{shrank}; asked to prove the trusted tree: {exc}"
        else:
            _unchecked(out, exc)
    except ValueError as exc:
        _unchecked(out, exc)
    else:
        out.kind = "behind"
        out.message = (f"served an older checkpoint (size {new.size}) and proved that the tree of size {old.size} "
                       "extends it")


def _prove(fetch: Fetch, out: Outcome, small: checkpoint.Checkpoint, large: checkpoint.Checkpoint) -> None:
    """Fetch (into ``out.proof``) and check the RFC 9162 §2.1.4 proof that
    ``large`` extends ``small``. Raises FetchError (not fetched), ValueError
    (not usable) or merkle.ProofError (it does not hold)."""
    proof: list[bytes] = []
    if small.size > 0:  # from the empty tree the proof is empty (RFC 9162 §2.1.4)
        out.proof = fetch("/v1/proof/consistency", {"from": small.size, "to": large.size})
        proof = _parse_proof(out.proof, small.size, large.size)
    merkle.verify_consistency(small.size, large.size, small.root, large.root, proof)


def _unchecked(out: Outcome, exc: Exception) -> None:
    """A proof that could not be fetched, or was not usable: no verdict."""
    if isinstance(exc, FetchError):
        out.kind, out.message = "unreachable", f"cannot fetch the consistency proof: {exc}"
    else:
        out.kind, out.message = "bad_response", f"the consistency proof response is not usable: {exc}"


def _parse_proof(body: bytes, old_size: int, new_size: int) -> list[bytes]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("hashes"), list):
        raise ValueError('not {"from", "to", "hashes"}')
    if doc.get("from") != old_size or doc.get("to") != new_size:
        raise ValueError(f"asked for {old_size}..{new_size}, got {doc.get('from')!r}..{doc.get('to')!r}")
    out = []
    for h in doc["hashes"]:
        try:
            raw = b64.decode(h)
        except ValueError:
            raise ValueError("a proof hash is not standard base64") from None
        if len(raw) != merkle.HASH_SIZE:
            raise ValueError(f"a proof hash is {len(raw)} bytes, not {merkle.HASH_SIZE}")
        out.append(raw)
    return out


# --- a round with its side effects ---------------------------------------------------------


def save_evidence(out: Outcome, evidence_dir: str | os.PathLike, *, url: str = "",
                  roles: tuple[str, str] = ("trusted", "served"), extra: dict | None = None) -> list[Path]:
    """Write both signed notes (and the proof, when one was served) to
    ``evidence_dir``, with a JSON summary (``extra`` added to it). A served
    note that did not open is saved as served, its size unknown."""
    folder = Path(evidence_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MonitorError(f"cannot create evidence directory {folder}: {exc.strerror or exc}") from None
    stamp = times.file_stamp(micro=True)
    base = f"{stamp}-{out.kind}"
    old, new = roles
    new_size = f"-{out.new.size}" if out.new else ""
    files = [(f"{base}-{old}-{out.old.size}.note", out.old_note)]
    if out.new_note is not None:
        files.append((f"{base}-{new}{new_size}.note", out.new_note))
    if out.proof is not None:  # named from and to as asked: from the smaller size
        sizes = sorted((out.old.size, out.new.size)) if out.new else (out.old.size,)
        files.append((f"{base}-proof-{'-'.join(map(str, sizes))}.json", out.proof))
    summary = {"kind": out.kind, "message": out.message, "url": url, "detected_at": times.now_text(),
               old: {"size": out.old.size, "root": b64.encode(out.old.root)},
               new: {"size": out.new.size, "root": b64.encode(out.new.root)} if out.new else None,
               **(extra or {})}
    files.append((f"{base}.json", (json.dumps(summary, indent=1) + "\n").encode("utf-8")))
    paths = []
    for name, data in files:
        path = folder / name
        _write_atomic(path, data)
        paths.append(path)
    return paths


def run_round(fetch: Fetch, verifier: note.Verifier | LogTrust, state_path: str | os.PathLike,
              evidence_dir: str | os.PathLike, *, url: str = "") -> Outcome:
    """One round: load the state, check, then store the new checkpoint when it
    holds or save the evidence when it does not. Raises MonitorError on bad
    local files only."""
    state = State.load(state_path, verifier)
    out = check_once(fetch, verifier, state)
    if out.kind in ("first", "grew"):
        State(out.new_note, out.new).save(state_path, url=url)
    elif out.alarm:
        out.evidence = save_evidence(out, evidence_dir, url=url)
    return out


def watch(fetch: Fetch, verifier: note.Verifier | LogTrust, state_path: str | os.PathLike,
          evidence_dir: str | os.PathLike, *, interval: float = 60.0, once: bool = False, url: str = "",
          report: Callable[[Outcome], None] = lambda out: None,
          sleep: Callable[[float], None] = time.sleep) -> int:
    """Run rounds until an alarm (exit 1), or one round with ``once``.

    Looping, a round that cannot check (server down, bad response, a
    checkpoint that does not verify or lacks the witness quorum) is reported and retried after
    ``interval``; only a proven misbehaviour stops the loop. Returns the exit
    code; KeyboardInterrupt ends a loop with 0.
    """
    while True:
        out = run_round(fetch, verifier, state_path, evidence_dir, url=url)
        report(out)
        if once or out.alarm:
            return out.exit_code
        try:
            sleep(interval)
        except KeyboardInterrupt:
            return EXIT_OK


# --- HTTP -----------------------------------------------------------------------------


def check_url(url: str) -> str:
    """The base URL without a trailing slash; MonitorError unless http(s) with a host."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise MonitorError(f"bad URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise MonitorError(f"the server URL must be http:// or https:// with a host, not {url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise MonitorError(f"the server URL must not carry a query, fragment or user info: {url!r}")
    return url.rstrip("/")


def http_fetch(url: str, *, timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
               max_bytes: int = MAX_RESPONSE, session=None) -> Fetch:
    """A ``fetch`` for the server at ``url`` over requests: no redirects (the
    monitor talks to the server it was given), time-outs, a size cap."""
    base = check_url(url)
    http = session or requests.Session()

    def fetch(path: str, params: dict | None) -> bytes:
        target = base + path
        try:
            with http.get(target, params=params, timeout=timeout, stream=True, allow_redirects=False,
                          headers={"User-Agent": "labelcheck-monitor", "Accept": "*/*"}) as resp:
                body = _read_capped(resp, max_bytes, target)
                if resp.status_code != 200:
                    raise FetchError(f"HTTP {resp.status_code} from {target}{_detail(body)}", resp.status_code)
                return body
        except requests.Timeout:
            raise FetchError(f"{target} timed out") from None
        except requests.ConnectionError as exc:
            raise FetchError(f"cannot connect to {base}: {_root_cause(exc)}") from None
        except requests.RequestException as exc:
            raise FetchError(f"request to {target} failed: {exc}") from None

    return fetch


def _read_capped(resp, limit: int, target: str) -> bytes:
    chunks, size = [], 0
    for chunk in resp.iter_content(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise FetchError(f"the response from {target} is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _detail(body: bytes) -> str:
    """The ``detail`` of an RFC 9457 problem body, when there is one."""
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return ""
    return f": {str(detail)[:200]}" if detail else ""


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    return str(exc)[:200] or type(exc).__name__
