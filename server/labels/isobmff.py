"""MP4 / MOV (ISO/IEC 14496-12, QuickTime): the GB 45438 label in ``moov/udta/meta``.

Layout labelcheck writes and reads (iTunes-style metadata, the layout
ffmpeg, exiftool and Apple players already understand)::

    moov
      udta
        meta            FullBox, version 0, flags 0
          hdlr          FullBox; pre_defined 0, handler_type 'mdir',
                        reserved 'appl' 0 0, name ""
          ilst
            ----        one freeform item
              mean      FullBox + UTF-8 "cn.org.tc260"
              name      FullBox + UTF-8 "AIGC"
              data      type 1 (UTF-8, well-known type), locale 0,
                        value = the label's compact JSON (inner object)

Reading also accepts any ``----`` item named ``AIGC`` whatever its ``mean``,
a QuickTime ``mdta`` meta (``keys`` entry ``AIGC`` with its ``ilst`` item)
in ``moov/udta/meta`` or ``moov/meta``, and a ``meta`` box with or without the
FullBox header (QuickTime writes it without). The reader walks box headers
and seeks past ``mdat``; only ``udta`` and ``meta`` payloads are read.

Writing rebuilds ``moov`` only; when ``moov`` grows or shrinks in front of
media data, every ``stco``/``co64`` chunk offset past it is shifted by the
difference (as qt-faststart does), so samples stay byte-identical and
playable. Fragmented files with ``moov`` in front are refused.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Iterator

from ._io import Window
from .budget import Found
from .isobmff_boxes import MAX_BOXES, SOURCE, _boxes, _children, _walk, _walk_file, box
from .signals import Malformed
from .xmp import label_signal

C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
MEAN = b"cn.org.tc260"
NAME = b"AIGC"
MAX_META = 16 << 20
MAX_MOOV = 256 << 20
CONTAINERS = (b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf")


def scan(fp: BinaryIO, found: Found, head: bytes = b"", fd: int | None = None) -> bool:
    """Append the labels in ``fp``'s ``moov``; True when a C2PA ``uuid`` box is present.

    ``head``: the file's first bytes, when the caller has read them already;
    ``fd``: ``fp``'s descriptor when it may be read with ``pread`` (``_io.direct_fd``).
    """
    w = Window(fp, SOURCE, head, fd)
    budget = found.budget
    c2pa = False
    for btype, start, end in _walk_file(w) if fd is not None else _walk(w, 0, w.size):
        if btype == b"uuid":
            c2pa = c2pa or (end - start >= 16 and w.get(start, 16, "MP4 uuid") == C2PA_UUID)
            continue
        if btype != b"moov":
            continue
        if end - start <= w.block:  # a small moov: one read, walked in memory
            moov = w.get(start, end - start, "MP4 moov box")
            try:
                children = _children(moov, 0, len(moov))
            except Malformed:  # walk it box by box below: labels before the damage are kept
                pass
            else:
                for child, cstart, cend in children:
                    budget.tick(SOURCE)
                    if child == b"udta" or child == b"meta":
                        _charge(found, child, cend - cstart)
                        _meta_box(moov[cstart:cend], child, found)
                continue
        # A big moov (sample tables) or a damaged one: only its headers and udta/meta are read.
        for child, cstart, cend in _walk(w, start, end):
            budget.tick(SOURCE)
            if child == b"udta" or child == b"meta":
                _charge(found, child, cend - cstart)
                _meta_box(w.get(cstart, cend - cstart, _WHAT[child]), child, found)
    return c2pa


_WHAT = {b"udta": "MP4 udta box", b"meta": "MP4 meta box"}  # names in error messages


def _charge(found: Found, child: bytes, size: int) -> None:
    """Refuse an oversized ``udta``/``meta`` box, else charge it to the budget (before reading it)."""
    if size > MAX_META:
        raise Malformed(SOURCE, "too_large", f"{_WHAT[child]} is {size} bytes, limit {MAX_META}")
    found.budget.spend_bytes(size, SOURCE, _WHAT[child])


def _meta_box(body: bytes, child: bytes, found: Found) -> None:
    """Append the labels in one ``moov/udta`` or ``moov/meta`` box's payload."""
    if child == b"udta":
        value = _written_value(body)
        if value is not None:  # exactly the box labelcheck writes: one label, no walk needed
            found.append(label_signal(SOURCE, value))
            return
    metas = _children(body, 0, len(body)) if child == b"udta" else [(b"meta", 0, len(body))]
    for mtype, ms, me in metas:
        if mtype == b"meta":
            for value in meta_labels(body[ms:me]):
                found.append(label_signal(SOURCE, value))  # each spends an item: a Limit ends the walk


def _meta_start(meta: bytes) -> int:
    """0 for a QuickTime ``meta`` (plain box), 4 for an ISO FullBox ``meta``."""
    return 0 if meta[4:8] in (b"hdlr", b"keys", b"ilst") else 4


def _data_value(buf: bytes, start: int, end: int) -> bytes | None:
    for btype, s, e in _children(buf, start, end):
        if btype == b"data" and e - s >= 8:
            return buf[s + 8 : e]
    return None


def _freeform(buf: bytes, start: int, end: int) -> tuple[bytes, bytes | None]:
    """``(name_payload, value)`` of a ``----`` item: its (last) ``name`` box
    and the value of its first ``data`` box, from one walk of the item."""
    name, value = b"", None
    for btype, s, e in _children(buf, start, end):
        if btype == b"name":
            name = buf[s:e]
        elif btype == b"data" and value is None and e - s >= 8:
            value = buf[s + 8 : e]
    return name, value


def meta_labels(meta: bytes) -> Iterator[bytes]:
    """The AIGC values in one ``meta`` box payload (freeform or ``mdta`` keys),
    yielded one by one so a caller can stop early."""
    kids = _children(meta, _meta_start(meta), len(meta))
    keys: dict[int, bytes] = {}
    for btype, s, e in kids:
        if btype == b"keys" and e - s >= 8:
            (count,) = struct.unpack_from(">I", meta, s + 4)
            pos = s + 8
            for index in range(1, min(count, MAX_BOXES) + 1):
                if pos + 8 > e:
                    raise Malformed(SOURCE, "truncated", "MP4 keys box is truncated")
                (ksize,) = struct.unpack_from(">I", meta, pos)
                if ksize < 8 or pos + ksize > e:
                    raise Malformed(SOURCE, "bad_length", "MP4 keys entry has a bad size")
                keys[index] = meta[pos + 8 : pos + ksize]
                pos += ksize
    for btype, s, e in kids:
        if btype != b"ilst":
            continue
        for itype, istart, iend in _children(meta, s, e):
            if itype == b"----":
                name, value = _freeform(meta, istart, iend)
                if name[4:] != NAME:
                    continue
            elif keys.get(int.from_bytes(itype, "big")) != NAME:
                continue
            else:
                value = _data_value(meta, istart, iend)
            if value is not None:
                yield value


# --- writing -----------------------------------------------------------------


def label_item(value: bytes) -> bytes:
    """The ``----`` freeform item holding the label."""
    return box(
        b"----",
        box(b"mean", b"\x00\x00\x00\x00" + MEAN)
        + box(b"name", b"\x00\x00\x00\x00" + NAME)
        + box(b"data", struct.pack(">II", 1, 0) + value),
    )


HDLR_MDIR = box(b"hdlr", b"\x00" * 8 + b"mdir" + b"appl" + b"\x00" * 8 + b"\x00")


def _written_value(udta: bytes) -> bytes | None:
    """The label value when ``udta``'s payload is byte for byte the ``meta``
    box ``_new_meta(None, value)`` writes (the layout in the module doc, one
    item), else None: then the boxes are walked. Only the four box sizes
    depend on the value's length, so one comparison decides."""
    n = len(udta) - _WRITTEN_LEN
    if n < 0 or udta[:_WRITTEN_LEN] != _written_prefix(n):
        return None
    return udta[_WRITTEN_LEN:]


def _is_label_item(buf: bytes, itype: bytes, s: int, e: int) -> bool:
    if itype != b"----":
        return False
    return any(t == b"name" and buf[a + 4 : b] == NAME for t, a, b in _children(buf, s, e))


def _handler(meta: bytes) -> bytes | None:
    kids = _children(meta, _meta_start(meta), len(meta))
    return next((meta[s + 8 : s + 12] for t, s, e in kids if t == b"hdlr" and e - s >= 12), None)


def _new_meta(meta: bytes | None, value: bytes | None) -> bytes:
    """An ``mdir`` meta box: ``meta``'s items without any AIGC item, plus ``value``'s."""
    if meta is None:
        return box(b"meta", b"\x00\x00\x00\x00" + HDLR_MDIR + box(b"ilst", label_item(value)))
    first = _meta_start(meta)
    out, has_ilst = [meta[:first]], False
    for t, start, s, e in _boxes(meta, first, len(meta)):
        if t != b"ilst":
            out.append(meta[start:e])
            continue
        has_ilst = True
        items = [meta[b0:b] for it, b0, a, b in _boxes(meta, s, e) if not _is_label_item(meta, it, a, b)]
        out.append(box(b"ilst", b"".join(items) + (label_item(value) if value is not None else b"")))
    if not has_ilst and value is not None:
        out.append(box(b"ilst", label_item(value)))
    return box(b"meta", b"".join(out))


# The meta box _new_meta writes for an empty value, cut at its four box sizes
# (meta, ilst, ----, data): a value of n bytes adds n to each, nothing else.
_WRITTEN = _new_meta(None, b"")
_WRITTEN_LEN = len(_WRITTEN)
_SIZE_AT = (0, 12 + len(HDLR_MDIR), 20 + len(HDLR_MDIR), _WRITTEN_LEN - 16)
_CUTS = list(zip(_SIZE_AT, _SIZE_AT[1:] + (_WRITTEN_LEN,)))
_WRITTEN_PACK = struct.Struct(">" + "".join(f"I{b - a - 4}s" for a, b in _CUTS)).pack
(_S0, _P0), (_S1, _P1), (_S2, _P2), (_S3, _P3) = [
    (struct.unpack_from(">I", _WRITTEN, a)[0], _WRITTEN[a + 4 : b]) for a, b in _CUTS
]


def _written_prefix(n: int) -> bytes:
    """The first ``_WRITTEN_LEN`` bytes of the meta box written for an ``n``-byte value."""
    return _WRITTEN_PACK(_S0 + n, _P0, _S1 + n, _P1, _S2 + n, _P2, _S3 + n, _P3)


def _new_moov(data: bytes, start: int, end: int, value: bytes) -> bytes:
    """``moov`` with the label in the first ``udta``'s ``mdir`` meta; any other
    AIGC freeform item (in a later ``udta`` or ``meta``) is removed."""
    out, placed = [], False
    for t, b0, s, e in _boxes(data, start, end):
        if t != b"udta":
            out.append(data[b0:e])
            continue
        parts, tail = [], s
        for ut, ub, us, ue in _boxes(data, s, e):
            tail = ue
            if ut != b"meta":
                parts.append(data[ub:ue])
                continue
            meta = data[us:ue]
            if _handler(meta) != b"mdir":
                if not placed:
                    raise Malformed(SOURCE, "unsupported", f"moov/udta/meta has handler {_handler(meta)!r}, not 'mdir'")
                parts.append(data[ub:ue])
                continue
            parts.append(_new_meta(meta, None if placed else value))
            placed = True
        if not placed:
            parts.append(_new_meta(None, value))
            placed = True
        out.append(box(b"udta", b"".join(parts) + data[tail:e]))  # keep a trailing terminator
    if not placed:
        out.append(box(b"udta", _new_meta(None, value)))
    return box(b"moov", b"".join(out))


def _shift_offsets(moov: bytearray, after: int, delta: int) -> None:
    """Add ``delta`` to every chunk offset >= ``after`` in ``moov``'s stco/co64."""

    def visit(start: int, end: int) -> None:
        for t, s, e in _children(moov, start, end):
            if t in CONTAINERS:
                visit(s, e)
            elif t in (b"stco", b"co64"):
                width, fmt = (4, ">I") if t == b"stco" else (8, ">Q")
                (count,) = struct.unpack_from(">I", moov, s + 4)
                if s + 8 + count * width > e:
                    raise Malformed(SOURCE, "bad_length", f"MP4 {t.decode()} box is truncated")
                for i in range(count):
                    at = s + 8 + i * width
                    (offset,) = struct.unpack_from(fmt, moov, at)
                    if offset >= after:
                        if offset + delta >= 1 << (8 * width):
                            raise Malformed(SOURCE, "too_large", "chunk offset overflows stco; needs co64")
                        struct.pack_into(fmt, moov, at, offset + delta)

    moov_kids = _children(moov, 8, len(moov))
    for t, s, e in moov_kids:
        if t == b"trak":
            visit(s, e)


def embed(data: bytes, value: bytes) -> bytes:
    """``data`` with exactly one ``moov/udta/meta`` AIGC item holding ``value``."""
    top = _boxes(data, 0, len(data))
    moovs = [(i, b, s, e) for i, (t, b, s, e) in enumerate(top) if t == b"moov"]
    if len(moovs) != 1:
        raise Malformed(SOURCE, "unsupported", f"MP4 has {len(moovs)} moov boxes, need exactly one")
    index, old_start, start, end = moovs[0]
    if end - start > MAX_MOOV:
        raise Malformed(SOURCE, "too_large", "MP4 moov box is too large to rewrite")
    new = bytearray(_new_moov(data, start, end, value))
    delta = len(new) - (end - old_start)
    later = {t for t, _b, _s, _e in top[index + 1 :]}
    if delta and later:
        if later & {b"moof", b"sidx", b"mfra"} or any(t == b"mvex" for t, _s, _e in _children(new, 8, len(new))):
            raise Malformed(SOURCE, "unsupported", "fragmented MP4 with moov in front cannot be relabelled losslessly")
        _shift_offsets(new, end, delta)
    return data[:old_start] + bytes(new) + data[end:]
