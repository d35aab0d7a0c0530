"""Signed label claims: DSSE v1 envelopes around a JSON payload (docs/protocol.md §2).

The envelope (https://github.com/secure-systems-lab/dsse, envelope.md)::

    {"payloadType": PAYLOAD_TYPE, "payload": b64(body),
     "signatures": [{"keyid": "name+hash8hex", "sig": b64(Ed25519(PAE))}]}

Each signature is Ed25519 (RFC 8032) over ``PAE(payloadType, body)`` (DSSE
protocol.md). Signatures cover exact bytes, so nothing is canonicalised.
The first signature is the producer's (its key id is the payload's
``issuer``); any others are countersignatures of registered propagators.

This module is strict where DSSE is lenient: only standard base64 in its
canonical form, duplicate JSON keys refused anywhere, a 64 KiB cap, keyids
required. ``parse_envelope`` raises :class:`ClaimError` (the only error that
leaves this module's API); ``verify_claim`` never raises and returns a
:class:`~server.verdict.Verdict` listing every check, passed or failed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from labelcheck.claims.verdict import LABEL_CATEGORY, Verdict

if TYPE_CHECKING:  # trust imports this module for its time helpers
    from labelcheck.ledger.note import Signer
    from labelcheck.claims.trust import TrustRegistry

PAYLOAD_TYPE = "application/vnd.labelcheck.claim+json"
MAX_ENVELOPE_BYTES = 64 * 1024
MAX_SIGNATURES = 100
CLOCK_SKEW = timedelta(minutes=5)  # tolerated drift of a producer's clock
SYNTHESIS_KINDS = ("text_imitation", "voice", "face", "immersive_scene", "other_generation")
_SYNTHESIS_SET = frozenset(SYNTHESIS_KINDS)
CONSENT_KINDS = frozenset({"face", "voice"})  # a real person's biometrics
# GB 45438 Annex E: these three are required; ContentPropagator, PropagateID,
# ReservedCode1 and ReservedCode2 may follow. Every value is a string.
AIGC_REQUIRED = ("Label", "ContentProducer", "ProduceID")

# Reasons that make a claim invalid; every other reason is a passed check or a note.
FAILURES = frozenset(
    {
        "oversized", "malformed", "signature_invalid", "unknown_key", "revoked_key",
        "not_producer", "issuer_not_signer", "label_invalid", "consent_missing",
        "expired", "not_yet_valid", "content_mismatch", "countersignature_invalid",
        "internal_error",
    }
)

_KEY_ID = re.compile(r"[^\s+]{1,200}\+[0-9a-f]{8}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
_RFC3339 = re.compile(  # ASCII digits only: \d would admit other scripts' digits
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:[Zz]|[+-]00:00)"
)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class ClaimError(ValueError):
    """A claim that cannot be accepted, with the reason code of docs/protocol.md §3.

    ``code`` is the verdict reason (``malformed``, ``oversized``,
    ``issuer_not_signer``, ``label_invalid``, ``consent_missing``);
    ``detail`` refines ``malformed`` (``not_json``, ``duplicate_key``,
    ``not_base64``, ``payload_type_invalid``); ``field`` names the offending
    field (dotted path) or is None for the whole envelope.
    """

    def __init__(self, code: str, message: str, *, field: str | None = None, detail: str | None = None):
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message
        self.detail = detail

    @property
    def reasons(self) -> list[str]:
        return [self.code] + ([self.detail] if self.detail else [])


def _malformed(field: str | None, why: str, detail: str | None = None) -> ClaimError:
    where = f"{field}: " if field else ""
    return ClaimError("malformed", f"{where}{why}", field=field, detail=detail)


# --- RFC 3339 times -------------------------------------------------------


def parse_time(text: Any) -> datetime:
    """An RFC 3339 UTC time (``Z`` or ``+00:00``) as an aware datetime.

    Raises ValueError for anything else, including local offsets: claims
    state times in UTC so that comparing them needs no time-zone data.
    """
    if not isinstance(text, str):
        raise ValueError("must be an RFC 3339 UTC time string")
    if not _RFC3339.fullmatch(text):
        raise ValueError(f"must be an RFC 3339 UTC time like 2025-09-01T12:00:00Z, got {_show(text)}")
    try:  # the pattern above admits only what fromisoformat reads as RFC 3339
        when = datetime.fromisoformat(text.upper())
    except ValueError as exc:
        raise ValueError(f"not a valid date and time: {exc}") from None
    return when if when.tzinfo is timezone.utc else when.replace(tzinfo=timezone.utc)


def format_time(when: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (whole seconds, UTC); naive datetimes are UTC."""
    return _utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        return when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


# --- DSSE ------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding (DSSE protocol.md).

    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``, lengths as ASCII
    decimal byte counts of the UTF-8 type and the raw body.
    """
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode_strict(text: Any, field: str) -> bytes:
    """Standard base64 (RFC 4648 §4) with padding, in canonical form only."""
    if not isinstance(text, str):
        raise _malformed(field, f"must be a base64 string, got {_kind(text)}", "not_base64")
    try:
        raw = text.encode("ascii")
        data = binascii.a2b_base64(raw, strict_mode=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise _malformed(field, "is not standard base64 (RFC 4648 §4, with padding)", "not_base64") from None
    if binascii.b2a_base64(data, newline=False) != raw:  # e.g. non-zero pad bits: same bytes, other text
        raise _malformed(field, "is not canonical standard base64", "not_base64")
    return data


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):  # rare: only then find which key
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


# One decoder for all: json.loads(**kwargs) would build a new one per call.
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)


def loads_strict(data: bytes | str, what: str) -> Any:
    """JSON (RFC 8259) as UTF-8, refusing duplicate keys, NaN/Infinity and lone surrogates.

    Raises :class:`ClaimError` (``malformed``) naming ``what`` and why.
    """
    try:
        raw = data if isinstance(data, bytes) else data.encode("utf-8")
        text = raw.decode("utf-8")
    except UnicodeError:
        raise _malformed(what, "is not valid UTF-8", "not_json") from None
    try:
        value = _DECODER.decode(text)
    except _DuplicateKey as exc:
        raise _malformed(what, f"has a duplicate JSON key {_show(exc.key)}", "duplicate_key") from None
    except RecursionError:
        raise _malformed(what, "is nested too deeply", "not_json") from None
    except ValueError as exc:  # JSONDecodeError, huge integers, NaN
        raise _malformed(what, f"is not valid JSON: {exc}", "not_json") from None
    if _SURROGATE_ESCAPE.search(raw):  # rare; only then pay for the full check
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise _malformed(what, "holds an unpaired UTF-16 surrogate escape", "not_json") from None
    return value


def dumps_compact(value: Any) -> bytes:
    """Compact UTF-8 JSON, the form claims are written in."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class _Envelope(NamedTuple):
    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]  # (keyid, 64-byte signature)
    keyids: tuple[str, ...]


def _envelope_size(data: Any) -> int | None:
    if isinstance(data, bytes):
        return len(data)
    if isinstance(data, str):
        return len(data) if len(data) > MAX_ENVELOPE_BYTES * 4 else len(data.encode("utf-8", "surrogatepass"))
    if isinstance(data, dict):
        try:
            return len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))
        except (TypeError, ValueError, RecursionError):
            return None
    return None


def _decode_envelope(data: Any) -> _Envelope:
    """Check the DSSE envelope's structure and decode it; raises ClaimError."""
    size = len(data) if type(data) is bytes else _envelope_size(data)
    if size is not None and size > MAX_ENVELOPE_BYTES:
        raise ClaimError(
            "oversized", f"envelope is {size} bytes, over the {MAX_ENVELOPE_BYTES}-byte limit"
        )
    if isinstance(data, (bytes, str)):
        data = loads_strict(data, "envelope")
    elif not isinstance(data, dict):
        raise _malformed(None, f"envelope must be JSON text or an object, got {_kind(data)}")
    if not isinstance(data, dict):
        raise _malformed(None, f"envelope must be a JSON object, got {_kind(data)}")
    ptype = data.get("payloadType")
    if ptype != PAYLOAD_TYPE:
        raise _malformed(
            "payloadType", f"must be {PAYLOAD_TYPE!r}, got {_show(ptype)}", "payload_type_invalid"
        )
    if "payload" not in data:
        raise _malformed("payload", "is missing")
    payload = _b64decode_strict(data["payload"], "payload")
    sigs = data.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise _malformed("signatures", "must be a non-empty list")
    if len(sigs) > MAX_SIGNATURES:
        raise _malformed("signatures", f"has more than {MAX_SIGNATURES} entries")
    out: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    for i, entry in enumerate(sigs):
        if type(entry) is not dict:
            raise _malformed(f"signatures[{i}]", f"must be an object, got {_kind(entry)}")
        keyid = entry.get("keyid")
        if (
            type(keyid) is not str
            or _KEY_ID.fullmatch(keyid) is None
            or not (keyid.isascii() or _is_utf8(keyid))
        ):
            raise _malformed(f"signatures[{i}].keyid", f"must be a key id 'name+hash8hex', got {_show(keyid)}")
        if keyid in seen:
            raise _malformed(f"signatures[{i}].keyid", f"{keyid} signs more than once")
        seen.add(keyid)
        sig = _b64decode_strict(entry.get("sig"), "signatures[%d].sig" % i)
        if len(sig) != 64:
            raise _malformed(f"signatures[{i}].sig", f"must be a 64-byte Ed25519 signature, got {len(sig)} bytes")
        out.append((keyid, sig))
    return _Envelope(ptype, payload, tuple(out), tuple(seen) if len(out) == 1 else tuple(k for k, _ in out))


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- payload -----------------------------------------------------------------


def _payload_problems(body: dict[str, Any], keyids: tuple[str, ...] | None) -> tuple[dict[str, Any], list[ClaimError]]:
    """Check a decoded payload against docs/protocol.md §2.

    Returns the fields found well formed (``id``, ``issuer``, ``issued_at``
    and ``expires_at`` as datetimes, ``content_sha256``, ``media_type``,
    ``label``) and every problem found, in field order; ``keyids`` None skips
    the issuer/signer check (used before signing).
    """
    problems: list[ClaimError] = []
    parsed: dict[str, Any] = {}

    def bad(field: str, why: str, code: str = "malformed") -> None:
        problems.append(ClaimError(code, f"{field}: {why}", field=field))

    v = body.get("v")
    if type(v) is not int or v != 1:
        bad("v", f"must be the number 1, got {_show(v)}")
    cid = body.get("id")
    if not isinstance(cid, str) or not cid or len(cid) > 256:
        bad("id", f"must be a non-empty string of at most 256 characters, got {_show(cid)}")
    else:
        parsed["id"] = cid
    for name, required in (("issued_at", True), ("expires_at", False)):
        if name not in body and not required:
            continue
        try:
            parsed[name] = parse_time(body.get(name))
        except ValueError as exc:
            bad(name, str(exc) if name in body else "is missing")
    if "issued_at" in parsed and "expires_at" in parsed and parsed["expires_at"] <= parsed["issued_at"]:
        bad("expires_at", "must be later than issued_at")
    issuer = body.get("issuer")
    if not isinstance(issuer, str) or not _KEY_ID.fullmatch(issuer):
        bad("issuer", f"must be the producer's key id 'name+hash8hex', got {_show(issuer)}")
    else:
        parsed["issuer"] = issuer
        if keyids is not None and issuer not in keyids:
            bad("issuer", f"{issuer} is not among the signers ({', '.join(keyids)})", "issuer_not_signer")
    _content_problems(body.get("content"), parsed, bad)
    _aigc_problems(body.get("aigc"), parsed, bad)
    _synthesis_problems(body, bad)
    for name in ("filing", "digital_source_type"):
        if name in body and not isinstance(body[name], str):
            bad(name, f"must be a string, got {_kind(body[name])}")
        elif name in body:
            parsed[name] = body[name]
    assessment = body.get("assessment")
    if "assessment" in body:
        if not isinstance(assessment, dict) or not isinstance(assessment.get("ref"), str):
            bad("assessment", 'must be {"ref": str, "sha256": hex}')
        elif "sha256" in assessment and not _is_sha256(assessment["sha256"]):
            bad("assessment.sha256", "must be 64 lowercase hex digits")
    return parsed, problems


def _content_problems(content: Any, parsed: dict[str, Any], bad) -> None:
    if not isinstance(content, dict):
        bad("content", f"must be an object with sha256 and media_type, got {_kind(content)}")
        return
    sha = content.get("sha256")
    if _is_sha256(sha):
        parsed["content_sha256"] = sha
    else:
        bad("content.sha256", f"must be 64 lowercase hex digits, got {_show(sha)}")
    mt = content.get("media_type")
    if isinstance(mt, str) and _MEDIA_TYPE.fullmatch(mt):
        parsed["media_type"] = mt
    else:
        bad("content.media_type", f"must be a media type like image/png, got {_show(mt)}")
    if "url" in content and not isinstance(content["url"], str):
        bad("content.url", f"must be a string, got {_kind(content['url'])}")


def _aigc_problems(aigc: Any, parsed: dict[str, Any], bad) -> None:
    if not isinstance(aigc, dict):
        bad("aigc", f"must be an object of GB 45438 Annex E fields, got {_kind(aigc)}")
        return
    label = aigc.get("Label")
    if isinstance(label, str) and label in LABEL_CATEGORY:
        parsed["label"] = {k: v for k, v in aigc.items() if isinstance(v, str)}
    else:
        bad("aigc.Label", f'must be "1", "2" or "3", got {_show(label)}', "label_invalid")
    for name in AIGC_REQUIRED[1:]:
        if name not in aigc:
            bad(f"aigc.{name}", "is missing")
    for name, value in aigc.items():
        if name != "Label" and not isinstance(value, str):
            bad(f"aigc.{name}", f"must be a string, got {_kind(value)}")


def _synthesis_problems(body: dict[str, Any], bad) -> None:
    kinds = body.get("synthesis", ())
    if type(kinds) is not list and "synthesis" in body:
        bad("synthesis", f"must be a list of kinds, got {_kind(kinds)}")
        kinds = ()
    needs = set()
    for k in kinds:
        if type(k) is not str or k not in _SYNTHESIS_SET:
            bad("synthesis", f"{_show(k)} is not one of {', '.join(SYNTHESIS_KINDS)}")
        elif k in CONSENT_KINDS:
            needs.add(k)
    consent = body.get("consent")
    if consent is not None or "consent" in body:
        if not isinstance(consent, dict) or not isinstance(consent.get("obtained"), bool):
            bad("consent", 'must be {"obtained": bool, "record_sha256": hex}')
            consent = None
        elif "record_sha256" in consent and not _is_sha256(consent["record_sha256"]):
            bad("consent.record_sha256", "must be 64 lowercase hex digits")
            consent = None
    if needs and not (consent and consent.get("obtained") is True and "record_sha256" in consent):
        bad(
            "consent",
            f"synthesis includes {' and '.join(sorted(needs))}: a consent record "
            '{"obtained": true, "record_sha256": …} is required',
            "consent_missing",
        )


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def _decode_payload(payload: bytes) -> dict[str, Any]:
    body = loads_strict(payload, "payload")
    if not isinstance(body, dict):
        raise _malformed("payload", f"must be a JSON object, got {_kind(body)}")
    return body


# --- parsed claims -----------------------------------------------------------


@dataclass(frozen=True)
class ParsedClaim:
    """A structurally valid claim; its signatures are not yet checked."""

    payload_type: str
    payload: bytes
    body: dict[str, Any]
    signatures: tuple[tuple[str, bytes], ...]
    issued_at: datetime
    expires_at: datetime | None

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()

    @property
    def id(self) -> str:
        return self.body["id"]

    @property
    def issuer(self) -> str:
        return self.body["issuer"]

    @property
    def keyids(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.signatures)

    @property
    def content_sha256(self) -> str:
        return self.body["content"]["sha256"]

    @property
    def media_type(self) -> str:
        return self.body["content"]["media_type"]

    @property
    def label(self) -> dict[str, Any]:
        return self.body["aigc"]

    @property
    def category(self) -> str:
        return LABEL_CATEGORY[self.body["aigc"]["Label"]]

    def signed_bytes(self) -> bytes:
        return pae(self.payload_type, self.payload)


def parse_envelope(data: bytes | str | dict) -> ParsedClaim:
    """Decode and check a claim's structure (no keys needed).

    Raises :class:`ClaimError` with the first problem found: ``oversized``,
    ``malformed`` (with ``detail``), ``issuer_not_signer``, ``label_invalid``
    or ``consent_missing``, naming the field and why.
    """
    env = _decode_envelope(data)
    body = _decode_payload(env.payload)
    parsed, problems = _payload_problems(body, env.keyids)
    if problems:
        raise problems[0]
    return ParsedClaim(env.payload_type, env.payload, body, env.signatures,
                       parsed["issued_at"], parsed.get("expires_at"))


def claim_digest(data: bytes | str | dict) -> str:
    """SHA-256 hex of the envelope's payload bytes: the claim's stable id.

    Independent of signature order and of countersignatures added later.
    Raises :class:`ClaimError` when the envelope cannot be decoded.
    """
    return hashlib.sha256(_decode_envelope(data).payload).hexdigest()


# --- building and signing ------------------------------------------------------


def build_payload(
    content_sha256: str,
    media_type: str,
    label: str | int,
    *,
    issuer: "str | Signer",
    synthesis: list[str] | None = None,
    consent: dict[str, Any] | str | None = None,
    assessment: dict[str, Any] | str | None = None,
    filing: str | None = None,
    url: str | None = None,
    producer_code: str | None = None,
    produce_id: str | None = None,
    expires_at: datetime | timedelta | str | None = None,
    now: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A claim payload (docs/protocol.md §2), checked before it is returned.

    ``issuer`` is the producer's key id (or its Signer). ``consent`` is the
    consent dict or just the record's sha256 (then ``obtained`` is true);
    ``assessment`` the dict or just its ``ref``. ``producer_code`` and
    ``produce_id`` fill GB 45438 ``ContentProducer`` / ``ProduceID``
    (defaults: the issuer's key name and the claim id). ``expires_at`` may be
    relative (a timedelta from ``now``). ``extra`` adds fields: ``id``,
    ``digital_source_type``, an ``aigc`` dict of optional Annex E fields, or
    new top-level fields. Raises :class:`ClaimError`.
    """
    issuer_id = getattr(issuer, "key_id", issuer)
    if now is not None and not isinstance(now, datetime):
        raise _malformed("issued_at", "now must be a datetime")
    if expires_at is not None and not isinstance(expires_at, (datetime, timedelta, str)):
        raise _malformed("expires_at", "must be a datetime, a timedelta or an RFC 3339 string")
    if synthesis is not None and not isinstance(synthesis, (list, tuple)):
        raise _malformed("synthesis", f"must be a list of kinds, got {_kind(synthesis)}")
    now = _utc(now) if now else utc_now()
    cid = extra.pop("id", None) or f"urn:uuid:{uuid.uuid4()}"
    aigc_extra = extra.pop("aigc", None) or {}
    body: dict[str, Any] = {"v": 1, "id": cid, "issued_at": format_time(now)}
    if isinstance(expires_at, timedelta):
        expires_at = now + expires_at
    if expires_at is not None:
        body["expires_at"] = expires_at if isinstance(expires_at, str) else format_time(expires_at)
    body["issuer"] = issuer_id
    content = {"sha256": content_sha256, "media_type": media_type}
    if url is not None:
        content["url"] = url
    body["content"] = content
    label = str(label)
    key_name = issuer_id.split("+", 1)[0] if isinstance(issuer_id, str) else ""
    aigc = {"Label": label, "ContentProducer": producer_code or key_name, "ProduceID": produce_id or cid}
    for name, value in aigc_extra.items():
        if name in aigc:
            raise _malformed(f"aigc.{name}", "is set by a named argument")
        aigc[name] = value
    body["aigc"] = aigc
    if synthesis is not None:
        body["synthesis"] = list(synthesis)
    if consent is not None:
        body["consent"] = {"obtained": True, "record_sha256": consent} if isinstance(consent, str) else consent
    if assessment is not None:
        body["assessment"] = {"ref": assessment} if isinstance(assessment, str) else assessment
    if filing is not None:
        body["filing"] = filing
    for name, value in extra.items():
        if name in body:
            raise _malformed(name, "is set by a named argument")
        body[name] = value
    _, problems = _payload_problems(body, None)
    if problems:
        raise problems[0]
    return body


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
            raise _malformed("payload", f"cannot be written as JSON: {exc}") from None
    elif not isinstance(payload, bytes):
        raise _malformed("payload", f"must be a dict or bytes, got {_kind(payload)}")
    envelope = {"payloadType": PAYLOAD_TYPE, "payload": b64encode(payload), "signatures": []}
    for signer in signers:
        envelope = add_signature(envelope, signer)
    return envelope


def add_signature(envelope: dict[str, Any], signer: "Signer") -> dict[str, Any]:
    """A copy of ``envelope`` with ``signer``'s signature appended.

    Raises :class:`ClaimError` when the envelope is malformed, the signer has
    already signed, or the result would exceed the size limit.
    """
    if not isinstance(envelope, dict):
        raise _malformed(None, f"envelope must be an object, got {_kind(envelope)}")
    env = _decode_envelope(envelope) if envelope.get("signatures") else None
    if env is None:  # a fresh envelope: check the fields we need
        if envelope.get("payloadType") != PAYLOAD_TYPE:
            raise _malformed("payloadType", f"must be {PAYLOAD_TYPE!r}", "payload_type_invalid")
        payload = _b64decode_strict(envelope.get("payload"), "payload")
        keyids: tuple[str, ...] = ()
    else:
        payload, keyids = env.payload, env.keyids
    if signer.key_id in keyids:
        raise _malformed("signatures", f"{signer.key_id} has already signed")
    sig = signer.sign(pae(PAYLOAD_TYPE, payload))
    out = dict(envelope)
    out["signatures"] = list(envelope.get("signatures") or []) + [
        {"keyid": signer.key_id, "sig": b64encode(sig)}
    ]
    size = _envelope_size(out)
    if size is not None and size > MAX_ENVELOPE_BYTES:
        raise ClaimError("oversized", f"envelope would be {size} bytes, over {MAX_ENVELOPE_BYTES}")
    return out


# --- data-labelcheck-claim attribute -------------------------------------------


def to_data_attribute(envelope: dict[str, Any]) -> str:
    """base64url (no padding) of the compact envelope JSON (docs/protocol.md §2, place 1)."""
    return base64.urlsafe_b64encode(dumps_compact(envelope)).rstrip(b"=").decode("ascii")


def from_data_attribute(value: str) -> bytes:
    """The envelope JSON bytes of a ``data-labelcheck-claim`` value (padding optional).

    Raises :class:`ClaimError` (``malformed``/``not_base64``).
    """
    if not isinstance(value, str):
        raise _malformed("data-labelcheck-claim", f"must be a string, got {_kind(value)}")
    text = value.strip()
    if len(text) > MAX_ENVELOPE_BYTES * 2:
        raise ClaimError("oversized", "data-labelcheck-claim value is far over the size limit")
    if not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", text):
        raise _malformed("data-labelcheck-claim", "is not base64url", "not_base64")
    text = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise _malformed("data-labelcheck-claim", "is not base64url", "not_base64") from None


# --- verification ----------------------------------------------------------------


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
    :func:`parse_envelope`. Status: ``invalid`` when any check failed,
    otherwise ``verified`` when the content matched, else ``unverified``.
    """
    verdict = Verdict(status="invalid")
    try:
        _verify(data, registry, content_sha256, _utc(now) if now else utc_now(), verdict)
    except Exception as exc:  # a bug must not take the server down: report it
        verdict.add("internal_error", f"internal error while verifying: {type(exc).__name__}")
    failed = any(r in FAILURES for r in verdict.reasons)
    if failed:
        verdict.status = "invalid"
    elif "content_match" in verdict.reasons:
        verdict.status = "verified"
    else:
        verdict.status = "unverified"
    return verdict


def _verify(data: Any, registry: "TrustRegistry", served: str | None, now: datetime, v: Verdict) -> None:
    try:
        env = _decode_envelope(data)
        v.claim_digest = hashlib.sha256(env.payload).hexdigest()
        body = _decode_payload(env.payload)
    except ClaimError as exc:
        _add_error(v, exc)
        return
    parsed, problems = _payload_problems(body, env.keyids)
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
    elif not _SHA256.fullmatch(got):
        v.add("content_mismatch", "content.sha256: the served content's hash is not 64 hex digits")
    else:
        v.add("content_mismatch", f"content.sha256: the claim is for {v.content_sha256}, the served bytes are {got}")


# --- message helpers -------------------------------------------------------------


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    if value is None:
        return "nothing (missing or null)"
    text = repr(value) if isinstance(value, str) else _kind(value)
    return text if len(text) <= 60 else text[:57] + "..."
