"""Verifying a claim against the trust registry (docs/protocol.md §2, §3).

Each signature is Ed25519 (RFC 8032) over ``PAE(payloadType, body)`` (DSSE
protocol.md). The first signature that is the payload's ``issuer`` is the
producer's; the others are countersignatures of registered propagators.
:func:`verify_claim` never raises: it returns a
:class:`~labelcheck.claims.verdict.Verdict` listing every check, passed or failed.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from labelcheck.claims.envelope import decode_envelope, pae
from labelcheck.claims.errors import ClaimError
from labelcheck.claims.payload import SHA256_HEX, decode_payload, payload_problems
from labelcheck.claims.verdict import LABEL_CATEGORY, Verdict
from labelcheck.util.times import as_utc, format_time, utc_now

if TYPE_CHECKING:
    from labelcheck.claims.trust import TrustRegistry

CLOCK_SKEW = timedelta(minutes=5)  # tolerated drift of a producer's clock

# Reasons that make a claim invalid; every other reason is a passed check or a note.
FAILURES = frozenset(
    {
        "oversized", "malformed", "signature_invalid", "unknown_key", "revoked_key",
        "not_producer", "issuer_not_signer", "label_invalid", "consent_missing",
        "expired", "not_yet_valid", "content_mismatch", "countersignature_invalid",
        "internal_error",
    }
)


def verify_claim(
    data: Any,
    registry: "TrustRegistry",
    *,
    content_sha256: str | None = None,
    now: datetime | None = None,
) -> Verdict:
    """Check a claim against the trust registry and, if given, the served bytes' hash.

    Never raises. The verdict's ``reasons`` list every check that ran:
    ``signature_ok``/``signature_invalid``, ``unknown_key``, ``revoked_key``
    (issued at or after the key's revocation) or ``key_revoked_later``
    (issued before it: still valid, noted), ``not_producer``,
    ``countersignature_ok``/``countersignature_invalid``/
    ``countersigner_unknown``/``countersigner_not_propagator``/
    ``countersigner_revoked``, ``expired``, ``not_yet_valid``,
    ``content_match``/``content_mismatch``, and the parse failures of
    :func:`~labelcheck.claims.parse.parse_envelope`. Status: ``invalid`` when
    any check failed, otherwise ``verified`` when the content matched, else
    ``unverified``.
    """
    verdict = Verdict(status="invalid")
    try:
        _verify(data, registry, content_sha256, as_utc(now) if now else utc_now(), verdict)
    except Exception as exc:  # a bug must not take the server down: report it
        verdict.add("internal_error", f"internal error while verifying: {type(exc).__name__}")
    if not FAILURES.isdisjoint(verdict.reasons):
        verdict.status = "invalid"
    elif "content_match" in verdict.reasons:
        verdict.status = "verified"
    else:
        verdict.status = "unverified"
    return verdict


def _verify(data: Any, registry: "TrustRegistry", served: str | None, now: datetime, v: Verdict) -> None:
    try:
        env = decode_envelope(data)
        v.claim_digest = hashlib.sha256(env.payload).hexdigest()
        body = decode_payload(env.payload)
    except ClaimError as exc:
        _add_error(v, exc)
        return
    parsed, problems = payload_problems(body, env.keyids)
    for exc in problems:
        _add_error(v, exc)
    _describe(v, parsed)
    issued_at = parsed.get("issued_at")
    signed = pae(env.payload_type, env.payload)
    issuer = v.key_id if v.key_id in env.keyids else None
    for keyid, sig in env.signatures:
        if keyid == issuer:
            _check_producer(v, registry, keyid, sig, signed, issued_at)
        else:
            _check_countersigner(v, registry, keyid, sig, signed, now)
    _check_times(v, parsed, now)
    _check_content(v, served)


def _add_error(v: Verdict, exc: ClaimError) -> None:
    for reason in exc.reasons:
        v.add(reason)
    v.add(exc.code, exc.message)


def _describe(v: Verdict, parsed: dict[str, Any]) -> None:
    """Copy what the payload says into the verdict, where it is well formed."""
    v.claim_id = parsed.get("id")
    v.key_id = parsed.get("issuer")
    v.content_sha256 = parsed.get("content_sha256")
    v.media_type = parsed.get("media_type")
    v.digital_source_type = parsed.get("digital_source_type")
    label = parsed.get("label")
    if label is not None:
        v.label = label
        v.category = LABEL_CATEGORY[label["Label"]]


def _check_producer(v: Verdict, registry, keyid: str, sig: bytes, signed: bytes, issued_at) -> None:
    producer = registry.lookup(keyid)
    if producer is None:
        v.add("unknown_key", f"issuer: key {keyid} is not in the trust registry")
        return
    v.producer = {"name": producer.name, "key_id": producer.key_id, "filing": producer.filing}
    if producer.verify(signed, sig):
        v.add("signature_ok")
    else:
        v.add("signature_invalid", f"signatures: the signature by {keyid} does not verify")
    if "producer" not in producer.roles:
        v.add("not_producer", f"issuer: {keyid} ({producer.name}) is not registered as a producer")
    if producer.revoked_at is not None:
        revoked = format_time(producer.revoked_at)
        if issued_at is None or issued_at >= producer.revoked_at:
            v.add("revoked_key", f"issuer: key {keyid} was revoked at {revoked}, before this claim was issued")
        else:
            v.add("key_revoked_later", f"note: key {keyid} was revoked at {revoked}, after this claim was issued")


def _check_countersigner(v: Verdict, registry, keyid: str, sig: bytes, signed: bytes, now: datetime) -> None:
    who = registry.lookup(keyid)
    if who is None:
        v.add("countersigner_unknown", f"signatures: countersigner {keyid} is not in the trust registry (ignored)")
        return
    if not who.verify(signed, sig):
        v.add("countersignature_invalid", f"signatures: the countersignature by {keyid} does not verify")
        return
    if "propagator" not in who.roles:
        v.add("countersigner_not_propagator", f"signatures: {keyid} is not registered as a propagator (ignored)")
    elif who.revoked_at is not None and who.revoked_at <= now:
        v.add("countersigner_revoked", f"signatures: countersigner {keyid} is revoked (ignored)")
    else:
        v.add("countersignature_ok")
        v.countersigners.append(keyid)


def _check_times(v: Verdict, parsed: dict[str, Any], now: datetime) -> None:
    issued_at, expires_at = parsed.get("issued_at"), parsed.get("expires_at")
    if expires_at is not None and now >= expires_at:
        v.add("expired", f"expires_at: the claim expired at {format_time(expires_at)}")
    if issued_at is not None and issued_at > now + CLOCK_SKEW:
        v.add("not_yet_valid", f"issued_at: {format_time(issued_at)} is in the future")


def _check_content(v: Verdict, served: str | None) -> None:
    if served is None or v.content_sha256 is None:
        return
    got = served.lower() if isinstance(served, str) else ""
    if got == v.content_sha256:
        v.add("content_match")
    elif not SHA256_HEX.fullmatch(got):
        v.add("content_mismatch", "content.sha256: the served content's hash is not 64 hex digits")
    else:
        v.add("content_mismatch", f"content.sha256: the claim is for {v.content_sha256}, the served bytes are {got}")
