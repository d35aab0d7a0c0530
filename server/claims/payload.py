"""The claim payload: its schema checks and its construction (docs/protocol.md §2).

A payload is a JSON object: ``v``, ``id``, ``issued_at``, ``expires_at?``,
``issuer``, ``content {sha256, media_type, url?, pdq?, pdq_quality?}``, ``aigc`` (the GB 45438
Annex E implicit-label fields), ``synthesis?``, ``consent?``,
``assessment?``, ``filing?``, ``digital_source_type?``. Times are RFC 3339
in UTC (RFC 3339 §5.6).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

from labelcheck.claims.envelope import KEY_ID
from labelcheck.claims.errors import ClaimError, kind, malformed, show
from labelcheck.claims.pdq import is_pdq
from labelcheck.claims.strictjson import loads_strict
from labelcheck.claims.verdict import LABEL_CATEGORY
from labelcheck.util.times import as_utc, format_time, parse_time, utc_now

if TYPE_CHECKING:
    from labelcheck.ledger.note import Signer

SYNTHESIS_KINDS = ("text_imitation", "voice", "face", "immersive_scene", "other_generation")
_SYNTHESIS_SET = frozenset(SYNTHESIS_KINDS)
CONSENT_KINDS = frozenset({"face", "voice"})  # a real person's biometrics
# GB 45438 Annex E: these three are required; ContentPropagator, PropagateID,
# ReservedCode1 and ReservedCode2 may follow. Every value is a string.
AIGC_REQUIRED = ("Label", "ContentProducer", "ProduceID")
_AIGC_NAMED = AIGC_REQUIRED[1:]  # required besides the Label

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")

Bad = Callable[..., None]


def decode_payload(payload: bytes) -> dict[str, Any]:
    """The payload bytes as a JSON object; raises ClaimError (``malformed``)."""
    body = loads_strict(payload, "payload")
    if not isinstance(body, dict):
        raise malformed("payload", f"must be a JSON object, got {kind(body)}")
    return body


def payload_problems(body: dict[str, Any], keyids: tuple[str, ...] | None) -> tuple[dict[str, Any], list[ClaimError]]:
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
        bad("v", f"must be the number 1, got {show(v)}")
    cid = body.get("id")
    if not isinstance(cid, str) or not cid or len(cid) > 256:
        bad("id", f"must be a non-empty string of at most 256 characters, got {show(cid)}")
    else:
        parsed["id"] = cid
    _time_problems(body, parsed, bad)
    issuer = body.get("issuer")
    if not isinstance(issuer, str) or not KEY_ID.fullmatch(issuer):
        bad("issuer", f"must be the producer's key id 'name+hash8hex', got {show(issuer)}")
    else:
        parsed["issuer"] = issuer
        if keyids is not None and issuer not in keyids:
            bad("issuer", f"{issuer} is not among the signers ({', '.join(keyids)})", "issuer_not_signer")
    _content_problems(body.get("content"), parsed, bad)
    _aigc_problems(body.get("aigc"), parsed, bad)
    _synthesis_problems(body, bad)
    for name in ("filing", "digital_source_type"):
        if name in body and not isinstance(body[name], str):
            bad(name, f"must be a string, got {kind(body[name])}")
        elif name in body:
            parsed[name] = body[name]
    assessment = body.get("assessment")
    if "assessment" in body:
        if not isinstance(assessment, dict) or not isinstance(assessment.get("ref"), str):
            bad("assessment", 'must be {"ref": str, "sha256": hex}')
        elif "sha256" in assessment and not is_sha256(assessment["sha256"]):
            bad("assessment.sha256", "must be 64 lowercase hex digits")
    return parsed, problems


def _time_problems(body: dict[str, Any], parsed: dict[str, Any], bad: Bad) -> None:
    for name, required in (("issued_at", True), ("expires_at", False)):
        if name not in body and not required:
            continue
        try:
            parsed[name] = parse_time(body.get(name), utc_only=True)
        except ValueError as exc:
            bad(name, str(exc) if name in body else "is missing")
    if "issued_at" in parsed and "expires_at" in parsed and parsed["expires_at"] <= parsed["issued_at"]:
        bad("expires_at", "must be later than issued_at")


def _content_problems(content: Any, parsed: dict[str, Any], bad: Bad) -> None:
    if not isinstance(content, dict):
        bad("content", f"must be an object with sha256 and media_type, got {kind(content)}")
        return
    sha = content.get("sha256")
    if is_sha256(sha):
        parsed["content_sha256"] = sha
    else:
        bad("content.sha256", f"must be 64 lowercase hex digits, got {show(sha)}")
    mt = content.get("media_type")
    if isinstance(mt, str) and _MEDIA_TYPE.fullmatch(mt):
        parsed["media_type"] = mt
    else:
        bad("content.media_type", f"must be a media type like image/png, got {show(mt)}")
    if "url" in content and not isinstance(content["url"], str):
        bad("content.url", f"must be a string, got {kind(content['url'])}")
    _pdq_problems(content, parsed, bad)


def _pdq_problems(content: dict[str, Any], parsed: dict[str, Any], bad: Bad) -> None:
    """``content.pdq``: the image's PDQ hash as 64 lowercase hex digits, with
    ``content.pdq_quality`` its 0-100 quality score (docs/protocol.md §12)."""
    if "pdq" in content:
        if is_pdq(content["pdq"]):
            parsed["pdq"] = content["pdq"]
        else:
            bad("content.pdq", f"must be a PDQ hash: 64 lowercase hex digits, got {show(content['pdq'])}")
    if "pdq_quality" in content:
        quality = content["pdq_quality"]
        if type(quality) is not int or not 0 <= quality <= 100:
            bad("content.pdq_quality", f"must be a whole number from 0 to 100, got {show(quality)}")
        elif "pdq" not in content:
            bad("content.pdq_quality", "is given without content.pdq")
        else:
            parsed["pdq_quality"] = quality


def _aigc_problems(aigc: Any, parsed: dict[str, Any], bad: Bad) -> None:
    if not isinstance(aigc, dict):
        bad("aigc", f"must be an object of GB 45438 Annex E fields, got {kind(aigc)}")
        return
    label = aigc.get("Label")
    if isinstance(label, str) and label in LABEL_CATEGORY:
        parsed["label"] = {k: v for k, v in aigc.items() if isinstance(v, str)}
    else:
        bad("aigc.Label", f'must be "1", "2" or "3", got {show(label)}', "label_invalid")
    for name in _AIGC_NAMED:
        if name not in aigc:
            bad(f"aigc.{name}", "is missing")
    for name, value in aigc.items():
        if name != "Label" and not isinstance(value, str):
            bad(f"aigc.{name}", f"must be a string, got {kind(value)}")


def _synthesis_problems(body: dict[str, Any], bad: Bad) -> None:
    kinds = body.get("synthesis", ())
    if type(kinds) is not list and "synthesis" in body:
        bad("synthesis", f"must be a list of kinds, got {kind(kinds)}")
        kinds = ()
    needs = set()
    for k in kinds:
        if type(k) is not str or k not in _SYNTHESIS_SET:
            bad("synthesis", f"{show(k)} is not one of {', '.join(SYNTHESIS_KINDS)}")
        elif k in CONSENT_KINDS:
            needs.add(k)
    consent = body.get("consent")
    if consent is not None or "consent" in body:
        if not isinstance(consent, dict) or not isinstance(consent.get("obtained"), bool):
            bad("consent", 'must be {"obtained": bool, "record_sha256": hex}')
            consent = None
        elif "record_sha256" in consent and not is_sha256(consent["record_sha256"]):
            bad("consent.record_sha256", "must be 64 lowercase hex digits")
            consent = None
    if needs and not (consent and consent.get("obtained") is True and "record_sha256" in consent):
        bad(
            "consent",
            f"synthesis includes {' and '.join(sorted(needs))}: a consent record "
            '{"obtained": true, "record_sha256": …} is required',
            "consent_missing",
        )


def is_sha256(value: Any) -> bool:
    """True for 64 lowercase hex digits."""
    return isinstance(value, str) and SHA256_HEX.fullmatch(value) is not None


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
    pdq: tuple[str, int] | None = None,
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
    relative (a timedelta from ``now``). ``pdq`` is an image's ``(hash hex,
    quality)`` (``claims.pdq.image_pdq``). ``extra`` adds fields: ``id``,
    ``digital_source_type``, an ``aigc`` dict of optional Annex E fields, or
    new top-level fields. Raises :class:`ClaimError`.
    """
    issuer_id = getattr(issuer, "key_id", issuer)
    if now is not None and not isinstance(now, datetime):
        raise malformed("issued_at", "now must be a datetime")
    if expires_at is not None and not isinstance(expires_at, (datetime, timedelta, str)):
        raise malformed("expires_at", "must be a datetime, a timedelta or an RFC 3339 string")
    if synthesis is not None and not isinstance(synthesis, (list, tuple)):
        raise malformed("synthesis", f"must be a list of kinds, got {kind(synthesis)}")
    now = as_utc(now) if now else utc_now()
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
    if pdq is not None:
        content["pdq"], content["pdq_quality"] = pdq
    body["content"] = content
    key_name = issuer_id.split("+", 1)[0] if isinstance(issuer_id, str) else ""
    body["aigc"] = _aigc(str(label), producer_code or key_name, produce_id or cid, aigc_extra)
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
            raise malformed(name, "is set by a named argument")
        body[name] = value
    _, problems = payload_problems(body, None)
    if problems:
        raise problems[0]
    return body


def _aigc(label: str, producer: str, produce_id: str, extra: dict[str, Any]) -> dict[str, Any]:
    aigc = {"Label": label, "ContentProducer": producer, "ProduceID": produce_id}
    for name, value in extra.items():
        if name in aigc:
            raise malformed(f"aigc.{name}", "is set by a named argument")
        aigc[name] = value
    return aigc
