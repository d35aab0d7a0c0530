"""XMP packets (ISO 16684-1): read the GB 45438 and IPTC properties, write the label.

Parsing is deliberately narrow for safety: packets over ``MAX_XMP`` bytes and
any packet with a DTD (``<!DOCTYPE``/``<!ENTITY``) are refused before the
parser sees them, and the parser itself refuses a document type declaration
in any encoding (a UTF-16 packet hides ``<!DOCTYPE`` from a byte search), so
external entities and entity-expansion bombs never run; only XML's five
predefined entities and character references remain.

Reading does not build a tree: one expat pass with namespace processing
collects the two properties' values. A packet is parsed only when it can
hold them: an element or attribute name is never escaped in XML, so a UTF-8
packet (the encoding XMP Part 3 §1.1 requires in JPEG, PNG and WebP) without
the bytes ``AIGC`` or ``DigitalSourceType`` has neither, whatever prefix
or form declares the namespaces.
"""

from __future__ import annotations

import io
import re
import threading
import xml.etree.ElementTree as ET
from xml.parsers import expat

from . import aigc, xmp_fast
from .budget import Budget, Limit
from .signals import Malformed, Signal, malformed

TC260_NS = "http://www.tc260.org.cn/ns/AIGC/1.0/"
IPTC_EXT_NS = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
X_NS = "adobe:ns:meta/"
AIGC_TAG = f"{{{TC260_NS}}}AIGC"
DST_TAG = f"{{{IPTC_EXT_NS}}}DigitalSourceType"
MAX_XMP = 1 << 20
XPACKET_ID = "W5M0MpCehiHzreSzNTczkc9d"

# IPTC Digital Source Type codes (NewsCodes vocabulary, 2024 edition):
# which say the content is AI-generated or synthetic, and which say it is not.
AI_SOURCE_TYPES = frozenset(
    {
        "trainedAlgorithmicMedia",
        "compositeWithTrainedAlgorithmicMedia",
        "compositeSynthetic",
        "algorithmicMedia",
    }
)
NOT_AI_SOURCE_TYPES = frozenset(
    {
        "digitalCapture",
        "negativeFilm",
        "positiveFilm",
        "print",
        "humanEdits",
        "minorHumanEdits",
        "compositeCapture",
        "screenCapture",
        "virtualRecording",
        "digitalArt",
        "composite",
    }
)


def source_type_is_ai(uri: str | None) -> bool | None:
    """True (AI or synthetic), False (captured or human-made) or None (neither said)."""
    if not uri:
        return None
    code = uri.rstrip("/").rsplit("/", 1)[-1]
    if code in AI_SOURCE_TYPES:
        return True
    if code in NOT_AI_SOURCE_TYPES:
        return False
    return None


def source_type_category(uri: str | None) -> str | None:
    """An AI digital source type implies the ``confirmed`` category.

    Every AI code (trained, composite-with-trained, composite-synthetic, pure
    algorithmic) says synthetic content is present, which is GB 45438
    ``Label`` "1"; the IPTC vocabulary has no "possibly" or "suspected".
    """
    return "confirmed" if source_type_is_ai(uri) else None


def _refuse(data: bytes, source: str = "gb45438_xmp") -> None:
    """Refuse oversized packets and any DTD before a parser sees them."""
    if len(data) > MAX_XMP:
        raise Malformed(source, "xmp_too_large", f"XMP packet is {len(data)} bytes, limit {MAX_XMP}")
    if data.find(b"<!DOCTYPE") >= 0 or data.find(b"<!ENTITY") >= 0:
        raise Malformed(source, "xmp_dtd_refused", "XMP packet declares a DTD or entities")


class _DTDRefused(Exception):
    pass


def _no_dtd(*_args) -> None:
    raise _DTDRefused


def _expat(source: str) -> expat.XMLParserType:
    """An expat parser with namespace processing ("uri}local" names, as
    ElementTree's) that refuses a DTD, entity declarations and parameter
    entities, in whatever encoding the packet is written."""
    parser = expat.ParserCreate(None, "}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _no_dtd
    parser.EntityDeclHandler = _no_dtd
    parser.buffer_text = True
    return parser


def _run(parser: expat.XMLParserType, data: bytes, source: str) -> None:
    try:
        parser.Parse(data.rstrip(b"\x00 \t\r\n"), True)
    except _DTDRefused:
        raise Malformed(source, "xmp_dtd_refused", "XMP packet declares a DTD or entities") from None
    except expat.ExpatError as exc:
        raise Malformed(source, "xmp_invalid", f"XMP is not well-formed XML: {exc}") from None


def parse_packet(data: bytes, source: str = "gb45438_xmp") -> ET.Element:
    """The packet's root element; Malformed on size, DTD or XML errors."""
    _refuse(data, source)
    _run(_expat(source), data, source)  # the DTD check that holds in any encoding
    try:
        return ET.fromstring(data.rstrip(b"\x00 \t\r\n"))
    except ET.ParseError as exc:
        raise Malformed(source, "xmp_invalid", f"XMP is not well-formed XML: {exc}") from None


_AIGC_NAME = f"{TC260_NS}}}AIGC"
_DST_NAME = f"{IPTC_EXT_NS}}}DigitalSourceType"
_RESOURCE_NAME = f"{RDF_NS}}}resource"


MAX_NESTED = 8  # property elements open inside one another (XMP simple values have none)
MAX_VALUE = aigc.MAX_JSON  # characters kept of one value: a longer one is refused as too large


def _values(data: bytes, source: str = "gb45438_xmp", budget: Budget | None = None) -> tuple[list[str], list[str]]:
    """``(aigc, digital_source_types)``, as ``_parsed_values`` reads them; the
    packet shape labelcheck writes is read without a parser (``xmp_fast``),
    charged to the budget as the parse would be."""
    budget = budget or Budget()
    return _written(data, budget) or _parsed_values(data, source, budget)


def _written(data: bytes, budget: Budget) -> tuple[list[str], list[str]] | None:
    """``xmp_fast.values`` within the size cap and the budget, charged as the
    parse would be; None when the packet must be parsed."""
    if len(data) > MAX_XMP or budget.elements_left < xmp_fast.ELEMENTS or budget.items_left < 1:
        return None
    found = xmp_fast.values(data, MAX_VALUE)
    if found is not None:
        budget.tick("gb45438_xmp")
        budget.elements_left -= xmp_fast.ELEMENTS
    return found


def _parsed_values(data: bytes, source: str = "gb45438_xmp", budget: Budget | None = None) -> tuple[list[str], list[str]]:
    """``(aigc, digital_source_types)``: every value of the two simple properties,
    in document order, as attribute, element text (all text inside it) or
    ``rdf:resource``. Malformed on XML errors or a DTD; Limit when the
    budget's elements or items run out or property elements nest over
    ``MAX_NESTED`` deep.

    Linear in the packet: text goes to one list shared by the open property
    elements, each remembering where its text starts, and a value keeps at
    most ``MAX_VALUE + 1`` characters (enough to be refused as too large).
    Text and end-tag handlers are installed only while inside a property
    element, so the rest of the packet costs one call per start tag.
    """
    budget = budget or Budget()
    parser = _expat(source)
    aigc_values: list[str] = []
    dst_values: list[str] = []
    frames: list[tuple[int, list, int, int, int]] = []  # (depth, values, slot, first part, first char)
    parts: list[str] = []  # text seen since the outermost open property element began
    chars = 0  # characters in ``parts``
    depth = 0  # element depth below the outermost open property element
    elements = budget.elements_left
    values_left = budget.items_left

    def start(name: str, attrs: dict) -> None:
        nonlocal depth, elements, values_left
        elements -= 1
        if elements < 0:
            raise Limit(source, "elements", "XMP holds too many elements")
        if frames:
            depth += 1
        if attrs:
            if _AIGC_NAME in attrs:
                aigc_values.append(attrs[_AIGC_NAME][: MAX_VALUE + 1])
                values_left -= 1
            if _DST_NAME in attrs:
                dst_values.append(attrs[_DST_NAME][: MAX_VALUE + 1])
                values_left -= 1
        if name == _AIGC_NAME or name == _DST_NAME:
            values = aigc_values if name == _AIGC_NAME else dst_values
            resource = attrs.get(_RESOURCE_NAME)
            values.append(resource if resource is None else resource[: MAX_VALUE + 1])  # the slot keeps order
            values_left -= 1
            if resource is None:
                if not frames:
                    depth = 0
                    parser.CharacterDataHandler, parser.EndElementHandler = text, end
                elif len(frames) >= MAX_NESTED:
                    raise Limit(source, "depth", f"XMP property elements nest over {MAX_NESTED} deep")
                frames.append((depth, values, len(values) - 1, len(parts), chars))
        if values_left < 0:
            raise Limit(source, "items", "XMP holds too many label values")

    def text(data: str) -> None:
        nonlocal chars
        parts.append(data)
        chars += len(data)

    def end(_name: str) -> None:
        nonlocal depth, chars
        if frames[-1][0] == depth:
            _depth, values, slot, first, first_char = frames.pop()
            values[slot] = _joined(parts, first, chars - first_char)
            if not frames:
                parser.CharacterDataHandler = parser.EndElementHandler = None
                parts.clear()
                chars = 0
                return
        depth -= 1

    parser.StartElementHandler = start
    try:
        _run(parser, data, source)
    finally:  # the handlers refer to the parser: break the cycle, free it now
        parser.StartElementHandler = parser.CharacterDataHandler = parser.EndElementHandler = None
        budget.elements_left = max(elements, 0)
    return aigc_values, dst_values


def _joined(parts: list[str], first: int, length: int) -> str:
    """The text of ``parts[first:]`` (``length`` characters), cut after ``MAX_VALUE + 1``."""
    if length <= MAX_VALUE:
        return "".join(parts[first:])
    kept, size = [], 0
    for part in parts[first:]:
        kept.append(part)
        size += len(part)
        if size > MAX_VALUE:
            break
    return "".join(kept)[: MAX_VALUE + 1]


def signals(data: bytes, container: str, budget: Budget | None = None) -> list[Signal]:
    """Signals from one XMP packet found in ``container`` (``jpeg``, ``png``, ``webp``).

    A packet that is damaged, too big or too deep gives one ``malformed``
    signal; a Limit for the whole file (``bytes``, ``elements``, ``items``,
    ``time``) is raised to the caller, which stops reading.
    """
    budget = budget or Budget()
    try:
        found = _written(data, budget)  # the packet labelcheck writes: well-formed, no DTD
        if found is None:
            _refuse(data)
            if data.find(b"AIGC") < 0 and data.find(b"DigitalSourceType") < 0:
                return []  # neither property can be present: skip the parse
            budget.tick("gb45438_xmp")
            found = _parsed_values(data, budget=budget)
        aigc_values, dst_values = found
    except Limit as exc:
        if exc.what != "depth":
            raise
        return [exc.signal()]
    except Malformed as exc:
        return [malformed(exc.source, exc.code, str(exc), container=container)]
    out = [label_signal("gb45438_xmp", value, container=container) for value in aigc_values]
    for uri in dst_values:
        uri = uri.strip()
        out.append(
            Signal(
                "iptc_dst",
                "declared",
                source_type_category(uri),
                ["iptc_digital_source_type"],
                {"digital_source_type": uri, "ai": source_type_is_ai(uri), "container": container},
            )
        )
    return out


def label_signal(source: str, value: str | bytes, **detail) -> Signal:
    """A GB 45438 signal from a label's JSON text: declared, or malformed."""
    try:
        obj = aigc.parse(value)
    except aigc.AigcError as exc:
        return malformed(source, exc.code, str(exc), errors=exc.errors, **detail)
    extra = aigc.extra_fields(obj)
    if extra:
        detail["extra_fields"] = extra
    return Signal(source, "declared", aigc.category(obj), ["gb45438_label"], {"aigc": obj, **detail})


# --- writing -----------------------------------------------------------------

_register_lock = threading.Lock()


def _namespaces(data: bytes) -> dict[str, str]:
    """prefix -> uri as declared in the packet, to keep its prefixes on output."""
    names: dict[str, str] = {}
    stream = io.BytesIO(data.rstrip(b"\x00 \t\r\n"))
    for _event, (prefix, uri) in ET.iterparse(stream, events=("start-ns",)):
        if prefix and not re.fullmatch(r"ns\d+", prefix):
            names.setdefault(prefix, uri)
    return names


def with_label(existing: bytes | None, label: dict) -> bytes:
    """An XMP packet carrying exactly one ``TC260:AIGC`` with ``label``.

    ``existing`` (a packet already in the file) keeps every other property;
    any earlier ``TC260:AIGC`` (attribute or element form) is removed. The
    value is written in element form: the compact JSON of the inner object.
    """
    value = aigc.dumps(label)
    if not existing:
        return _wrap(
            f'<x:xmpmeta xmlns:x="{X_NS}"><rdf:RDF xmlns:rdf="{RDF_NS}">'
            f'<rdf:Description rdf:about="" xmlns:TC260="{TC260_NS}">'
            f"<TC260:AIGC>{_escape(value)}</TC260:AIGC>"
            "</rdf:Description></rdf:RDF></x:xmpmeta>"
        )
    root = parse_packet(existing)
    rdf = root if root.tag == f"{{{RDF_NS}}}RDF" else root.find(f".//{{{RDF_NS}}}RDF")
    if rdf is None:
        raise Malformed("gb45438_xmp", "xmp_invalid", "XMP packet has no rdf:RDF")
    for el in root.iter():
        el.attrib.pop(AIGC_TAG, None)
        for child in [c for c in el if c.tag == AIGC_TAG]:
            el.remove(child)
    desc = rdf.find(f"{{{RDF_NS}}}Description")
    if desc is None:
        desc = ET.SubElement(rdf, f"{{{RDF_NS}}}Description", {f"{{{RDF_NS}}}about": ""})
    ET.SubElement(desc, AIGC_TAG).text = value
    names = _namespaces(existing)
    names.setdefault("TC260", TC260_NS)
    names.setdefault("rdf", RDF_NS)
    names.setdefault("x", X_NS)
    with _register_lock:
        for prefix, uri in names.items():
            try:
                ET.register_namespace(prefix, uri)
            except ValueError:
                pass
        body = ET.tostring(root, encoding="unicode")
    return _wrap(body)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _wrap(body: str) -> bytes:
    return (
        f'<?xpacket begin="\ufeff" id="{XPACKET_ID}"?>\n{body}\n<?xpacket end="w"?>'
    ).encode("utf-8")
