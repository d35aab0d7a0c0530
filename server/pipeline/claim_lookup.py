"""Looking media up in the claim registry when no claim on the page matches
its bytes (docs/protocol.md §3, §12).

First by exact SHA-256: a registered claim for exactly these bytes gives
``verified``, reason ``registry_exact``. Then, when the server fetched the
pixels, by PDQ within PDQ_THRESHOLD bits: ``declared`` with the registered
claim's category, reason ``registry_similar`` and the ``distance``, never
``verified`` (perceptual hashes can be made to collide on purpose). A claim
whose bytes differ from the served ones (``content_mismatch``) but whose
registered PDQ matches the served image is reported as such: ``declared``,
``registry_similar`` beside ``content_mismatch``, instead of only invalid.

A registered claim counts only while it still verifies against the current
trust registry and its producer is not revoked at all.

Privacy: the ledger keeps no hash of unlabelled media that matched nothing
(no claim, no label signal, no registry match): its observed hash is left out
of the verification entry. The served image's PDQ is never recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from labelcheck.claims import pdq as pdqlib
from labelcheck.claims import FAILURES, verify_claim
from labelcheck.ledger import pdq_search
from labelcheck.ledger.claim_index import ClaimIndex, IndexedClaim

log = logging.getLogger("labelcheck")

# Hamming distance, in bits of 256, up to which two PDQ hashes are the same
# image: the reference's usual 31 (scripts/bench durable measures it).
PDQ_THRESHOLD = 31
MIN_QUALITY = 50  # below this the reference calls a PDQ hash unreliable (flat, tiny images)
# Seconds between looks at a log shared by several nodes for the claims the
# others published: one published through any node is found on every node
# within about this (docs/protocol.md §11, §12).
FOLLOW_EVERY = 0.5


class Analysis(list):
    """The label signals read from a fetched body, and its PDQ (or None)."""

    pdq: tuple[str, int] | None = None


class MediaReader:
    """A fetch analyzer: the label signals of ``labels(fp)``, plus the PDQ of
    an image when the PDQ packages are installed and ``wanted(sha256)`` says
    it can matter (PDQ costs about a millisecond of CPU an image, several
    times the fetch itself, so it is computed only when a lookup may use it)."""

    takes_digest = True  # the fetcher hands over the body's SHA-256

    def __init__(self, labels, wanted: Callable[[str | None], bool] | None = None) -> None:
        self.labels = labels
        self.wanted = wanted

    def wanting(self, wanted: Callable[[str | None], bool] | None) -> "MediaReader":
        """The same reader (equal to this one) deciding on PDQ with ``wanted``."""
        return MediaReader(self.labels, wanted)

    def __call__(self, fp, sha256: str | None = None) -> Analysis:
        out = Analysis(self.labels(fp) or [])
        if pdqlib.available() and (self.wanted is None or self.wanted(sha256)):
            fp.seek(0)
            try:
                out.pdq = pdqlib.image_pdq(fp)
            except Exception as exc:  # a decoder bug must not lose the labels
                log.warning("PDQ failed: %s", type(exc).__name__)
        return out

    def __eq__(self, other) -> bool:
        return isinstance(other, MediaReader) and other.labels == self.labels

    def __hash__(self) -> int:
        return hash(("pdq", self.labels))


class RegistryLookup:
    """One process's view of the registry index: the SQLite table, and the
    PDQ hashes in memory for sublinear search (``ledger.pdq_search``)."""

    def __init__(self, ledger, *, follow: bool = False) -> None:
        self.index = ClaimIndex(ledger)
        self.index.sync()
        self._lock = threading.Lock()
        self._search = pdq_search.PdqSearch() if pdq_search.available() else None
        self.follows = follow  # the log is shared with other nodes, which publish claims too
        self._followed = time.monotonic()
        self._following = threading.Lock()

    def follow(self) -> None:
        """With a log shared by several nodes, index the claims the others
        published since the last look: at most every FOLLOW_EVERY seconds,
        one thread at a time (the others go on with the index as it is). A
        node's own publications are indexed as it makes them, and a lone
        node's index never falls behind, so it has nothing to do."""
        if not self.follows or time.monotonic() - self._followed < FOLLOW_EVERY:
            return
        if not self._following.acquire(blocking=False):
            return
        try:
            self._followed = time.monotonic()
            self.index.sync()
        except Exception as exc:  # the registry is an extra: a failed look must not fail a verification
            log.warning("claim index: cannot follow the shared log: %s", exc)
        finally:
            self._following.release()

    def similar(self, pdq_hex: str, threshold: int = PDQ_THRESHOLD) -> list[tuple[int, IndexedClaim]]:
        """``(distance, claim)`` of registered claims within ``threshold``, nearest first."""
        if self._search is None:
            return []
        with self._lock:
            self._catch_up()
            found = self._search.search(bytes.fromhex(pdq_hex), threshold)
        claims = {c.row: c for c in self.index.by_rows([row for _, row in found])}
        return [(d, claims[row]) for d, row in found if row in claims]

    def needs_pdq(self, sha256: str | None) -> bool:
        """Whether a served image's PDQ could change its result: some
        registered claim has a PDQ, and these exact bytes are not registered
        (an exact match wins without it)."""
        return self.pdq_wanted()(sha256)

    def pdq_wanted(self) -> Callable[[str | None], bool]:
        """:meth:`needs_pdq` for the fetches of one request: the index is
        caught up once, not once per fetch, and with no registered PDQ at all
        the answer is no without a query."""
        if self._search is None:
            return _never
        self.follow()
        with self._lock:
            self._catch_up()
            if not len(self._search):
                return _never
        return lambda sha256: not (sha256 and self.index.by_sha256(sha256))

    def _catch_up(self) -> None:
        """Add claims indexed since (by any process); the caller holds the lock."""
        while True:
            rows = self.index.pdq_after(self._search.last_row)
            if not rows:
                return
            self._search.add([(r, bytes(h)) for r, h in rows])


def _never(sha256: str | None) -> bool:
    return False


def match_registry(items, results: list[dict], lookup: RegistryLookup, registry) -> None:
    """Amend ``results`` (of ``items``) with registry matches, in place."""
    if not all("content_match" in result["reasons"] for result in results):
        lookup.follow()
    for item, result in zip(items, results):
        if "content_match" in result["reasons"]:
            continue
        try:
            _match_one(item, result, lookup, registry)
        except Exception:  # the registry is an extra: a failure must not fail the verification
            log.exception("registry lookup failed")


def _served_pdq(item) -> str | None:
    fetched = item.fetch
    got = getattr(fetched.analysis, "pdq", None) if fetched is not None and fetched.ok else None
    return got[0] if got and got[1] >= MIN_QUALITY else None


def _match_one(item, result: dict, lookup: RegistryLookup, registry) -> None:
    observed = result["content_sha256"]["observed"]
    served = _served_pdq(item)
    if not item.claim_given:
        for claim in lookup.index.by_sha256(observed) if observed else ():
            verdict = _still_valid(claim, lookup, registry)
            if verdict is not None:
                return _exact(result, claim, verdict)
        for distance, claim in lookup.similar(served) if served else ():
            verdict = _still_valid(claim, lookup, registry)
            if verdict is not None:
                return _similar(result, claim, verdict, distance)
    elif served and result["reasons"].count("content_mismatch") and _only_mismatch(result):
        claim = lookup.index.by_id(result["claim_id"]) if result["claim_id"] else None
        if claim is None or claim.digest != result["claim_digest"] or claim.pdq is None:
            return
        distance = pdqlib.distance(claim.pdq, served)
        verdict = _still_valid(claim, lookup, registry) if distance <= PDQ_THRESHOLD else None
        if verdict is not None:
            _similar(result, claim, verdict, distance)


def _only_mismatch(result: dict) -> bool:
    return [r for r in result["reasons"] if r in FAILURES] == ["content_mismatch"]


def _still_valid(claim: IndexedClaim, lookup: RegistryLookup, registry):
    """The registered claim's verdict if it still verifies for its own bytes
    and its producer is not revoked (at any time), else None."""
    producer = registry.lookup(claim.key_id)
    if producer is None or producer.revoked_at is not None:
        return None
    envelope = lookup.index.entry(claim).get("envelope")
    verdict = verify_claim(envelope, registry, content_sha256=claim.sha256)
    return verdict if verdict.status == "verified" else None


def _match_info(kind: str, claim: IndexedClaim, verdict, distance: int) -> dict:
    return {"match": kind, "distance": distance, "claim_id": claim.claim_id, "claim_digest": claim.digest,
            "key_id": claim.key_id, "content_sha256": claim.sha256, "entry": claim.entry,
            "producer": verdict.producer}


def _exact(result: dict, claim: IndexedClaim, verdict) -> None:
    result.update(status="verified", category=verdict.category, producer=verdict.producer,
                  claim_id=claim.claim_id, claim_digest=claim.digest, key_id=claim.key_id,
                  label=verdict.label, registry=_match_info("exact", claim, verdict, 0))
    result["content_sha256"] = {"claimed": claim.sha256, "observed": result["content_sha256"]["observed"]}
    result["reasons"].append("registry_exact")


def _similar(result: dict, claim: IndexedClaim, verdict, distance: int) -> None:
    result.update(status="declared", category=verdict.category, producer=verdict.producer,
                  registry=_match_info("similar", claim, verdict, distance), distance=distance)
    if result.get("label") is None:
        result["label"] = verdict.label
    result["reasons"].append("registry_similar")
    result["messages"].append(f"visually similar (PDQ distance {distance} of 256 bits) to media registered "
                              f"by {verdict.producer['name']}; not the same bytes")


def ledger_fields(item, result: dict, record: dict) -> dict:
    """The verification entry ``record`` with the registry match, and without
    the observed hash of unlabelled media that matched nothing."""
    match = result.get("registry")
    if match is not None:
        record["registry"] = {k: match[k] for k in ("match", "distance", "claim_id", "claim_digest", "key_id",
                                                    "entry")}
        if record.get("key_id") is None:
            record["key_id"] = match["key_id"]
    elif not item.claim_given and not result["signals"]:
        record["content_sha256"] = {"claimed": None, "observed": None}
    return record
