"""Signing claims: DSSE envelopes signed by a producer, countersigned by
propagators (docs/protocol.md §2; DSSE protocol.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labelcheck.claims.envelope import (
    MAX_ENVELOPE_BYTES, PAYLOAD_TYPE, decode_base64, decode_envelope, envelope_size, pae,
)
from labelcheck.claims.errors import ClaimError, kind, malformed
from labelcheck.claims.strictjson import dumps_compact
from labelcheck.util import b64

if TYPE_CHECKING:
    from labelcheck.ledger.note import Signer


def sign_envelope(payload: dict[str, Any] | bytes, *signers: "Signer") -> dict[str, Any]:
    """A DSSE envelope of ``payload`` signed by each signer in order.

    The producer (the payload's ``issuer``) signs first, then propagators
    countersign. A dict payload is written as compact UTF-8 JSON; bytes are
    signed as they are. Raises :class:`ClaimError` when there is no signer,
    the first signer is not the issuer, or the envelope would be oversized.
    """
    if not signers:
        raise ClaimError("malformed", "signatures: at least one signer is needed", field="signatures")
    if isinstance(payload, dict):
        issuer = payload.get("issuer")
        if issuer is not None and issuer != signers[0].key_id:
            raise ClaimError(
                "issuer_not_signer",
                f"issuer: {issuer} must sign first, not {signers[0].key_id}",
                field="issuer",
            )
        try:
            payload = dumps_compact(payload)
        except (TypeError, ValueError) as exc:
            raise malformed("payload", f"cannot be written as JSON: {exc}") from None
    elif not isinstance(payload, bytes):
        raise malformed("payload", f"must be a dict or bytes, got {kind(payload)}")
    envelope = {"payloadType": PAYLOAD_TYPE, "payload": b64.encode(payload), "signatures": []}
    for signer in signers:
        envelope = add_signature(envelope, signer)
    return envelope


def add_signature(envelope: dict[str, Any], signer: "Signer") -> dict[str, Any]:
    """A copy of ``envelope`` with ``signer``'s signature appended.

    Raises :class:`ClaimError` when the envelope is malformed, the signer has
    already signed, or the result would exceed the size limit.
    """
    if not isinstance(envelope, dict):
        raise malformed(None, f"envelope must be an object, got {kind(envelope)}")
    env = decode_envelope(envelope) if envelope.get("signatures") else None
    if env is None:  # a fresh envelope: check the fields we need
        if envelope.get("payloadType") != PAYLOAD_TYPE:
            raise malformed("payloadType", f"must be {PAYLOAD_TYPE!r}", "payload_type_invalid")
        payload = decode_base64(envelope.get("payload"), "payload")
        keyids: tuple[str, ...] = ()
    else:
        payload, keyids = env.payload, env.keyids
    if signer.key_id in keyids:
        raise malformed("signatures", f"{signer.key_id} has already signed")
    sig = signer.sign(pae(PAYLOAD_TYPE, payload))
    out = dict(envelope)
    out["signatures"] = list(envelope.get("signatures") or []) + [
        {"keyid": signer.key_id, "sig": b64.encode(sig)}
    ]
    size = envelope_size(out)
    if size is not None and size > MAX_ENVELOPE_BYTES:
        raise ClaimError("oversized", f"envelope would be {size} bytes, over {MAX_ENVELOPE_BYTES}")
    return out
