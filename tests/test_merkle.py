"""RFC 6962 / RFC 9162 §2.1 Merkle hashing and proofs (ledger.merkle).

Three sources of truth: the classic 8-leaf tree figures from RFC 6962's test
vectors (written in below), a naive recursive implementation of the RFC's
definitions of MTH, PATH and PROOF written here, and Go's tlog in
test_go_interop.py.
"""

from __future__ import annotations

import json
import random
from functools import lru_cache
from hashlib import sha256

import pytest
from conftest import shared_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelcheck.ledger import merkle
from labelcheck.ledger.merkle import (
    EMPTY_ROOT,
    MemoryHashes,
    ProofError,
    RootBuilder,
    leaf_hash,
    node_hash,
    prove_consistency,
    prove_inclusion,
    split_stored_hash_index,
    stored_hash_count,
    stored_hash_index,
    stored_hashes,
    tree_hash,
    verify_consistency,
    verify_inclusion,
)

H = bytes.fromhex

# --- the classic 8-leaf tree (transparency-dev/merkle, RFC 6962 test data) ---

LEAF_INPUTS = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [  # (leaf index, tree size, audit path)
    (0, 1, []),
    (0, 8, [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]),
    (5, 8, [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]),
]
CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (1, 8, [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]),
    (6, 8, [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]),
    (2, 5, [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]),
    (6, 7, [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]),
]


def classic_tree() -> MemoryHashes:
    tree = MemoryHashes()
    for data in LEAF_INPUTS:
        tree.append_data(H(data))
    return tree


# --- the naive model: RFC 9162 §2.1 definitions, recursively ------------------


def _k(n: int) -> int:
    """Largest power of two strictly smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class Naive:
    """MTH, PATH and PROOF exactly as RFC 9162 §2.1 defines them, over ranges."""

    def __init__(self, leaves: list[bytes]):
        self.leaves = leaves
        self.mth = lru_cache(maxsize=None)(self._mth)

    def _mth(self, lo: int, hi: int) -> bytes:
        if hi == lo:
            return sha256(b"").digest()
        if hi - lo == 1:
            return sha256(b"\x00" + self.leaves[lo]).digest()
        k = _k(hi - lo)
        return sha256(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi)).digest()

    def path(self, m: int, n: int) -> list[bytes]:
        return [self.mth(lo, hi) for lo, hi in path_ranges(m, 0, n)]

    def proof(self, m: int, n: int) -> list[bytes]:
        return [self.mth(lo, hi) for lo, hi in subproof_ranges(m, 0, n, True)]


def path_ranges(m: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """PATH(m, D[lo:hi]) as ranges (RFC 9162 §2.1.3.1)."""
    n = hi - lo
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return path_ranges(m, lo, lo + k) + [(lo + k, hi)]
    return path_ranges(m - k, lo + k, hi) + [(lo, lo + k)]


def subproof_ranges(m: int, lo: int, hi: int, b: bool) -> list[tuple[int, int]]:
    """SUBPROOF(m, D[lo:hi], b) as ranges (RFC 9162 §2.1.4.1)."""
    n = hi - lo
    if m == n:
        return [] if b else [(lo, hi)]
    k = _k(n)
    if m <= k:
        return subproof_ranges(m, lo, lo + k, b) + [(lo + k, hi)]
    return subproof_ranges(m - k, lo + k, hi, False) + [(lo, lo + k)]


def _evaluate(lo: int, hi: int, known: dict) -> bytes | None:
    """MTH(D[lo:hi]) computed only from the ``known`` subtree hashes."""
    if (lo, hi) in known:
        return known[(lo, hi)]
    if hi - lo <= 1:
        return None
    k = _k(hi - lo)
    left = _evaluate(lo, lo + k, known)
    if left is None:
        return None
    right = _evaluate(lo + k, hi, known)
    if right is None:
        return None
    return sha256(b"\x01" + left + right).digest()


def naive_accepts_inclusion(index: int, size: int, leaf: bytes, proof, root: bytes) -> bool:
    """Would the proof hold for the claim, judged by the RFC's recursive definition?"""
    if not 0 <= index < size:
        return False
    ranges = path_ranges(index, 0, size)
    if len(ranges) != len(proof):
        return False
    known = dict(zip(ranges, proof))
    known[(index, index + 1)] = leaf
    return _evaluate(0, size, known) == root


def naive_accepts_consistency(m: int, n: int, old_root: bytes, new_root: bytes, proof) -> bool:
    if not 0 < m <= n:
        return False
    if m == n:
        return not proof and old_root == new_root
    ranges = subproof_ranges(m, 0, n, True)
    if not proof or len(ranges) != len(proof):
        return False
    known = dict(zip(ranges, proof))
    if (0, m) not in known:  # SUBPROOF ended on the old tree itself: the verifier holds its root
        known[(0, m)] = old_root
    return _evaluate(0, m, known) == old_root and _evaluate(0, n, known) == new_root


def tree_of(n: int, seed: int = 0) -> tuple[MemoryHashes, Naive]:
    rnd = random.Random(seed)
    leaves = [rnd.randbytes(rnd.randrange(0, 40)) for _ in range(n)]
    store = MemoryHashes()
    for leaf in leaves:
        store.append_data(leaf)
    return store, Naive(leaves)


_TREES: dict[int, tuple[MemoryHashes, Naive]] = {}


def shared_tree() -> tuple[MemoryHashes, Naive]:
    """One 520-leaf tree (and its naive model) reused by every property test."""
    if not _TREES:
        _TREES[0] = tree_of(520, seed=6962)
    return _TREES[0]


def flip(b: bytes, bit: int) -> bytes:
    out = bytearray(b)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- hashing figures -----------------------------------------------------------


def test_hash_figures():
    assert EMPTY_ROOT == H(ROOTS[0])
    assert leaf_hash(b"") == H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"L123456") == H("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    # The 0x01 || l || r framing, with raw 4-byte children as in the upstream test.
    assert node_hash(b"N123", b"N456") == H("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")


def test_classic_roots_at_every_size():
    tree = classic_tree()
    for size, root in enumerate(ROOTS):
        assert tree.root(size) == H(root)
        assert tree_hash(size, tree.read_hashes) == H(root)
    builder = RootBuilder()
    assert builder.root() == H(ROOTS[0])
    for size, data in enumerate(LEAF_INPUTS, start=1):
        builder.append(leaf_hash(H(data)))
        assert (builder.size, builder.root()) == (size, H(ROOTS[size]))


@pytest.mark.parametrize("index,size,path", INCLUSION)
def test_classic_inclusion_proofs(index, size, path):
    tree = classic_tree()
    proof = tree.prove_inclusion(index, size)
    assert [p.hex() for p in proof] == path
    leaf = leaf_hash(H(LEAF_INPUTS[index]))
    verify_inclusion(index, size, leaf, proof, H(ROOTS[size]))
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaf, proof, H(ROOTS[size - 1]))


@pytest.mark.parametrize("old,new,path", CONSISTENCY)
def test_classic_consistency_proofs(old, new, path):
    tree = classic_tree()
    proof = tree.prove_consistency(old, new)
    assert [p.hex() for p in proof] == path
    verify_consistency(old, new, H(ROOTS[old]), H(ROOTS[new]), proof)
    if old != new:
        with pytest.raises(ProofError):
            verify_consistency(old, new, H(ROOTS[old - 1]), H(ROOTS[new]), proof)


def test_all_shared_rfc6962_vectors():
    data = json.loads(shared_file("vectors", "rfc6962.json").read_text())
    tree = MemoryHashes()
    for leaf in data["leaf_inputs"]:
        tree.append_data(H(leaf))
    assert EMPTY_ROOT.hex() == data["hasher"]["empty_root"]
    assert leaf_hash(b"").hex() == data["hasher"]["leaf_hash_of_empty"]
    lh = data["hasher"]["leaf_hash"]
    assert leaf_hash(lh["input_ascii"].encode()).hex() == lh["hash"]
    nh = data["hasher"]["node_hash"]
    assert node_hash(nh["left_ascii"].encode(), nh["right_ascii"].encode()).hex() == nh["hash"]
    for size, root in data["roots_by_size"].items():
        assert tree.root(int(size)).hex() == root
    # Every complete subtree's hash is stored where stored_hash_index says.
    for level, hashes in enumerate(data["node_hashes_by_level"]):
        for n, want in enumerate(hashes):
            assert tree.read_hashes([stored_hash_index(level, n)])[0].hex() == want
    for case in data["inclusion_proofs"]:
        i, size = case["leaf_index"], case["tree_size"]
        proof = tree.prove_inclusion(i, size)
        assert [p.hex() for p in proof] == case["proof"]
        verify_inclusion(i, size, leaf_hash(H(data["leaf_inputs"][i])), proof, tree.root(size))
    for case in data["consistency_proofs"]:
        old, new = case["size1"], case["size2"]
        proof = tree.prove_consistency(old, new)
        assert [p.hex() for p in proof] == case["proof"]
        verify_consistency(old, new, tree.root(old), tree.root(new), proof)


# --- the stored-hash layout ---------------------------------------------------------


def test_stored_hash_layout():
    # Record 0 stores L0; record 1 stores L1 and N(0,1); record 3 completes two subtrees.
    order = [(0, 0), (0, 1), (1, 0), (0, 2), (0, 3), (1, 1), (2, 0), (0, 4), (0, 5), (1, 2)]
    assert [stored_hash_index(level, n) for level, n in order] == list(range(len(order)))
    for index in range(5000):
        level, n = split_stored_hash_index(index)
        assert stored_hash_index(level, n) == index
    for index in [2**40 + 12345, 2**62 - 7]:
        assert stored_hash_index(*split_stored_hash_index(index)) == index
    store = MemoryHashes()
    for n in range(300):
        assert len(store.hashes) == stored_hash_count(n)
        store.append_data(n.to_bytes(4, "big"))
    with pytest.raises(ValueError):
        stored_hash_index(-1, 0)
    with pytest.raises(ValueError):
        split_stored_hash_index(-1)


def test_stored_hashes_appends_leaf_then_completed_subtrees():
    store, naive = tree_of(7)
    leaf = leaf_hash(b"eighth")
    naive.leaves.append(b"eighth")
    added = stored_hashes(7, leaf, store.read_hashes)
    # Record 7 completes the subtrees [6,8), [4,8) and [0,8).
    assert added == [leaf, naive.mth(6, 8), naive.mth(4, 8), naive.mth(0, 8)]
    with pytest.raises(ProofError):
        stored_hashes(7, b"short", store.read_hashes)


def test_memory_tree_matches_naive_and_root_builder_at_every_size():
    rnd = random.Random(1)
    leaves, store, builder = [], MemoryHashes(), RootBuilder()
    for n in range(1, 300):
        data = rnd.randbytes(rnd.randrange(50))
        leaves.append(data)
        assert store.append_data(data) == n - 1
        assert builder.append_data(data) == leaf_hash(data)
        want = Naive(leaves).mth(0, n)
        assert store.root() == want
        assert builder.root() == want
        assert builder.size == store.size == n


# --- proof generation: O(log n) reads in one batch -----------------------------------


class CountingReader:
    def __init__(self, read):
        self.read, self.calls, self.count = read, 0, 0

    def __call__(self, indexes):
        self.calls += 1
        self.count += len(indexes)
        return self.read(indexes)


def test_proofs_read_few_hashes_in_one_call():
    store, _ = tree_of(3000, seed=2)
    for size in [1, 2, 3, 1024, 1025, 2047, 3000]:
        for call in [
            lambda r: prove_inclusion(size // 2, size, r),
            lambda r: prove_inclusion(size - 1, size, r),
            lambda r: prove_consistency(max(1, size // 3), size, r),
            lambda r: tree_hash(size, r),
        ]:
            reader = CountingReader(store.read_hashes)
            call(reader)
            assert reader.calls <= 1
            assert reader.count <= 2 * size.bit_length() + 2


def test_proof_at_a_trillion_leaves_costs_log_reads():
    """Nothing is rebuilt: a proof in a huge tree touches only O(log n) stored hashes."""
    reader = CountingReader(lambda idx: [sha256(i.to_bytes(8, "big")).digest() for i in idx])
    size = 10**12 + 12345
    proof = prove_inclusion(size - 77, size, reader)
    assert len(proof) <= 41
    prove_consistency(size // 3, size, reader)
    tree_hash(size, reader)
    assert reader.calls == 3
    assert reader.count <= 3 * (2 * 41)


def test_storage_returning_wrong_count_is_refused():
    store, _ = tree_of(10)
    with pytest.raises(ProofError):
        prove_inclusion(3, 10, lambda idx: store.read_hashes(idx)[:-1])
    with pytest.raises(ProofError):
        store.prove_inclusion(3, 11)  # beyond what is stored
    with pytest.raises(ProofError):
        store.read_hashes([0, -1])


# --- properties against the naive model -------------------------------------------------


def check_inclusion(store: MemoryHashes, naive: Naive, index: int, size: int, rnd: random.Random,
                    bit_samples: int = 8) -> None:
    proof = prove_inclusion(index, size, store.read_hashes)
    assert proof == naive.path(index, size)
    leaf = leaf_hash(naive.leaves[index])
    root = naive.mth(0, size)
    verify_inclusion(index, size, leaf, proof, root)
    # Any bit of any proof hash, of the root or of the leaf: refused.
    for j in range(len(proof)):
        for bit in rnd.sample(range(256), bit_samples):
            bad = list(proof)
            bad[j] = flip(bad[j], bit)
            with pytest.raises(ProofError):
                verify_inclusion(index, size, leaf, bad, root)
    for bit in rnd.sample(range(256), bit_samples):
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaf, proof, flip(root, bit))
        with pytest.raises(ProofError):
            verify_inclusion(index, size, flip(leaf, bit), proof, root)
    # Any bit of the index: refused.
    for bit in range(size.bit_length() + 1):
        with pytest.raises(ProofError):
            verify_inclusion(index ^ (1 << bit), size, leaf, proof, root)
    # Any bit of the size: refused whenever the audit path for the other size
    # has another shape.  Where it has the same shape (leaf 0 of 5 and of 7:
    # both paths end in one opaque sibling, MTH(D[4:5]) or MTH(D[4:7])) the
    # RFC computation is identical and must accept: RFC 9162 binds the size
    # to the root through the signed tree head, not through the proof.  The
    # naive model decides which case holds; the two must agree exactly.
    for bit in range(size.bit_length() + 1):
        other = size ^ (1 << bit)
        expect = naive_accepts_inclusion(index, other, leaf, proof, root)
        assert accepts(verify_inclusion, index, other, leaf, proof, root) == expect
    # Truncated and extended proofs.
    if proof:
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaf, proof[:-1], root)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaf, proof + [root], root)


def check_consistency(store: MemoryHashes, naive: Naive, old: int, new: int, rnd: random.Random,
                      bit_samples: int = 8) -> None:
    proof = prove_consistency(old, new, store.read_hashes)
    assert proof == (naive.proof(old, new) if old < new else [])
    old_root, new_root = naive.mth(0, old), naive.mth(0, new)
    verify_consistency(old, new, old_root, new_root, proof)
    for j in range(len(proof)):
        for bit in rnd.sample(range(256), bit_samples):
            bad = list(proof)
            bad[j] = flip(bad[j], bit)
            with pytest.raises(ProofError):
                verify_consistency(old, new, old_root, new_root, bad)
    for bit in rnd.sample(range(256), bit_samples):
        with pytest.raises(ProofError):
            verify_consistency(old, new, flip(old_root, bit), new_root, proof)
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, flip(new_root, bit), proof)
    # Flipped sizes: refused unless the RFC recursion for the other sizes
    # computes the same two roots from the same proof (see check_inclusion).
    for bit in range(new.bit_length() + 1):
        for o, n in [(old ^ (1 << bit), new), (old, new ^ (1 << bit))]:
            expect = naive_accepts_consistency(o, n, old_root, new_root, proof)
            assert accepts(verify_consistency, o, n, old_root, new_root, proof) == expect, (o, n)
    if proof:
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, new_root, proof[:-1])
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, new_root, proof + [new_root])


def accepts(verify, *args) -> bool:
    try:
        verify(*args)
    except ProofError:
        return False
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_inclusion_property(data):
    store, naive = shared_tree()
    size = data.draw(st.integers(1, 520), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    check_inclusion(store, naive, index, size, random.Random(size * 1000 + index), bit_samples=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_consistency_property(data):
    store, naive = shared_tree()
    new = data.draw(st.integers(1, 520), label="new")
    old = data.draw(st.integers(1, new), label="old")
    check_consistency(store, naive, old, new, random.Random(new * 1000 + old), bit_samples=4)


def test_every_proof_in_small_trees():
    """Exhaustive up to 40 leaves: every index, every pair of sizes."""
    store, naive = shared_tree()
    rnd = random.Random(40)
    for size in range(1, 41):
        for index in range(size):
            check_inclusion(store, naive, index, size, rnd, bit_samples=1)
        for old in range(1, size + 1):
            check_consistency(store, naive, old, size, rnd, bit_samples=1)


@pytest.mark.parametrize("size", [255, 256, 257, 511, 512, 513])
def test_power_of_two_boundaries(size):
    store, naive = shared_tree()
    rnd = random.Random(size)
    edges = {0, 1, size // 2, size - 2, size - 1, 127, 128, 255} & set(range(size))
    for index in sorted(edges) + rnd.sample(range(size), 12):
        check_inclusion(store, naive, index, size, rnd)
    olds = {1, 2, 127, 128, 129, 255, 256, size - 1, size} & set(range(1, size + 1))
    for old in sorted(olds) + rnd.sample(range(1, size + 1), 8):
        check_consistency(store, naive, old, size, rnd)
    # And from these sizes up to the top of the shared tree.
    check_consistency(store, naive, size, 520, rnd)


# --- edge cases: refused with ProofError, never a crash ----------------------------------


def test_inclusion_edge_cases_refused():
    store, naive = tree_of(8)
    leaf, root = leaf_hash(naive.leaves[0]), store.root()
    proof = store.prove_inclusion(0)
    refused = [
        lambda: prove_inclusion(0, 0, store.read_hashes),
        lambda: prove_inclusion(8, 8, store.read_hashes),
        lambda: prove_inclusion(-1, 8, store.read_hashes),
        lambda: prove_inclusion(1.0, 8, store.read_hashes),
        lambda: prove_inclusion(True, 8, store.read_hashes),
        lambda: verify_inclusion(0, 0, leaf, [], EMPTY_ROOT),
        lambda: verify_inclusion(8, 8, leaf, proof, root),
        lambda: verify_inclusion(-1, 8, leaf, proof, root),
        lambda: verify_inclusion(0, 8, leaf[:31], proof, root),
        lambda: verify_inclusion(0, 8, leaf, proof, root + b"\x00"),
        lambda: verify_inclusion(0, 8, leaf, [proof[0][:16]] + proof[1:], root),
        lambda: verify_inclusion(0, 8, leaf, [proof[0].hex()] + proof[1:], root),
        lambda: verify_inclusion(0, 8, leaf, "not a list", root),
        lambda: verify_inclusion(0, 8, "leaf", proof, root),
        lambda: verify_inclusion(0, 8, leaf, [], root),
        lambda: verify_inclusion(0, 1, leaf, [leaf], leaf),  # size 1 takes the empty path
        lambda: verify_inclusion(0.0, 8, leaf, proof, root),
    ]
    for call in refused:
        with pytest.raises(ProofError):
            call()
    verify_inclusion(0, 1, leaf, [], leaf)  # a one-leaf tree's root is its leaf hash


def test_consistency_edge_cases_refused():
    store, naive = tree_of(8)
    r = [naive.mth(0, n) for n in range(9)]
    p48 = store.prove_consistency(4, 8)
    refused = [
        lambda: prove_consistency(5, 4, store.read_hashes),
        lambda: prove_consistency(-1, 4, store.read_hashes),
        lambda: prove_consistency(2, "4", store.read_hashes),
        lambda: tree_hash(None, store.read_hashes),
        lambda: verify_consistency(5, 4, r[5], r[4], []),
        lambda: verify_consistency(-1, 4, r[1], r[4], []),
        lambda: verify_consistency(4, 8, r[4], r[8], []),  # a real step needs a proof
        lambda: verify_consistency(4, 8, r[4], r[8], p48[:-1]),
        lambda: verify_consistency(4, 8, r[4], r[8], p48 + p48),
        lambda: verify_consistency(4, 8, r[4][:31], r[8], p48),
        lambda: verify_consistency(4, 8, r[4], r[8], [p48[0][:31]]),
        lambda: verify_consistency(4, 8, r[4], r[8], None),
        lambda: verify_consistency(8, 8, r[8], r[7], []),  # equal sizes need equal roots
        lambda: verify_consistency(8, 8, r[8], r[8], [r[8]]),  # ... and the empty proof
        lambda: verify_consistency(0, 8, r[0], r[8], p48),  # from empty: the empty proof only
        lambda: verify_consistency(0, 8, r[1], r[8], []),  # ... and the empty tree's root
        lambda: verify_consistency("4", 8, r[4], r[8], p48),
    ]
    for call in refused:
        with pytest.raises(ProofError):
            call()
    # The trivial cases that hold: equal sizes, and the empty tree as a prefix.
    assert prove_consistency(8, 8, store.read_hashes) == []
    verify_consistency(8, 8, r[8], r[8], [])
    assert prove_consistency(0, 8, store.read_hashes) == []
    verify_consistency(0, 8, EMPTY_ROOT, r[8], [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(4, 8, r[4], r[8], p48)
    assert tree_hash(0, store.read_hashes) == EMPTY_ROOT
    with pytest.raises(ProofError):
        tree_hash(-1, store.read_hashes)


def test_size_is_bound_by_the_checkpoint_not_the_proof():
    """The documented RFC 9162 limit: leaf 0's path in 5 leaves also fits 7."""
    store, naive = tree_of(7)
    proof5 = store.prove_inclusion(0, 5)
    leaf, root5 = leaf_hash(naive.leaves[0]), store.root(5)
    verify_inclusion(0, 7, leaf, proof5, root5)  # same shape: accepted
    with pytest.raises(ProofError):
        verify_inclusion(0, 7, leaf, proof5, store.root(7))  # the real size-7 root refuses it
    with pytest.raises(ProofError):
        verify_inclusion(0, 9, leaf, proof5, root5)  # another shape: refused
    assert merkle.HASH_SIZE == 32 and issubclass(ProofError, ValueError)
