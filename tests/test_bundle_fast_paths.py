"""The fast paths of bundle verification agree with the full checks.

``entry_shape.Shapes`` accepts entry lines without parsing them, and
``subtrees`` lets worker processes hand over subtree hashes instead of leaves;
each must give exactly what the reference (``canonical.parse`` with the index
and prev checks; ``merkle.RootBuilder``) gives, on valid and hostile input.
"""

from __future__ import annotations

import hashlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelcheck.ledger import Ledger, bundle_complete, canonical, merkle, subtrees, verify_bundle
from labelcheck.ledger.entry_shape import MAX_LEARNED, Shapes, shape_pattern
from labelcheck.util import b64

KEYS = ["category", "index", "kind", "n", "prev", "reasons", "time", "é", "ok", "z"]
texts = st.one_of(st.text(alphabet="az é€😀-0:,[]{} ", max_size=8), st.text(max_size=4))
scalars = st.one_of(texts, st.integers(-(2**53) + 1, 2**53 - 1), st.booleans(), st.none())
flat = st.one_of(scalars, st.lists(scalars, max_size=3))
nested = st.one_of(flat, st.dictionaries(st.sampled_from(KEYS), scalars, max_size=2), st.lists(st.lists(scalars)))


def entries(values):
    return st.builds(
        lambda rest, index, prev: dict(sorted({**rest, "index": index, "prev": prev}.items())),  # as parsed
        st.dictionaries(st.sampled_from(KEYS), values, max_size=6),
        st.integers(0, 10**6),
        st.text(alphabet="ABCz09+/=", max_size=44),
    )


NOISE = [b" ", b'"', b"\\", b"-", b"0", b"1", b",", b":", b"{", b"}", b"[", b"]", b"\n", b"\t", b"\x00", b"\x1f",
         b"\x7f", b"\xff", b"\xc3", b"\xa9", b"e", b".", b"true", b"null", b'"index":1,', b'\\u0041', b"-0"]
NUMERIC = [b"0", b"-", b"-0", b"00", b"1.", b"1e", b"+"]
edits = st.lists(st.tuples(st.integers(0, 10**4), st.sampled_from(["insert", "delete", "replace", "at digit"]),
                           st.sampled_from(NOISE)), max_size=3)


def mutate(data: bytes, ops) -> bytes:
    for at, op, noise in ops:
        at %= len(data) + 1
        if op == "at digit":  # where an integer starts: leading zeros, signs, fractions, exponents
            starts = [i + 1 for i in range(len(data) - 1) if data[i] in b":,[" and data[i + 1] in b"-0123456789"]
            at, noise = (starts[at % len(starts)] if starts else at), NUMERIC[at % len(NUMERIC)]
        if op in ("insert", "at digit"):
            data = data[:at] + noise + data[at:]
        elif op == "delete":
            data = data[:at] + data[at + 1 :]
        else:
            data = data[:at] + noise + data[at + len(noise) :]
    return data


def agrees(shapes: Shapes, data: bytes) -> None:
    """Whatever ``shapes`` accepts, the full check accepts, with the same index and prev."""
    got = shapes.match(data)
    if got is None:
        return
    value = canonical.parse(data)  # raises if the fast path accepted a non-canonical line
    assert type(value) is dict
    assert value["index"] == int(got[0]) and type(value["index"]) is int
    assert value["prev"] == got[1].decode("utf-8")


@settings(max_examples=1000, deadline=None)
@given(entries(flat), edits, entries(nested))
def test_shapes_accept_only_what_the_full_check_accepts(entry, ops, other):
    shapes = Shapes()
    for value in (entry, other):
        shapes.learn(value)
    data = canonical.dumps(entry)
    if shape_pattern(entry) is not None and b"\\" not in data:  # its own canonical bytes are recognised
        assert shapes.match(data) == (b"%d" % entry["index"], entry["prev"].encode("utf-8"))
    agrees(shapes, data)
    agrees(shapes, mutate(data, ops))
    agrees(shapes, mutate(canonical.dumps(other), ops))


@pytest.mark.parametrize("line", [
    b'{"index":1,"n":01,"prev":""}',  # a leading zero
    b'{"index":1,"n":-0,"prev":""}',
    b'{"index":1,"n":1.0,"prev":""}',
    b'{"index":1,"n":1e3,"prev":""}',
    b'{"index":1, "n":1,"prev":""}',  # white space
    b'{"index":1,"n":"\\u0041","prev":""}',  # a needless escape
    b'{"index":1,"n":"\x01","prev":""}',  # a raw control character
    b'{"index":1,"n":"\xff","prev":""}',  # not UTF-8
    b'{"index":1,"n":"\xc3","prev":""}',  # a truncated UTF-8 sequence
    b'{"index":1,"n":1,"n":1,"prev":""}',  # a duplicate key
    b'{"n":1,"index":1,"prev":""}',  # keys out of order
    b'{"index":01,"n":1,"prev":""}',
    b'{"index":1,"n":1,"prev":""} ',
    b'{"index":1,"n":[1,],"prev":""}',
    b'{"index":1,"n":1,"prev":"\\/"}',
])
def test_shapes_leave_near_misses_to_the_full_check(line):
    shapes = Shapes()
    shapes.learn({"index": 1, "n": 1, "prev": ""})
    assert shapes.match(b'{"index":1,"n":1,"prev":""}') == (b"1", b"")
    assert shapes.match(line) is None
    with pytest.raises(canonical.CanonicalError):
        canonical.parse(line)


def test_shapes_keep_a_few_and_learn_only_flat_entries():
    shapes = Shapes()
    shapes.learn({"index": 0, "nested": {"a": 1}, "prev": ""})
    shapes.learn({"index": 0})  # no prev: nothing the fast path could use
    shapes.learn({"index": 0, 'q"': 1, "prev": ""})  # a key that would need escaping
    assert shape_pattern({"prev": "", "index": 0}) is None  # keys out of order: no canonical text matches
    assert shapes.match(canonical.dumps({"index": 0, "nested": {"a": 1}, "prev": ""})) is None
    for n in range(12):
        shapes.learn({"index": 0, f"k{n:02d}": n, "prev": ""})
    assert shapes.match(canonical.dumps({"index": 3, "k11": 5, "prev": "x"})) == (b"3", b"x")
    assert shapes.match(canonical.dumps({"index": 3, "k00": 5, "prev": "x"})) is None  # forgotten


def test_shapes_stop_learning_after_their_budget():
    """Each new shape costs a compile: ever-new shapes must not cost more than full checks do."""
    shapes = Shapes()
    for n in range(MAX_LEARNED + 1):
        shapes.learn({"index": 0, f"k{n:02d}": n, "prev": ""})
    last = canonical.dumps({"index": 0, f"k{MAX_LEARNED:02d}": 1, "prev": ""})
    assert shapes.match(last) is None
    assert shapes.match(canonical.dumps({"index": 0, f"k{MAX_LEARNED - 1:02d}": 1, "prev": ""})) == (b"0", b"")


def leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(b"%d" % i).digest() for i in range(n)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=6), st.integers(-1, 200))
def test_subtree_ranges_give_the_roots_that_leaves_give(sizes, cut):
    """Blocks of any sizes, split at ``cut``, give the root at every block end and at the cut."""
    all_leaves = leaves(sum(sizes))
    frontier, start = subtrees.Frontier(), 0
    for size in sizes:
        for level, h in subtrees.range_nodes(start, all_leaves[start : start + size], cut):
            if frontier.size == cut:
                assert frontier.root() == root_of(all_leaves[:cut])
            frontier.append(level, h)
        start += size
        assert frontier.size == start and frontier.root() == root_of(all_leaves[:start])


def root_of(leaf_hashes: list[bytes]) -> bytes:
    """The reference: leaves appended one by one."""
    builder = merkle.RootBuilder()
    for leaf in leaf_hashes:
        builder.append(leaf)
    return builder.root()


def test_a_subtree_must_start_at_a_multiple_of_its_size():
    frontier = subtrees.Frontier()
    frontier.append(0, leaves(1)[0])
    with pytest.raises(ValueError, match="cannot start at 1"):
        frontier.append(1, leaves(1)[0])


def chain(n: int, **extra) -> list[bytes]:
    out, prev = [], ""
    for i in range(n):
        data = canonical.dumps({"index": i, "note": "é", "prev": prev, **extra})
        out.append(data)
        prev = b64.encode(merkle.leaf_hash(data))
    return out


DAMAGE = [
    lambda ls: ls.__setitem__(5, ls[5].replace(b'"note":', b'"note" :')),
    lambda ls: ls.__setitem__(5, ls[5].replace(b'"index":5', b'"index":6')),
    lambda ls: ls.__setitem__(5, ls[5].replace(b'"prev":"', b'"prev":"A')),
    lambda ls: ls.__setitem__(5, ls[5].replace("é".encode(), b"\\u00e9")),
    lambda ls: ls.__setitem__(5, ls[5].replace("é".encode(), b"\xe9")),
    lambda ls: ls.__setitem__(5, b'{"index":5,"prev":' + ls[5].split(b'"prev":')[1].replace(b"}", b',"x":1.5}')),
]


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_block_fails_alike_with_and_without_learned_shapes(monkeypatch, damage):
    lines = chain(12)
    damage(lines)
    block = b"".join(line + b"\n" for line in lines)
    fast = bundle_complete.check_block(0, block, -1, True)  # the first entries teach the shape
    monkeypatch.setattr(Shapes, "learn", lambda self, value: None)  # every entry takes the full check
    slow = bundle_complete.check_block(0, block, -1, True)
    assert fast == slow
    assert fast[0][0] == 5 and fast[0][1].startswith("entry 5: ")


@pytest.mark.parametrize("damage", DAMAGE)
def test_one_process_fails_alike_with_and_without_the_fast_path(tmp_path, damage):
    """Without ``on_entry`` entries take the fast path; with it, the full parse. Same verdict."""
    with Ledger.open_dir(tmp_path / "data", origin="fast.example/log") as led:
        led.append([{"note": "é", "n": i} for i in range(12)])
        out = io.BytesIO()
        led.export(out)
        vkey = led.verifier_key
    header, *lines = out.getvalue().split(b"\n")[:-1]
    damage(lines)
    data = b"".join(line + b"\n" for line in [header, *lines])
    fast = verify_bundle(io.BytesIO(data), vkey, workers=1)
    seen = []
    slow = verify_bundle(io.BytesIO(data), vkey, workers=1, on_entry=lambda *e: seen.append(e))
    assert (fast.problems, fast.first_bad_index) == (slow.problems, slow.first_bad_index)
    assert not fast.ok and fast.first_bad_index == 5 and len(seen) == 5
