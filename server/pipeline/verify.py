"""The verification pipeline behind ``POST /v1/verify`` (docs/protocol.md §3, §4).

For each item: check the claim (signature, registry, content binding), where
the binding is either the hash the client reported or the hash of bytes the
server fetched itself (reading embedded labels on the way), merge with the
label signals, and record it. All records of one request go to the ledger in
one append, and each result carries its receipt.

What a ledger entry keeps about the viewer: the page origin (scheme, host and
port), nothing else. Of the media URL only its origin is kept: a hash of the
full URL could be matched against a list of URLs, so it would not hide which
media was viewed; the observed content hash already identifies the bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlsplit

from labelcheck.claims import ClaimError, from_data_attribute, verify_claim
from labelcheck.fetch import fetch_all
from labelcheck.labels import merge, page_meta_signal, read_labels
from labelcheck.pipeline.claim_lookup import ledger_fields, match_registry
from labelcheck.pipeline.errors import InvalidRequest, TooManyItems
from labelcheck.util import b64
from labelcheck.util.text import is_unicode
from labelcheck.util.times import now_text

MAX_URL = 8192
MAX_SIGNAL_TEXT = 16384
FETCH_THREADS = 8
_HEX64 = re.compile(r"[0-9a-fA-F]{64}\Z")


@dataclass
class Item:
    """One media item of a request, checked for shape only."""

    claim: Any = None  # envelope dict, or the bytes of its JSON, or None
    claim_given: bool = False
    media_url: str | None = None
    content_sha256: str | None = None
    page_origin: str | None = None
    meta: str | None = None
    fetch: Any = None  # FetchResult, filled in by verify_items


def parse_items(body: object, *, max_items: int) -> list[Item]:
    """The items of a verify request; TooManyItems over ``max_items``,
    InvalidRequest on a bad shape."""
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise InvalidRequest('the body must be {"items": [ ... ]}')
    raw = body["items"]
    if len(raw) > max_items:
        raise TooManyItems(f"at most {max_items} items per request, got {len(raw)}")
    origins: dict[str, str | None] = {}  # the items of one page share its URL
    return [_parse_item(i, value, origins) for i, value in enumerate(raw)]


def _parse_item(i: int, value: object, origins: dict[str, str | None]) -> Item:
    where = f"items[{i}]"
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where} must be an object")
    item = Item()
    claim = value.get("claim")
    if claim is not None:
        if not isinstance(claim, (dict, str)):
            raise InvalidRequest(f"{where}.claim must be an envelope object or a string")
        item.claim, item.claim_given = decode_claim(claim), True
    item.media_url = _opt_str(value, "media_url", where, MAX_URL)
    sha = _opt_str(value, "content_sha256", where, 64)
    if sha is not None:
        if not _HEX64.match(sha):
            raise InvalidRequest(f"{where}.content_sha256 must be 64 hex digits (SHA-256)")
        item.content_sha256 = sha.lower()
    page_url = _opt_str(value, "page_url", where, MAX_URL)
    if page_url:
        origin = origins.get(page_url, origins)
        if origin is origins:
            origin = origins[page_url] = origin_of(page_url)
        item.page_origin = origin
    signals = value.get("signals")
    if signals is not None:
        if not isinstance(signals, dict):
            raise InvalidRequest(f"{where}.signals must be an object")
        meta = signals.get("meta")
        if isinstance(meta, (dict, list)):
            meta = json.dumps(meta, ensure_ascii=False)
        if meta is not None and not isinstance(meta, str):
            raise InvalidRequest(f"{where}.signals.meta must be the AIGC meta content (a string)")
        if meta is not None and len(meta) > MAX_SIGNAL_TEXT:
            raise InvalidRequest(f"{where}.signals.meta is over {MAX_SIGNAL_TEXT} characters")
        if meta is not None:
            _check_text(meta, f"{where}.signals.meta")
        item.meta = meta
    return item


def _opt_str(value: dict, key: str, where: str, limit: int) -> str | None:
    got = value.get(key)
    if got is None:
        return None
    if not isinstance(got, str):
        raise InvalidRequest(f"{where}.{key} must be a string")
    if len(got) > limit:
        raise InvalidRequest(f"{where}.{key} is over {limit} characters")
    _check_text(got, f"{where}.{key}")
    return got


def _check_text(text: str, where: str) -> None:
    if not is_unicode(text):
        raise InvalidRequest(f"{where} is not valid Unicode text (lone surrogate)")


def decode_claim(claim: dict | str) -> dict | bytes:
    """An envelope as given: an object, its JSON text, or base64url of its JSON
    (the ``data-labelcheck-claim`` attribute, padding optional). What does not
    decode is passed on as bytes, for the claim check to call malformed."""
    if isinstance(claim, dict):
        return claim
    text = claim.strip()
    if text.startswith("{"):
        return text.encode("utf-8", "surrogatepass")
    try:
        return from_data_attribute(text)
    except ClaimError:
        return text.encode("utf-8", "surrogatepass")


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, else None: never the path,
    query, fragment or user info (docs/protocol.md §4: no full page URLs)."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


@lru_cache(maxsize=1)
def server_version() -> str:
    try:
        return "labelcheck/" + version("labelcheck")
    except PackageNotFoundError:
        return "labelcheck/unknown"


# --- the pipeline --------------------------------------------------------


def verify_items(items: list[Item], svc) -> list[dict]:
    """Results for ``items`` in order, each with its ledger receipt."""
    if not items:
        return []
    registry = svc.registry  # one registry version for the whole request
    _fetch_all([i for i in items if i.media_url and not i.content_sha256], svc)
    results = [_verify_one(item, registry) for item in items]
    match_registry(items, results, svc.registry_lookup, registry)  # docs/protocol.md §12
    now = now_text()  # the time of recording, one for the request's entries
    records = [ledger_fields(item, result, _record(item, result, registry, now)) for item, result in zip(items, results)]
    receipts = svc.ledger.append(records)
    text: dict[bytes, str] = {}  # receipts of one append share their checkpoint and upper proof nodes
    for result, receipt in zip(results, receipts):
        result["receipt"] = receipt_json(receipt, text)
    return results


def receipt_json(receipt, text: dict[bytes, str] | None = None) -> dict:
    """A ledger receipt as the API returns it (docs/protocol.md §3): the entry's
    index and leaf hash, the signed checkpoint note of the commit that stored
    it, and the RFC 9162 §2.1.3 inclusion proof of the leaf in that tree.
    ``text`` remembers the checkpoint and proof hashes already written, for
    the receipts of one append."""
    if text is None:
        text = {}
    checkpoint = text.get(receipt.checkpoint)
    if checkpoint is None:
        checkpoint = text[receipt.checkpoint] = receipt.checkpoint.decode("utf-8")
    inclusion = []
    for h in receipt.inclusion:
        written = text.get(h)
        if written is None:
            written = text[h] = b64.encode(h)
        inclusion.append(written)
    return {"index": receipt.index, "leaf_hash": b64.encode(receipt.leaf_hash),
            "checkpoint": checkpoint, "inclusion": inclusion}


def _fetch_all(items: list[Item], svc) -> None:
    """Fetch media, reading embedded labels while the body is spooled: all
    fetches of the request share ``fetch_deadline`` seconds and run at most
    FETCH_THREADS at a time; late ones answer ``fetch_failed`` (``deadline``)."""
    if not items:
        return
    analyzer = svc.analyzer.wanting(svc.registry_lookup.pdq_wanted())  # one index look for the request
    results = fetch_all(svc.fetcher, [i.media_url for i in items], analyzer,
                        seconds=svc.config.fetch_deadline, per_request=FETCH_THREADS)
    for item, result in zip(items, results):
        item.fetch = result


class LabelReader:
    """Reads embedded labels from a fetched body. One instance per process:
    the fetcher reuses a cached analysis only for an equal analyzer."""

    def __init__(self, c2pa_anchors) -> None:
        self.c2pa_anchors = str(c2pa_anchors) if c2pa_anchors else None

    def __call__(self, fp):
        return read_labels(fp, c2pa_anchors=self.c2pa_anchors)

    def __eq__(self, other) -> bool:
        return isinstance(other, LabelReader) and other.c2pa_anchors == self.c2pa_anchors

    def __hash__(self) -> int:
        return hash(self.c2pa_anchors)


def _verify_one(item: Item, registry) -> dict:
    fetched = item.fetch
    if item.content_sha256:
        binding, observed = "client_sha256", item.content_sha256
    elif fetched is not None and fetched.ok:
        binding, observed = "fetched", fetched.sha256
    else:
        binding, observed = "none", None

    signals = []
    if item.meta is not None:
        signals.append(page_meta_signal(item.meta))
    if fetched is not None and fetched.ok and fetched.analysis:
        signals.extend(fetched.analysis)

    verdict = None
    if item.claim_given:
        verdict = verify_claim(item.claim, registry, content_sha256=observed).to_dict()
    merged = merge(verdict, signals)
    status, category = merged["status"], merged["category"]
    reasons = list(merged["reasons"])
    fetch_info = None
    if fetched is not None:
        fetch_info = {"ok": bool(fetched.ok), "reason": fetched.reason, "detail": fetched.detail,
                      "size": fetched.size, "media_type": fetched.media_type}
        if not fetched.ok:
            reasons.append("fetch_failed")
            if status == "none":
                status = "unverified"  # there was something to check; it could not be
    verdict = verdict or {}
    return {
        "status": status,
        "category": category,
        "reasons": reasons,
        "messages": list(verdict.get("messages") or []),
        "producer": verdict.get("producer"),
        "claim_id": _text(verdict.get("claim_id")),
        "claim_digest": _text(verdict.get("claim_digest")),
        "key_id": _text(verdict.get("key_id")),
        "binding": binding,
        "content_sha256": {"claimed": _text(verdict.get("content_sha256")), "observed": observed},
        "media_type": _text(verdict.get("media_type")) or (fetched.media_type if fetched is not None else None),
        "label": verdict.get("label"),
        "signals": list(merged.get("signals") or []),
        "conflicts": list(merged.get("conflicts") or []),
        "signals_omitted": merged.get("signals_omitted", 0),
        "fetch": fetch_info,
    }


def _text(value, limit: int = 512) -> str | None:
    """A string field of a ledger entry: what a malformed claim put there is
    kept only if it is short text (never a float or a structure)."""
    if isinstance(value, str) and len(value) <= limit and is_unicode(value):
        return value
    return None


def _record(item: Item, result: dict, registry, now: str) -> dict:
    """The ``verification`` ledger entry: what was checked and the result,
    recorded at ``now``. Strings, integers, lists and null only (no floats,
    docs/protocol.md §4)."""
    claimed = result["content_sha256"]
    record = {
        "kind": "verification",
        "time": now,
        "claim_digest": result["claim_digest"],
        "claim_id": result["claim_id"],
        "content_sha256": dict(claimed),
        "binding": result["binding"],
        "key_id": result["key_id"],
        "status": result["status"],
        "category": _text(result["category"]),
        "reasons": [str(r) for r in result["reasons"]],
        "page_origin": item.page_origin,
        "media_origin": origin_of(item.media_url) if item.media_url else None,
        "server": server_version(),
        "registry_version": registry.version,
    }
    if result["fetch"] is not None and not result["fetch"]["ok"]:
        record["fetch_reason"] = result["fetch"]["reason"]
    return record
