"""The public claim registry (docs/protocol.md §12): producers publish the
claims they sign, each becomes a ``claim`` ledger entry, and verification
looks media up in it when no claim on the page matches the bytes.

Publishing (``POST /v1/claims``): a claim is accepted when it verifies
(docs/protocol.md §3) as signed by a registered producer that is not revoked
at all; the signature is the authentication. A batch is all or nothing.
Publishing is idempotent by claim id: the same envelope again gets the same
answer and no new entry; another envelope under a taken id is a conflict.
Publishers serialise on a lock file, and on a shared database on a lock
there too, so the id check and the append are one step across processes and
nodes.

The ``claim`` entry holds the envelope itself (payload and signatures), so
anyone holding an export can re-check every registered claim offline, and
the fields the index needs: ``claim_id``, ``claim_digest`` (SHA-256 of the
payload bytes), ``envelope_sha256`` (of the envelope's canonical JSON),
``key_id`` (the issuer), ``producer``, ``content_sha256``, ``media_type``,
``category``, ``pdq`` and ``pdq_quality`` (or null), ``time`` and
``registry_version``.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from labelcheck.claims import FAILURES, verify_claim
from labelcheck.claims.envelope import decode_envelope
from labelcheck.claims.payload import decode_payload
from labelcheck.ledger import LedgerError, canonical
from labelcheck.ledger.claim_index import ClaimIndex, IndexedClaim
from labelcheck.ledger.pgstore import PUBLISH_LOCK, PgStore
from labelcheck.pipeline.errors import InvalidRequest, RegistryConflict, TooManyItems
from labelcheck.util import b64
from labelcheck.util.times import now_text
from labelcheck.util.locks import file_lock

PUBLISH_WAIT = 30.0  # seconds a publication waits for another node's, and at most holds it

# Reasons that mean the claim is not the signed word of a registered, unrevoked producer.
NOT_AUTHENTIC = frozenset({"unknown_key", "signature_invalid", "revoked_key", "key_revoked_later",
                           "not_producer", "issuer_not_signer"})


class ClaimRefused(InvalidRequest):
    """Claims that cannot be registered; ``problems`` has one entry per claim
    refused (``index``, ``claim_id``, ``reasons``, ``detail``) and
    ``forged`` says whether any failed authentication."""

    def __init__(self, message: str, problems: list[dict], forged: bool) -> None:
        super().__init__(message)
        self.problems, self.forged = problems, forged


class ClaimConflict(RegistryConflict):
    """A claim id already registered for another envelope (``problems`` as above)."""

    def __init__(self, message: str, problems: list[dict]) -> None:
        super().__init__(message)
        self.problems = problems


@dataclass
class Accepted:
    """A claim that passed every check, ready to append."""

    index: int
    record: dict

    @property
    def claim_id(self) -> str:
        return self.record["claim_id"]

    @property
    def envelope_sha256(self) -> str:
        return self.record["envelope_sha256"]


def parse_claims_body(body: object, *, max_items: int) -> list[object]:
    """The envelopes of a publish request: one envelope object, or
    ``{"claims": [...]}`` with at most ``max_items``."""
    if isinstance(body, dict) and "claims" in body:
        claims = body["claims"]
        if not isinstance(claims, list) or not claims or set(body) != {"claims"}:
            raise InvalidRequest('the body must be one claim envelope or {"claims": [envelope, ...]}')
        if len(claims) > max_items:
            raise TooManyItems(f"at most {max_items} claims per request, got {len(claims)}")
        return claims
    if isinstance(body, dict):
        return [body]
    raise InvalidRequest('the body must be one claim envelope or {"claims": [envelope, ...]}')


@contextlib.contextmanager
def publish_lock(svc) -> Iterator[None]:
    """An exclusive lock around the id check and the append: across this
    node's processes (a lock file) and, on a database shared by several
    nodes, across nodes (an advisory lock there, ``PgStore.held``)."""
    with file_lock(Path(svc.config.data_dir) / "claims.lock"):
        store = svc.ledger.store
        if not isinstance(store, PgStore):
            yield
            return
        try:
            with store.held(PUBLISH_LOCK, PUBLISH_WAIT):
                yield
        except psycopg.Error as exc:
            raise LedgerError(f"claim publication across nodes did not complete: {exc}") from exc


def publish(envelopes: list[object], svc) -> tuple[bool, list[dict]]:
    """Register ``envelopes``: ``(anything_new, answers)``, one answer per
    envelope in order. Raises ClaimRefused or ClaimConflict, writing nothing."""
    registry = svc.registry
    accepted, problems = [], []
    for i, envelope in enumerate(envelopes):
        outcome = check_claim(i, envelope, registry)
        (accepted if isinstance(outcome, Accepted) else problems).append(outcome)
    if problems:
        forged = any(set(p["reasons"]) & NOT_AUTHENTIC for p in problems)
        what = "not signed by a registered, unrevoked producer" if forged else "not valid"
        raise ClaimRefused(f"{len(problems)} of {len(envelopes)} claims refused, {what}: "
                           f"claims[{problems[0]['index']}]: {problems[0]['detail']}", problems, forged)
    with publish_lock(svc):
        index = svc.registry_lookup.index
        index.sync()
        known, new = _sort_out(accepted, index)
        receipts = svc.ledger.append([a.record for a in new]) if new else []
        for a, receipt in zip(new, receipts):
            known[a.claim_id] = (IndexedClaim.from_entry(receipt.index, a.record), receipt.leaf_hash)
        if receipts:
            index.add([row for row, _ in (known[a.claim_id] for a in new)], receipts[-1].index + 1)
    answers = []
    for a in accepted:
        row, leaf_hash = known[a.claim_id]
        # The entry alone, the same every time (proofs: GET /v1/proof/inclusion).
        receipt = {"index": row.entry, "leaf_hash": b64.encode(leaf_hash or svc.ledger.leaf_hash(row.entry))}
        answers.append({"claim_id": a.claim_id, "claim_digest": a.record["claim_digest"], "receipt": receipt})
    return bool(new), answers


def _sort_out(accepted: list[Accepted], index: ClaimIndex) -> tuple[dict, list[Accepted]]:
    """Claims already registered (by id: ``(row, None)``) and the new ones;
    ClaimConflict for an id taken by another envelope."""
    known: dict[str, tuple] = {}
    new, conflicts, batch = [], [], {}
    registered = index.by_ids(list({a.claim_id for a in accepted}))
    for a in accepted:
        have = registered.get(a.claim_id)
        seen = batch.get(a.claim_id)
        other = have.envelope_sha256 if have else (seen.envelope_sha256 if seen else None)
        if other is not None and other != a.envelope_sha256:
            conflicts.append({"index": a.index, "claim_id": a.claim_id, "reasons": ["claim_id_taken"],
                              "detail": f"claim id {a.claim_id!r} is registered for another envelope"})
        elif have is not None:
            known[a.claim_id] = (have, None)
        elif seen is None:
            batch[a.claim_id] = a
            new.append(a)
    if conflicts:
        raise ClaimConflict(f"claims[{conflicts[0]['index']}]: {conflicts[0]['detail']}", conflicts)
    return known, new


def check_claim(i: int, envelope: object, registry) -> Accepted | dict:
    """An Accepted claim, or the problem (a dict) that refuses it."""
    verdict = verify_claim(envelope, registry)
    failed = [r for r in verdict.reasons if r in FAILURES or r in NOT_AUTHENTIC]
    if not failed and "signature_ok" not in verdict.reasons:
        failed = ["signature_invalid"]
    if failed:
        detail = verdict.messages[0] if verdict.messages else f"refused: {', '.join(failed)}"
        if "key_revoked_later" in failed:
            detail = f"issuer: the producer {verdict.key_id} is revoked"
        return {"index": i, "claim_id": verdict.claim_id if isinstance(verdict.claim_id, str) else None,
                "reasons": failed, "detail": detail}
    normal, payload = normal_form(envelope)
    return Accepted(i, claim_record(normal, decode_payload(payload), verdict, registry))


def normal_form(envelope: object) -> tuple[dict, bytes]:
    """An envelope verify_claim has accepted, as the ledger keeps it (its
    three members, canonical base64) and its payload bytes."""
    if isinstance(envelope, dict):  # already checked: canonical base64, well-formed signatures
        sigs = [{"keyid": s["keyid"], "sig": s["sig"]} for s in envelope["signatures"]]
        normal = {"payloadType": envelope["payloadType"], "payload": envelope["payload"], "signatures": sigs}
        return normal, b64.decode_strict(envelope["payload"])
    env = decode_envelope(envelope)
    return {"payloadType": env.payload_type, "payload": b64.encode(env.payload),
            "signatures": [{"keyid": k, "sig": b64.encode(s)} for k, s in env.signatures]}, env.payload


def claim_record(envelope: dict, body: dict, verdict, registry) -> dict:
    """The ``claim`` ledger entry (no floats, docs/protocol.md §4, §12)."""
    content = body["content"]
    return {
        "kind": "claim",
        "time": now_text(),
        "claim_id": verdict.claim_id,
        "claim_digest": verdict.claim_digest,
        "envelope_sha256": hashlib.sha256(canonical.dumps(envelope)).hexdigest(),
        "key_id": verdict.key_id,
        "producer": dict(verdict.producer),
        "content_sha256": verdict.content_sha256,
        "media_type": verdict.media_type,
        "category": verdict.category,
        "pdq": content.get("pdq"),
        "pdq_quality": content.get("pdq_quality"),
        "envelope": envelope,
        "registry_version": registry.version,
    }
