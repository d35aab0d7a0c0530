"""The byte-level reading of labelcheck's own XMP packet agrees with the parse.

``xmp_fast.values`` reads the packet ``xmp.with_label`` writes without expat;
whatever it accepts must read exactly as ``xmp._parsed_values`` reads it
(values, budget charged), and everything else must be left to the parser:
generated values with markup, references, controls and bad UTF-8, and
packets mutated byte by byte.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import media_factory as mf
from labelcheck.labels import aigc, embed_label, read_labels, xmp, xmp_fast
from labelcheck.labels.budget import Budget, Limit
from labelcheck.labels.signals import Malformed

PACKET = xmp.with_label(None, mf.LABEL)


def packet(value: bytes, padding: bytes = b"") -> bytes:
    return xmp_fast.PREFIX + value + xmp_fast.SUFFIX + padding


def parsed(data: bytes, budget: Budget | None = None):
    """What the expat reading gives: the values, or the reason it refuses."""
    try:
        return xmp._parsed_values(data, budget=budget)
    except Limit as exc:
        return ("limit", exc.what)
    except Malformed as exc:
        return ("malformed", exc.code)


def agree(data: bytes) -> None:
    fast = xmp_fast.values(data, xmp.MAX_VALUE)
    if fast is not None:
        assert fast == parsed(data)
    # And through the dispatching reader, with the budget it charges.
    quick, slow = Budget(), Budget()
    try:
        got = xmp._values(data, budget=quick)
    except Malformed as exc:
        got = ("limit", exc.what) if isinstance(exc, Limit) else ("malformed", exc.code)
    assert got == parsed(data, slow)
    assert quick.elements_left == slow.elements_left


def test_the_packet_labelcheck_writes_is_read_without_the_parser():
    assert PACKET.startswith(xmp_fast.PREFIX)
    for padding in (b"", b"\n", b" " * 2048 + b"\x00\x00", b"\r\n\t"):
        data = PACKET + padding
        assert xmp_fast.values(data, xmp.MAX_VALUE) == ([aigc.dumps(mf.LABEL)], [])
        agree(data)
    # Non-ASCII label text (UTF-8) stays on the fast path and reads the same.
    label = dict(mf.LABEL, ContentProducer="生成AI 公司")
    data = xmp.with_label(None, label)
    assert xmp_fast.values(data, xmp.MAX_VALUE) == ([aigc.dumps(label)], [])
    agree(data)


def test_every_container_reads_the_fast_packet_like_the_parse():
    for media in (mf.jpeg(), mf.png(), mf.webp()):
        [signal] = read_labels(io.BytesIO(embed_label(media, mf.LABEL)))
        assert (signal.status, signal.detail["aigc"]) == ("declared", mf.LABEL)


@pytest.mark.parametrize(
    "data",
    [
        packet(b"a&amp;b"),  # entity: the parser decodes it
        packet(b"&#65;"),
        packet(b"a\r\nb"),  # carriage return: the parser rewrites it
        packet(b"a]]>b"),  # not allowed in character data
        packet(b"a\x01b"),  # control character
        packet(b"a\x0cb"),
        packet("a\ufffeb".encode()),  # UTF-8, but not an XML Char
        packet(b"\xff\xfe"),  # not UTF-8
        packet("\ud800".encode("utf-8", "surrogatepass")),
        packet(b"x" * (xmp.MAX_VALUE + 1)),  # long enough to be cut
        packet(b"v", b"\n<!-- after -->"),  # anything but padding after the packet
        packet(b"v", b"x"),
        packet(b"v").replace(b"?>\n<x:", b"?>\n <x:"),  # other spacing
        packet(b"v").replace(b"TC260", b"t"),  # other prefix
        packet(b"v")[:-1],  # truncated
        packet(b"<b/>"),
    ],
)
def test_unsure_packets_are_left_to_the_parser(data):
    assert xmp_fast.values(data, xmp.MAX_VALUE) is None
    agree(data)


_any_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)


@settings(max_examples=400, deadline=None)
@given(value=st.one_of(
    _any_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=40),
    st.lists(st.sampled_from([b"a", b"<", b"&", b"&lt;", b"]]>", b"]]", b">", b"\r", b"\n", b"\t", b"\x00",
                              b"\x7f", b"\xc2\x85", b"\xef\xbf\xbe", b"\xef\xbf\xbd", b"\xed\xa0\x80", b"{\"Label\":\"1\"}"]),
             max_size=12).map(b"".join),
), padding=st.sampled_from([b"", b"\n", b"\x00 \t\r\n", b"\n\x00x"]))
def test_fast_path_agrees_on_generated_values(value, padding):
    agree(packet(value, padding))


@settings(max_examples=400, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, len(PACKET)), st.sampled_from(["insert", "delete", "replace"]),
                                st.sampled_from(b"<>&/\"' \n\r\x00:=?!-]aA\xef\xbb\xbf\xff")), min_size=1, max_size=4))
def test_fast_path_agrees_on_mutated_packets(edits):
    data = bytearray(PACKET)
    for at, how, byte in edits:
        at = min(at, len(data))
        if how == "insert":
            data[at:at] = bytes([byte])
        elif at < len(data):
            data[at : at + 1] = b"" if how == "delete" else bytes([byte])
    agree(bytes(data))


def test_budget_is_charged_and_enforced_alike():
    # Elements: the fast path charges its four start tags; too few left and the
    # parser raises the same Limit it always did.
    budget = Budget(max_elements=10)
    xmp._values(PACKET, budget=budget)
    assert budget.elements_left == 10 - xmp_fast.ELEMENTS
    for max_elements in (0, 3):
        with pytest.raises(Limit) as err:
            xmp.signals(PACKET, "jpeg", Budget(max_elements=max_elements))
        assert err.value.what == "elements"
    # Items: no value may be taken when none are left.
    with pytest.raises(Limit) as err:
        xmp.signals(PACKET, "jpeg", Budget(max_items=0))
    assert err.value.what == "items"
    # Time: the packet is read only while the file's time lasts.
    with pytest.raises(Limit) as err:
        xmp.signals(PACKET, "jpeg", Budget(seconds=-1))
    assert err.value.what == "time"


def test_size_cap_holds_for_the_fast_shape():
    [signal] = xmp.signals(PACKET + b" " * xmp.MAX_XMP, "jpeg")
    assert signal.reasons == ["malformed", "xmp_too_large"]
    assert xmp._written(PACKET + b" " * xmp.MAX_XMP, Budget()) is None
