"""The /v1 HTTP API of docs/protocol.md §5 (paths fixed; outside clients depend on them)."""

from __future__ import annotations

import json
import math
import re
import tempfile

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context
from werkzeug.wsgi import FileWrapper

from labelcheck.ledger import filters
from labelcheck.ledger.checkpoint import open_checkpoint
from labelcheck.ledger.note import Verifier
from labelcheck.pipeline import verify as pipeline
from labelcheck.pipeline.registry import parse_producer, parse_revoke, producer_json, registry_add, registry_revoke
from labelcheck.pipeline.verify import receipt_json
from labelcheck.util import b64
from labelcheck.util.times import file_stamp, now_text
from labelcheck.web import tokens
from labelcheck.web.readguard import BODY
from labelcheck.web.problems import Problem

bp = Blueprint("v1", __name__, url_prefix="/v1")

MAX_ENTRIES = 1000  # per GET /v1/entries (docs/protocol.md §8)
MAX_DEPTH = 64  # JSON nesting; an envelope needs 4
NDJSON = "application/x-ndjson"
_INT = re.compile(r"[0-9]{1,19}\Z")


def _state():
    return current_app.extensions["labelcheck"]


def services():
    """This process's :class:`~labelcheck.pipeline.services.Services`."""
    return _state().services


def _int_arg(name: str) -> int:
    """A required non-negative integer query parameter; 400 otherwise."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        raise Problem(400, f"query parameter {name!r} is required (a non-negative integer)")
    if not _INT.match(raw):
        raise Problem(400, f"query parameter {name!r} must be a non-negative integer, not {raw[:40]!r}")
    return int(raw)


def _json_body() -> object:
    """The request body as JSON: 415 unless it says JSON, 400 unless it parses."""
    req = request._get_current_object()  # one context lookup for the attributes below
    mimetype = req.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise Problem(415, "send the body as application/json")
    raw = req.environ.get(BODY)  # as ReadGuard read it (under gunicorn): no second read
    if raw is None or len(raw) > services().config.max_body:
        _check_body_size(req)
        raw = req.get_data(cache=True)
    try:
        data = _loads(raw)
    except (ValueError, RecursionError) as exc:
        raise Problem(400, f"the body is not valid JSON: {str(exc)[:200]}") from None
    # Nesting needs an opening bracket per level (in any of JSON's encodings),
    # so a body with few of them needs no walk.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _too_deep(data, MAX_DEPTH):
        raise Problem(400, f"the JSON is nested deeper than {MAX_DEPTH} levels")
    return data


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:40]} is out of range")
    return value


# One decoder for every request: json.loads with hooks builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def _loads(raw: bytes) -> object:
    """``json.loads(raw)`` with the hooks above: the encoding found as
    json.loads finds it (RFC 8259 §8.1 UTF-8, or UTF-16/32 by their zero
    bytes), decoded by the shared decoder."""
    return _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))


def _too_deep(value: object, limit: int) -> bool:
    """True when ``value`` nests containers deeper than ``limit`` (iterative,
    one level of containers at a time)."""
    level = [value] if isinstance(value, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list = []
        for node in level:
            below += [c for c in (node.values() if isinstance(node, dict) else node) if isinstance(c, (dict, list))]
        level = below
    return False


def _check_body_size(req=None) -> None:
    """413 for a body over the limit, also when it came without Content-Length
    (chunked): werkzeug then stops reading at the limit, so look one byte on."""
    req = req or request._get_current_object()
    limit = services().config.max_body
    length = req.content_length
    if length:
        if length > limit:
            raise Problem(413, f"the body is over {limit} bytes")
        return
    if len(req.get_data(cache=True)) >= limit and req.environ["wsgi.input"].read(1):
        raise Problem(413, f"the body is over {limit} bytes")


# --- reading the ledger --------------------------------------------------


@bp.get("/checkpoint")
def checkpoint() -> Response:
    """The latest signed checkpoint (C2SP tlog-checkpoint note); with
    witnesses configured, the newest one a quorum of them cosigned."""
    svc = services()
    if svc.witnessing.enabled:
        note = svc.witnessing.read_cosigned(svc.ledger.verifier_key)
        if note is None:
            raise Problem(503, "no checkpoint is cosigned by a quorum of witnesses yet; retry shortly",
                          headers={"Retry-After": "2"})
    else:
        note = svc.ledger.checkpoint()
    response = Response(note, mimetype="text/plain")
    response.headers["Content-Type"] = "text/plain; charset=utf-8"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/entries")
def entries() -> Response:
    """Entries ``start`` (inclusive) to ``end`` (exclusive), at most 1000: one
    line each, exactly the leaf bytes. Fewer may come back; clients page."""
    start = _int_arg("start")
    end = _int_arg("end")
    if end < start:
        raise Problem(400, f"end ({end}) is before start ({start})")
    ledger = services().ledger
    end = min(end, start + MAX_ENTRIES, ledger.size())
    lines = ledger.entries(start, end) if start < end else []
    body = b"".join(line + b"\n" for line in lines)
    return Response(body, mimetype=NDJSON)


@bp.get("/proof/inclusion")
def proof_inclusion() -> Response:
    """RFC 9162 §2.1.3 inclusion proof of entry ``index`` in the tree of ``size``."""
    index, size = _int_arg("index"), _int_arg("size")
    ledger = services().ledger
    current = ledger.size()
    if not index < size:
        raise Problem(400, f"index ({index}) must be less than size ({size})")
    if size > current:
        raise Problem(400, f"size ({size}) is beyond the ledger's size ({current})")
    hashes = ledger.inclusion_proof(index, size)
    return jsonify({"index": index, "size": size, "hashes": [b64.encode(h) for h in hashes]})


@bp.get("/proof/consistency")
def proof_consistency() -> Response:
    """RFC 9162 §2.1.4 consistency proof from tree size ``from`` to ``to``."""
    old, new = _int_arg("from"), _int_arg("to")
    ledger = services().ledger
    current = ledger.size()
    if not 0 < old <= new:
        raise Problem(400, f"need 0 < from <= to, got from={old} to={new}")
    if new > current:
        raise Problem(400, f"to ({new}) is beyond the ledger's size ({current})")
    hashes = ledger.consistency_proof(old, new)
    return jsonify({"from": old, "to": new, "hashes": [b64.encode(h) for h in hashes]})


@bp.get("/keys")
def keys() -> Response:
    """The ledger's verifier key and the producer registry."""
    svc = services()
    return jsonify({
        "ledger_vkey": svc.ledger.verifier_key,
        "origin": svc.ledger.origin,
        "producers": [producer_json(p) for p in svc.registry.producers],
        "registry_version": svc.registry.version,
    })


# --- verification --------------------------------------------------------


@bp.post("/verify")
def verify() -> Response:
    """Verify up to 100 items; every result is appended to the ledger in one
    batch and carries its receipt."""
    svc = services()
    wait = _state().bucket.take(request.remote_addr, request.headers)
    if wait:
        seconds = max(1, int(wait + 0.999))
        raise Problem(429, f"too many requests from your address; retry in {seconds} s",
                      headers={"Retry-After": str(seconds)})
    body = _json_body()
    items = pipeline.parse_items(body, max_items=svc.config.max_items)
    results = pipeline.verify_items(items, svc)
    return jsonify({"results": results})


# --- the registry (admin) ------------------------------------------------


@bp.post("/producers")
def add_producer() -> tuple[Response, int]:
    """Register a producer (one trust.json producer object, docs/protocol.md §8)."""
    svc = services()
    tokens.require(request.headers.get("Authorization"), _state().admin_token, "admin")
    producer = parse_producer(_json_body())
    record, receipt = svc.change_registry(lambda reg: registry_add(reg, producer, now_text()))
    return jsonify(_registry_answer(record, receipt)), 201


@bp.post("/producers/<path:key_id>/revoke")
def revoke_producer(key_id: str) -> Response:
    """Revoke a producer key (``{"revoked_at"?: RFC 3339}``, default now)."""
    svc = services()
    tokens.require(request.headers.get("Authorization"), _state().admin_token, "admin")
    _check_body_size()
    body = _json_body() if request.get_data(cache=True) else {}
    at = parse_revoke(body) or now_text()
    record, receipt = svc.change_registry(lambda reg: registry_revoke(reg, key_id, at, now_text()))
    return jsonify(_registry_answer(record, receipt))


def _registry_answer(record: dict, receipt) -> dict:
    producer = dict(record["producer"])
    return {"producer": producer, "key_id": producer["key_id"], "receipt": receipt_json(receipt)}


# --- export (regulator) --------------------------------------------------


EXPORT_ARGS = ("since", "until", "key_id", "status", "kind", "consistency_from")


@bp.get("/export")
def export() -> Response:
    """Stream the ledger bundle (NDJSON) for offline verification.

    Without filters, the complete bundle (``Ledger.export``). With any of
    ``since``, ``until`` (RFC 3339), ``key_id``, ``status``, ``kind``, a
    filtered bundle: the matching entries, each with its RFC 9162 inclusion
    proof (``ledger.bundle``); ``consistency_from=T`` adds the consistency
    proof from size T. The bundle is spooled to a temporary file, not memory,
    and sent only once whole: a failure half way is then a 500, never a
    shortened 200 (a filtered bundle cut short would still verify).
    """
    svc = services()
    tokens.require(request.headers.get("Authorization"), _state().regulator_token, "regulator")
    filt, consistency_from = _export_args()
    spool = tempfile.TemporaryFile()
    try:
        if filt.empty:
            svc.ledger.export(spool)
        else:
            _export_filtered(svc, spool, filt, consistency_from)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    stamp = file_stamp()
    name = f"labelcheck-ledger-{stamp}" + ("" if filt.empty else "-filtered")
    response = Response(stream_with_context(FileWrapper(spool, 64 * 1024)), mimetype=NDJSON,
                        direct_passthrough=True)
    response.call_on_close(spool.close)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.ndjson"'
    return response


def _export_args() -> tuple[filters.Filter, int | None]:
    """The export filter from the query string; 400 for anything unusable."""
    unknown = sorted(k for k in request.args if k not in EXPORT_ARGS)
    if unknown:
        raise Problem(400, f"unknown query parameter {unknown[0][:40]!r} (export takes {', '.join(EXPORT_ARGS)})")
    for name in request.args:
        if len(request.args.getlist(name)) > 1:
            raise Problem(400, f"query parameter {name!r} is given more than once")
    try:
        filt = filters.Filter.parse({k: request.args[k] for k in filters.FIELDS if k in request.args})
    except filters.FilterError as exc:
        hint = ""
        if " " in request.args.get("key_id", ""):
            hint = " (a key id's '+' must be sent as %2B in a query string)"
        raise Problem(400, str(exc) + hint) from None
    consistency_from = _int_arg("consistency_from") if "consistency_from" in request.args else None
    if consistency_from is not None and filt.empty:
        raise Problem(400, "consistency_from is for filtered exports (a complete bundle recomputes every root)")
    return filt, consistency_from


def _export_filtered(svc, out, filt: filters.Filter, consistency_from: int | None) -> None:
    """A filtered bundle at the latest checkpoint (``Ledger.export``)."""
    ledger = svc.ledger
    size = open_checkpoint(ledger.checkpoint(), Verifier.from_vkey(ledger.verifier_key)).size
    if consistency_from is not None and consistency_from > size:
        raise Problem(400, f"consistency_from ({consistency_from}) is beyond the checkpoint's size {size}")
    ledger.export(out, filter=filt, consistency_from=consistency_from)
