"""The MP4 ``udta`` labelcheck writes is read by one comparison, as the walk reads it.

``isobmff._written_value`` recognises the exact ``meta`` box ``embed``
writes; whatever it accepts must give what walking the boxes gives, and
anything else (other items, damage, other sizes) must be left to the walk.
"""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

import media_factory as mf
from labelcheck.labels import aigc, embed_label, isobmff, read_labels
from labelcheck.labels.budget import Budget, Found
from labelcheck.labels.signals import Malformed


def walked(udta: bytes):
    """The values the box walk finds in a ``udta`` payload, or why it fails."""
    try:
        return [value for btype, s, e in isobmff._children(udta, 0, len(udta)) if btype == b"meta"
                for value in isobmff.meta_labels(udta[s:e])]
    except Malformed as exc:
        return ("malformed", exc.code)


def agree(udta: bytes) -> None:
    fast = isobmff._written_value(udta)
    if fast is not None:
        assert walked(udta) == [fast]


def test_the_box_labelcheck_writes_is_recognised():
    for label in (mf.LABEL, dict(mf.LABEL, ContentProducer="生成AI 公司" * 10)):
        value = aigc.dumps(label).encode()
        udta = isobmff._new_meta(None, value)
        assert isobmff._written_value(udta) == value
        agree(udta)


def test_other_layouts_are_walked():
    value = aigc.dumps(mf.LABEL).encode()
    written = isobmff._new_meta(None, value)
    others = [
        written + isobmff.box(b"free", b""),  # another box after the meta
        isobmff.box(b"free", b"") + written,
        written[:-1],  # truncated
        written.replace(b"AIGC", b"AIGX"),  # another item name
        written.replace(b"mdir", b"mdta"),  # another handler
        isobmff._new_meta(mf.ilst_tool_udta()[16:], value),  # ffmpeg's meta: an item beside the label
    ]
    for udta in others:
        assert isobmff._written_value(udta) is None
        agree(udta)


def test_files_read_alike_on_both_paths():
    labelled = embed_label(mf.mp4().data, mf.LABEL)
    [signal] = read_labels(io.BytesIO(labelled))
    assert (signal.status, signal.detail["aigc"]) == ("declared", mf.LABEL)
    # With another udta item the walk reads it, to the same label.
    other = embed_label(mf.mp4(udta=mf.ilst_tool_udta()).data, mf.LABEL)
    [signal] = read_labels(io.BytesIO(other))
    assert (signal.status, signal.detail["aigc"]) == ("declared", mf.LABEL)


def test_the_fast_path_spends_the_same_item():
    udta = isobmff._new_meta(None, aigc.dumps(mf.LABEL).encode())
    found = Found(Budget(max_items=0))
    try:
        isobmff._meta_box(udta, b"udta", found)
    except Malformed as exc:
        assert exc.code == "limit"
    else:
        raise AssertionError("no item left, yet a label was added")


@settings(max_examples=300, deadline=None)
@given(value=st.binary(max_size=300))
def test_generated_values_agree(value):
    udta = isobmff._new_meta(None, value)
    assert isobmff._written_value(udta) == value
    agree(udta)


_WRITTEN = isobmff._new_meta(None, aigc.dumps(mf.LABEL).encode())


@settings(max_examples=400, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, len(_WRITTEN)), st.sampled_from(["insert", "delete", "replace"]),
                                st.integers(0, 255)), min_size=1, max_size=4))
def test_mutated_boxes_agree(edits):
    data = bytearray(_WRITTEN)
    for at, how, byte in edits:
        at = min(at, len(data))
        if how == "insert":
            data[at:at] = bytes([byte])
        elif at < len(data):
            data[at : at + 1] = b"" if how == "delete" else bytes([byte])
    agree(bytes(data))


def test_a_uuid_box_is_stepped_over_not_walked_into(tmp_path):
    labelled = embed_label(mf.mp4().data, mf.LABEL)
    ftyp = int.from_bytes(labelled[:4], "big")
    # A uuid box whose payload would read as a bad box if it were walked.
    data = labelled[:ftyp] + isobmff.box(b"uuid", b"\xff\xff\xff\xffjunk" + bytes(16)) + labelled[ftyp:]
    path = tmp_path / "uuid.mp4"
    path.write_bytes(data)
    with open(path, "rb") as fh:
        from_file = [s.to_dict() for s in read_labels(fh)]
    assert from_file == [s.to_dict() for s in read_labels(io.BytesIO(data))]
    assert [(s["status"], s["detail"].get("aigc")) for s in from_file] == [("declared", mf.LABEL)]
