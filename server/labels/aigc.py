"""GB 45438-2025 implicit-label metadata (Annex E): parse, check, serialise.

Annex E names the implicit label's metadata fields and wraps them as
``{"AIGC": {...}}``:

=====================  ========  ===============================================
field                  needed    labelcheck's rule
=====================  ========  ===============================================
``Label``              yes       exactly ``"1"`` (AI-generated, "confirmed"),
                                 ``"2"`` (possibly, "possible") or ``"3"``
                                 (suspected, "suspected"): a JSON string
``ContentProducer``    yes       non-empty string: the producer's name or code
``ProduceID``          yes       non-empty string: the producer's content id
``ReservedCode1``      no        string
``ContentPropagator``  no        string; needs ``PropagateID`` beside it
``PropagateID``        no        string; needs ``ContentPropagator`` beside it
``ReservedCode2``      no        string
=====================  ========  ===============================================

Every value is a string of at most ``MAX_FIELD`` characters with no control
characters (Unicode category Cc); the serialised label is at most
``MAX_JSON`` bytes. Annex E leaves lengths open: these bounds are
labelcheck's, so that a label can never be used to smuggle bulk data.
Unknown keys are kept and listed (``extra_fields``), not refused.

Writing is stricter (``check_for_writing``): the identifier fields
(``ProduceID``, ``PropagateID``, ``ReservedCode1``, ``ReservedCode2``) must be
visible ASCII without quotes, backslash, ``<``, ``>`` or ``&`` (``ID_CHARS``),
which covers claim ids such as ``urn:uuid:…``, hex and base64 digests, so
what labelcheck writes survives every container and every JSON/XML escape.
"""

from __future__ import annotations

import json
import re

FIELDS = (
    "Label",
    "ContentProducer",
    "ProduceID",
    "ReservedCode1",
    "ContentPropagator",
    "PropagateID",
    "ReservedCode2",
)
REQUIRED = ("Label", "ContentProducer", "ProduceID")
ID_FIELDS = ("ProduceID", "PropagateID", "ReservedCode1", "ReservedCode2")
CATEGORY = {"1": "confirmed", "2": "possible", "3": "suspected"}
MAX_FIELD = 256
MAX_JSON = 8192
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # Unicode Cc, and lone surrogates
ID_CHARS = re.compile(r"[!#-%(-;=?-\[\]-~]*")  # 0x21-0x7E minus " & ' < > \


class AigcError(ValueError):
    """A label that breaks the rules above; ``code`` is the reason code."""

    def __init__(self, code: str, errors: list[str]):
        super().__init__("; ".join(errors))
        self.code = code
        self.errors = errors


_FIELD_SET = frozenset(FIELDS)
_decoder = json.JSONDecoder()
_decode_json, _scan_json = _decoder.decode, _decoder.scan_once


def parse(text: str | bytes) -> dict:
    """Parse a label's JSON (inner object or ``{"AIGC": {...}}``) and check it.

    Returns the inner object. Raises AigcError with code
    ``label_too_large``, ``label_invalid_json``, ``label_not_object`` or
    ``label_invalid``.
    """
    if isinstance(text, bytes):
        if len(text) > MAX_JSON:
            raise AigcError("label_too_large", [f"label is {len(text)} bytes, limit {MAX_JSON}"])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AigcError("label_invalid_json", [f"label is not UTF-8: {exc}"]) from None
    if text[:1] != "{" or text[-1:] != "}":  # only then can there be anything to strip
        text = text.strip().lstrip("\ufeff").rstrip("\x00")
    # A character is at most 4 UTF-8 bytes: short text needs no encoding to measure.
    if len(text) > MAX_JSON // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_JSON:
        raise AigcError("label_too_large", [f"label is over {MAX_JSON} bytes"])
    try:
        obj = None
        if text[:1] == "{":  # an object spanning the whole text is scanned directly
            try:
                obj, end = _scan_json(text, 0)
            except StopIteration:
                end = -1
            if end != len(text):
                obj = None
        if obj is None:
            obj = _decode_json(text)  # the general path, with json's own error messages
    except (ValueError, RecursionError) as exc:
        raise AigcError("label_invalid_json", [f"label is not JSON: {exc}"]) from None
    return unwrap(obj)


def unwrap(obj) -> dict:
    """Accept the inner object or the ``{"AIGC": {...}}`` wrapper; check it."""
    if isinstance(obj, dict) and len(obj) == 1 and "AIGC" in obj:
        obj = obj["AIGC"]
    if not isinstance(obj, dict):
        raise AigcError("label_not_object", ["label is not a JSON object"])
    if not _sound(obj):
        errors = problems(obj)
        if errors:
            raise AigcError("label_invalid", errors)
    return obj


def _sound(obj: dict) -> bool:
    """A quick yes for the common label: the rules of ``problems`` in a few
    whole-object steps (every value a string, short and free of control
    characters all together). False only means "look closer": ``problems``
    then names what is wrong, if anything.
    """
    try:
        joined = "".join(obj.values())
    except TypeError:  # a value that is not a string
        return False
    if len(joined) > MAX_FIELD:
        return False
    # Printable ASCII holds no control character; other text is searched.
    if not (joined.isascii() and joined.isprintable()) and CONTROL.search(joined):
        return False
    get = obj.get
    producer, produce_id = get("ContentProducer"), get("ProduceID")  # strings, when present
    return bool(
        get("Label") in CATEGORY
        and producer  # present and not empty
        and produce_id
        and not producer.isspace()
        and not produce_id.isspace()
        and (not get("ContentPropagator")) == (not get("PropagateID"))
    )


def problems(obj: dict) -> list[str]:
    """Every way ``obj`` breaks Annex E's value rules (empty when it is sound)."""
    errors = []
    for name in REQUIRED:
        if name not in obj:
            errors.append(f"{name} is missing")
    for name in FIELDS:
        if name not in obj:
            continue
        value = obj[name]
        if not isinstance(value, str):
            errors.append(f"{name} must be a string")
            continue
        if len(value) > MAX_FIELD:
            errors.append(f"{name} is longer than {MAX_FIELD} characters")
        if CONTROL.search(value):
            errors.append(f"{name} holds a control character")
    label = obj.get("Label")
    if isinstance(label, str) and label not in CATEGORY:
        errors.append(f'Label must be "1", "2" or "3", not {label[:16]!r}')
    for name in ("ContentProducer", "ProduceID"):
        if isinstance(obj.get(name), str) and not obj[name].strip():
            errors.append(f"{name} is empty")
    if bool(obj.get("ContentPropagator")) != bool(obj.get("PropagateID")):
        errors.append("ContentPropagator and PropagateID go together")
    return errors


def extra_fields(obj: dict) -> list[str]:
    if obj.keys() <= _FIELD_SET:
        return []
    return sorted(k for k in obj if k not in _FIELD_SET)


def category(obj: dict) -> str | None:
    """The verdict category the label's ``Label`` implies."""
    return CATEGORY.get(obj.get("Label"))


def check_for_writing(obj: dict) -> dict:
    """The label in Annex E field order, refused (AigcError) unless writable."""
    errors = problems(obj)
    unknown = extra_fields(obj)
    if unknown:
        errors.append(f"unknown fields: {', '.join(unknown)}")
    for name in ID_FIELDS:
        value = obj.get(name)
        if isinstance(value, str) and not ID_CHARS.fullmatch(value):
            errors.append(f"{name} must be visible ASCII without quotes, \\, <, > or &")
    if errors:
        raise AigcError("label_invalid", errors)
    return {k: obj[k] for k in FIELDS if k in obj and obj[k] != ""}


def dumps(obj: dict) -> str:
    """Compact JSON of the inner object, non-ASCII characters as themselves
    (written as UTF-8, so every tool shows 生成AI, not ``\\u751f\\u6210AI``)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
