"""A byte-level reading of the one XMP packet shape labelcheck writes.

``xmp.with_label`` (and so ``labelcheck embed``) writes a fresh packet as::

    <?xpacket begin="BOM" id="W5M0MpCehiHzreSzNTczkc9d"?>
    <x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="..."><rdf:Description
    rdf:about="" xmlns:TC260="..."><TC260:AIGC>VALUE</TC260:AIGC></rdf:Description>
    </rdf:RDF></x:xmpmeta>
    <?xpacket end="w"?>

(one newline after the first line and before the last, none elsewhere; XMP
Part 1 §7.3, ISO 16684-1; docs/protocol.md §3). ``values`` recognises
exactly those bytes, followed by the padding ``xmp._run`` strips, and returns
what the full expat reading would. Anything it is not sure of gives None and
the caller parses the packet: another shape, prefix or spacing, an entity or
character reference, a carriage return (XML 1.0 §2.11 rewrites it), ``]]>``
(§2.4), a control character, bytes that are not UTF-8 or characters outside
XML's ``Char`` production (§2.2), a value long enough to be cut. Since the
rest of the packet is fixed, it is well-formed and holds no DTD. Every step
is a bounded scan of the packet's bytes (no regular expression runs on
ASCII text), so the check is linear in the packet.
"""

from __future__ import annotations

import re

RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
TC260_NS = "http://www.tc260.org.cn/ns/AIGC/1.0/"
ELEMENTS = 4  # start tags in the packet: what the budget is charged, as expat would

PREFIX = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{RDF_NS}">'
    f'<rdf:Description rdf:about="" xmlns:TC260="{TC260_NS}"><TC260:AIGC>'
).encode("utf-8")
SUFFIX = b'</TC260:AIGC></rdf:Description></rdf:RDF></x:xmpmeta>\n<?xpacket end="w"?>'
PADDING = b"\x00 \t\r\n"  # what xmp._run strips from the end before parsing
# Bytes the value may not hold here: markup starts, carriage return, and the
# C0 controls XML forbids (tab and newline are allowed).
REFUSED = b"<&\r" + bytes(c for c in range(0x20) if c not in (0x09, 0x0A))
_NOT_CHAR = re.compile("[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")  # outside XML 1.0 Char


def values(data: bytes, max_value: int) -> tuple[list[str], list[str]] | None:
    """``([aigc], [])`` when ``data`` is the packet above, as ``xmp._values``
    reads it; None when unsure (then parse the packet). ``max_value``: a
    longer value is left to the parser, which cuts it."""
    if not data.startswith(PREFIX):
        return None
    start = len(PREFIX)
    end = data.find(b"<", start)
    if end < 0 or not data.startswith(SUFFIX, end):
        return None
    tail = end + len(SUFFIX)
    if tail < len(data) and data[tail:].lstrip(PADDING):
        return None
    raw = data[start:end]
    # characters <= bytes: a value this short is never cut
    if len(raw) > max_value or len(raw.translate(None, REFUSED)) != len(raw) or raw.find(b"]]>") >= 0:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.isascii() and _NOT_CHAR.search(text):
        return None
    return [text], []
