"""The label readers' fast paths give the same answers as the plain ones.

XMP is read with one expat pass instead of an ElementTree; a packet that
cannot hold a label is not parsed at all; a common label is checked in a few
whole-object steps; JPEG table segments in the cached block are stepped over
without a call. Each is compared here with the straightforward reading.
"""

from __future__ import annotations

import io
import json
import struct
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import media_factory as mf
from labelcheck.labels import aigc, read_labels, xmp
from labelcheck.labels.signals import Malformed

TC260 = xmp.TC260_NS
IPTC_NS = xmp.IPTC_EXT_NS
RDF = xmp.RDF_NS


def reference_values(packet: bytes) -> tuple[list[str], list[str]]:
    """The two properties' values read from an ElementTree (the plain way)."""
    root = ET.fromstring(packet.rstrip(b"\x00 \t\r\n"))
    found: dict[str, list[str]] = {xmp.AIGC_TAG: [], xmp.DST_TAG: []}
    for el in root.iter():
        for tag in found:
            if tag in el.attrib:
                found[tag].append(el.attrib[tag])
        if el.tag in found:
            resource = el.attrib.get(f"{{{RDF}}}resource")
            found[el.tag].append(resource if resource is not None else "".join(el.itertext()))
    return found[xmp.AIGC_TAG], found[xmp.DST_TAG]


def rdf(body: str, declare: str = f'xmlns:TC260="{TC260}" xmlns:Iptc4xmpExt="{IPTC_NS}"') -> bytes:
    return (
        f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
        f'<rdf:RDF xmlns:rdf="{RDF}"><rdf:Description rdf:about="" {declare}>{body}</rdf:Description>'
        "</rdf:RDF></x:xmpmeta>\n<?xpacket end=\"w\"?>\n\x00\x00"
    ).encode("utf-8")


LABEL = mf.aigc_json()
PACKETS = {
    "element": rdf(f"<TC260:AIGC>{LABEL}</TC260:AIGC>"),
    "other prefix": rdf(f"<ai:AIGC>{LABEL}</ai:AIGC>", f'xmlns:ai="{TC260}"'),
    "default namespace": rdf(f'<AIGC xmlns="{TC260}">{LABEL}</AIGC>'),
    "declared on the element": rdf(f'<t:AIGC xmlns:t="{TC260}">{LABEL}</t:AIGC>', ""),
    "uri by character reference": rdf(f"<t:AIGC>{LABEL}</t:AIGC>", 'xmlns:t="&#104;ttp://www.tc260.org.cn/ns/AIGC/1.0/"'),
    "attribute": rdf("", f"xmlns:TC260=\"{TC260}\" TC260:AIGC='{LABEL}'"),
    "cdata and entities": rdf('<TC260:AIGC><![CDATA[{"Label":"1",]]>&quot;ContentProducer&quot;:"a&amp;b","ProduceID":"x"}</TC260:AIGC>'),
    "text split by children": rdf("<TC260:AIGC>{&quot;Label&quot;:<rdf:x>&quot;1&quot;</rdf:x>}</TC260:AIGC>"),
    "nested property": rdf("<TC260:AIGC>a<TC260:AIGC>b</TC260:AIGC>c</TC260:AIGC><TC260:AIGC>d</TC260:AIGC>"),
    "resource and text": rdf(f'<Iptc4xmpExt:DigitalSourceType rdf:resource="{mf.IPTC}trainedAlgorithmicMedia"/>'
                             f"<Iptc4xmpExt:DigitalSourceType> {mf.IPTC}digitalCapture </Iptc4xmpExt:DigitalSourceType>"),
    "same local name, other namespace": rdf('<o:AIGC xmlns:o="urn:other">x</o:AIGC><o:DigitalSourceType xmlns:o="urn:o">y</o:DigitalSourceType>'),
    "both, in order": rdf(f'<TC260:AIGC>one</TC260:AIGC><rdf:Bag TC260:AIGC="two"/><TC260:AIGC rdf:resource="three"/>'
                          f'<Iptc4xmpExt:DigitalSourceType>d1</Iptc4xmpExt:DigitalSourceType>'),
}


@pytest.mark.parametrize("name", list(PACKETS))
def test_expat_reader_agrees_with_elementtree(name):
    packet = PACKETS[name]
    assert xmp._values(packet) == reference_values(packet)


def test_label_under_another_prefix_is_read():
    for name in ("other prefix", "default namespace", "declared on the element", "uri by character reference"):
        [signal] = xmp.signals(PACKETS[name], "jpeg")
        assert (signal.status, signal.detail["aigc"]) == ("declared", mf.LABEL), name
        [signal] = read_labels(io.BytesIO(mf.jpeg(xmp=PACKETS[name])))
        assert signal.detail["aigc"] == mf.LABEL, name


_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff"), max_size=40)


@settings(max_examples=150, deadline=None)
@given(
    parts=st.lists(
        st.one_of(
            _text.map(lambda t: ("text", t)),
            _text.map(lambda t: ("aigc", t)),
            _text.map(lambda t: ("dst", t)),
            _text.map(lambda t: ("attr", t)),
            _text.map(lambda t: ("cdata", t.replace("]]>", ""))),
        ),
        max_size=6,
    )
)
def test_expat_reader_agrees_on_generated_packets(parts):
    from xml.sax.saxutils import escape, quoteattr

    body = ""
    for kind, value in parts:
        if kind == "text":
            body += f"<dc:t>{escape(value)}</dc:t>"
        elif kind == "aigc":
            body += f"<TC260:AIGC>{escape(value)}<dc:i>{escape(value[:3])}</dc:i></TC260:AIGC>"
        elif kind == "dst":
            body += f"<Iptc4xmpExt:DigitalSourceType>{escape(value)}</Iptc4xmpExt:DigitalSourceType>"
        elif kind == "attr":
            body += f"<rdf:li TC260:AIGC={quoteattr(value)} Iptc4xmpExt:DigitalSourceType={quoteattr(value[::-1])}/>"
        else:
            body += f"<TC260:AIGC><![CDATA[{value}]]></TC260:AIGC>"
    packet = rdf(body, f'xmlns:TC260="{TC260}" xmlns:Iptc4xmpExt="{IPTC_NS}" xmlns:dc="http://purl.org/dc/elements/1.1/"')
    try:
        expected = reference_values(packet)
    except ET.ParseError:  # e.g. a control character XML does not allow
        with pytest.raises(Malformed) as err:
            xmp._values(packet)
        assert err.value.code == "xmp_invalid"
    else:
        assert xmp._values(packet) == expected


# --- safety -------------------------------------------------------------------


def test_doctype_refused_before_and_inside_the_parser():
    dtd = '<!DOCTYPE x [<!ENTITY a "AIGC">]>'
    utf8 = f'<?xml version="1.0"?>{dtd}<x:xmpmeta xmlns:x="adobe:ns:meta/">&a;</x:xmpmeta>'.encode()
    [s] = xmp.signals(utf8, "jpeg")
    assert s.reasons == ["malformed", "xmp_dtd_refused"]
    # UTF-16 hides "<!DOCTYPE" from a byte search; the parser still refuses it,
    # for reading and for the rewrite that keeps a packet's other properties.
    utf16 = ('<?xml version="1.0" encoding="UTF-16"?>' + dtd + f'<x:xmpmeta xmlns:x="adobe:ns:meta/" xmlns:t="{TC260}">'
             "<t:AIGC>&a;</t:AIGC></x:xmpmeta>").encode("utf-16")
    assert b"<!DOCTYPE" not in utf16
    with pytest.raises(Malformed) as err:
        xmp._values(utf16)
    assert err.value.code == "xmp_dtd_refused"
    with pytest.raises(Malformed) as err:
        xmp.parse_packet(utf16)
    assert err.value.code == "xmp_dtd_refused"
    # A bare internal DTD subset with parameter entities, also refused.
    with pytest.raises(Malformed) as err:
        xmp._values('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY % p "x">]><x/>'.encode("utf-16"))
    assert err.value.code == "xmp_dtd_refused"


def test_packet_without_either_property_is_not_parsed():
    # Broken XML that cannot hold a label gives nothing rather than a malformed signal ...
    assert xmp.signals(b"<x:xmpmeta><dc:title>unclosed", "jpeg") == []
    # ... while the same damage beside a label property is reported.
    [s] = xmp.signals(b"<x:xmpmeta><dc:title>unclosed AIGC", "jpeg")
    assert s.reasons == ["malformed", "xmp_invalid"]
    [s] = xmp.signals(b"<x:xmpmeta>DigitalSourceType<", "jpeg")
    assert s.reasons == ["malformed", "xmp_invalid"]


def test_size_cap_and_undefined_entities_hold():
    [s] = xmp.signals(rdf("<TC260:AIGC>x</TC260:AIGC>" + " " * xmp.MAX_XMP), "jpeg")
    assert s.reasons == ["malformed", "xmp_too_large"]
    [s] = xmp.signals(rdf("<TC260:AIGC>&undefined;</TC260:AIGC>"), "jpeg")
    assert s.reasons == ["malformed", "xmp_invalid"]


# --- label checks -------------------------------------------------------------


_value = st.one_of(
    st.sampled_from(["1", "2", "3", "4", "", " ", "\u3000", "ok", "a\x07b", "x" * 300, "\x85", "\ud800"]),
    st.text(max_size=12),
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=2), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(obj=st.dictionaries(st.sampled_from(list(aigc.FIELDS) + ["Extra"]), _value, max_size=8))
def test_quick_check_never_passes_a_label_with_problems(obj):
    if aigc._sound(obj):
        assert aigc.problems(obj) == []


def test_quick_check_passes_common_labels():
    for label in (mf.LABEL, dict(mf.LABEL, ContentPropagator="p", PropagateID="q"), dict(mf.LABEL, Label="3")):
        assert aigc._sound(label) and aigc.problems(label) == []


def reference_parse(text: str | bytes) -> dict:
    """The label parse without shortcuts: strip, json.loads, unwrap, problems."""
    if isinstance(text, bytes):
        if len(text) > aigc.MAX_JSON:
            raise aigc.AigcError("label_too_large", [])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise aigc.AigcError("label_invalid_json", []) from None
    text = text.strip().lstrip("\ufeff").rstrip("\x00")
    if len(text.encode("utf-8", "surrogatepass")) > aigc.MAX_JSON:
        raise aigc.AigcError("label_too_large", [])
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise aigc.AigcError("label_invalid_json", []) from None
    if isinstance(obj, dict) and set(obj) == {"AIGC"}:
        obj = obj["AIGC"]
    if not isinstance(obj, dict):
        raise aigc.AigcError("label_not_object", [])
    if aigc.problems(obj):
        raise aigc.AigcError("label_invalid", [])
    return obj


def outcome(parse, text):
    try:
        return "ok", parse(text)
    except aigc.AigcError as exc:
        return exc.code, None


GOOD = json.dumps(mf.LABEL, separators=(",", ":"))
TEXTS = [
    GOOD, " " + GOOD, GOOD + "\n", "\ufeff" + GOOD, GOOD + "\x00\x00", json.dumps({"AIGC": mf.LABEL}),
    GOOD + GOOD, GOOD + "}", "{" + GOOD, "{}", "[]", '{"AIGC": 1}', '{"AIGC": {}, "x": 1}', "", "\ufeff",
    "{" * 5000 + "}" * 5000, '{"Label": "1"' + " " * 9000 + "}", "{" + '"a":"' + "\u00e9" * 2100 + '"}',
    GOOD.encode(), b"\xff" + GOOD.encode(), b" " * 9000, '{"Label":"1","ContentProducer":"p","ProduceID":"\\u0007"}',
    '{"Label":"1","ContentProducer":"p","ProduceID":"i"} {"x":1}', '{"Label":"1","ContentProducer":"p","ProduceID":"i",}',
]


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_label_parse_agrees_with_the_plain_parse(text):
    assert outcome(aigc.parse, text) == outcome(reference_parse, text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from('{}[]":,1 \n\ufeff\x00abLProduceIDContent\\u'), max_size=60))
def test_label_parse_agrees_on_generated_text(text):
    assert outcome(aigc.parse, text) == outcome(reference_parse, text)


# --- JPEG walk ------------------------------------------------------------------


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def with_segments(data: bytes, segs: bytes, after_soi: bool = False) -> bytes:
    """``segs`` inserted before SOS (or right after SOI)."""
    at = 2 if after_soi else data.index(b"\xff\xda")
    return data[:at] + segs + data[at:]


XMP_APP1 = segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + mf.xmp_packet(aigc=mf.aigc_json()))


@pytest.mark.parametrize("pad", [0, 1, 2, 3, 5, 16 << 10, (16 << 10) - 3, (16 << 10) + 7, 70000])
def test_jpeg_label_after_tables_across_the_block_edge(pad):
    """APP1 after table segments whose sizes put the XMP header on, before or
    past the edge of the first 16 KB block."""
    tables = b""
    while pad > 0:
        n = min(pad, 60000)
        tables += segment(0xE2, b"ICC_PROFILE\x00" + bytes(max(0, n - 12)))
        pad -= n
    data = with_segments(mf.jpeg(), tables + segment(0xFE, b"comment") + XMP_APP1)
    [signal] = read_labels(io.BytesIO(data))
    assert signal.detail["aigc"] == mf.LABEL


def test_jpeg_damage_in_stepped_over_segments_is_reported():
    base = mf.jpeg()
    bad_length = with_segments(base, b"\xff\xdb\x00\x01" + XMP_APP1)
    [s] = read_labels(io.BytesIO(bad_length))
    assert s.reasons == ["malformed", "bad_length"]
    # A table segment that runs past the end of the file.
    cut = base[:2] + XMP_APP1 + b"\xff\xc4\x40\x00" + b"\x00" * 10
    found = read_labels(io.BytesIO(cut))
    assert [s.status for s in found] == ["declared", "malformed"] and found[1].reasons[1] == "truncated"
    # Fill bytes before a marker are allowed (T.81 §B.1.1.2).
    filled = with_segments(base, b"\xff\xff\xff" + XMP_APP1)
    assert read_labels(io.BytesIO(filled))[0].detail["aigc"] == mf.LABEL
    # Garbage where a marker should be.
    [s] = read_labels(io.BytesIO(with_segments(base, segment(0xDB, b"\x00" * 64) + b"\x00\x00", after_soi=True)))
    assert s.reasons == ["malformed", "bad_marker"]


def test_jpeg_segment_count_is_still_bounded():
    many = with_segments(mf.jpeg(), segment(0xFE, b"") * 5000 + XMP_APP1, after_soi=True)
    [s] = read_labels(io.BytesIO(many))
    assert s.reasons == ["malformed", "too_many_segments"]


class CountingReader(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.reads = self.seeks = 0

    def read(self, n=-1):
        self.reads += 1
        return super().read(n)

    def seek(self, *a):
        self.seeks += 1
        return super().seek(*a)


def test_small_jpeg_is_read_in_one_read():
    fp = CountingReader(mf.jpeg(xmp=mf.xmp_packet(aigc=mf.aigc_json())))
    fp.seek(5)
    [signal] = read_labels(fp)
    assert signal.status == "declared"
    assert fp.reads == 1 and fp.tell() == 5


# --- MP4 walk -------------------------------------------------------------------


def test_mp4_box_sizes_0_and_64_bit_still_walk():
    from labelcheck.labels import isobmff

    meta = mf.full(b"meta", isobmff.HDLR_MDIR + mf.box(b"ilst", isobmff.label_item(mf.aigc_json().encode())))
    udta = mf.box(b"udta", meta)
    data = mf.mp4(udta=udta).data
    # The same file with a trailing 64-bit "free" box, and with a final box of size 0 (to the end).
    large = data + struct.pack(">I4sQ", 1, b"free", 16 + 5) + b"12345"
    to_end = data + struct.pack(">I4s", 0, b"free") + b"tail"
    for variant in (large, to_end):
        [signal] = read_labels(io.BytesIO(variant))
        assert signal.detail["aigc"] == mf.LABEL
    # A 64-bit size inside udta, and a box too small for its own header.
    big_udta = struct.pack(">I4sQ", 1, b"udta", 16 + len(meta)) + meta
    at = data.index(b"moov") - 4
    moov_size = struct.unpack_from(">I", data, at)[0]
    moov = data[at + 8 : at + moov_size].replace(udta, big_udta)
    rebuilt = data[:at] + mf.box(b"moov", moov) + data[at + moov_size :]
    assert read_labels(io.BytesIO(rebuilt))[0].detail["aigc"] == mf.LABEL
    broken = data[:at] + mf.box(b"moov", moov.replace(big_udta, struct.pack(">I4s", 3, b"udta") + big_udta[8:])) + data[at + moov_size :]
    [s] = read_labels(io.BytesIO(broken))
    assert s.reasons == ["malformed", "bad_length"]


def test_mp4_label_before_a_damaged_moov_child_is_kept():
    from labelcheck.labels import isobmff

    meta = mf.full(b"meta", isobmff.HDLR_MDIR + mf.box(b"ilst", isobmff.label_item(mf.aigc_json().encode())))
    data = mf.mp4(udta=mf.box(b"udta", meta)).data
    at = data.index(b"moov") - 4
    moov_size = struct.unpack_from(">I", data, at)[0]
    damaged = data[at + 8 : at + moov_size] + struct.pack(">I4s", 4, b"free") + b"\x00" * 4
    found = read_labels(io.BytesIO(data[:at] + mf.box(b"moov", damaged) + data[at + moov_size :]))
    assert [s.status for s in found] == ["declared", "malformed"]
    assert found[0].detail["aigc"] == mf.LABEL and found[1].reasons == ["malformed", "bad_length"]
