"""The log's Merkle code against a reference written here straight from RFC 6962 / RFC 9162.

The reference below is the RFC's recursive definitions transcribed (MTH, PATH, PROOF/SUBPROOF),
deliberately naive and sharing no code with ``confide.ledger.merkle``.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confide.ledger import merkle

# --- reference implementation (RFC 6962 section 2.1) -----------------------------------------


def ref_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


# --- the RFC 6962 reference tree --------------------------------------------------------------

RFC_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
RFC_ROOT = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def _data(n: int) -> list[bytes]:
    return [f"entry-{i}".encode() * (i % 3 + 1) for i in range(n)]


def test_reference_tree_root() -> None:
    hashes = [merkle.leaf_hash(x) for x in RFC_LEAVES]
    assert merkle.root_from_leaves(hashes).hex() == RFC_ROOT
    assert ref_mth(RFC_LEAVES).hex() == RFC_ROOT


def test_reference_tree_every_proof() -> None:
    hashes = [merkle.leaf_hash(x) for x in RFC_LEAVES]
    for n in range(1, 9):
        root = ref_mth(RFC_LEAVES[:n])
        for m in range(n):
            path = merkle.inclusion_proof(m, hashes[:n])
            assert path == ref_path(m, RFC_LEAVES[:n])
            merkle.verify_inclusion(m, n, hashes[m], path, root)
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(m, hashes[:n])
            assert proof == (ref_proof(m, RFC_LEAVES[:n]) if m < n else [])
            merkle.verify_consistency(m, n, ref_mth(RFC_LEAVES[:m]), root, proof)


def test_empty_tree_is_sha256_of_nothing() -> None:
    assert merkle.root_from_leaves([]) == hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT


def test_every_size_to_70_every_proof() -> None:
    data = _data(71)
    hashes = [merkle.leaf_hash(x) for x in data]
    for n in range(71):
        root = ref_mth(data[:n])
        assert merkle.root_from_leaves(hashes[:n]) == root, n
        for m in range(n):
            path = merkle.inclusion_proof(m, hashes[:n])
            assert path == ref_path(m, data[:n]), (m, n)
            merkle.verify_inclusion(m, n, hashes[m], path, root)
        for m in range(1, n):
            proof = merkle.consistency_proof(m, hashes[:n])
            assert proof == ref_proof(m, data[:n]), (m, n)
            merkle.verify_consistency(m, n, ref_mth(data[:m]), root, proof)


def test_frontier_append_matches_root_and_perfect_subtrees() -> None:
    data = _data(70)
    hashes = [merkle.leaf_hash(x) for x in data]
    frontier: list[bytes] = []
    for n, h in enumerate(hashes):
        for level, idx, node in merkle.append_leaf(frontier, n, h):
            lo, hi = idx << level, (idx + 1) << level
            assert node == ref_mth(data[lo:hi])
        assert merkle.fold_right(frontier) == ref_mth(data[: n + 1])
        assert len(frontier) == len(merkle.frontier_levels(n + 1))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_random_proof_requests_larger_trees(draw) -> None:
    n = draw.draw(st.integers(1, 300))
    data = _data(n)
    hashes = [merkle.leaf_hash(x) for x in data]
    m = draw.draw(st.integers(0, n - 1))
    assert merkle.inclusion_proof(m, hashes) == ref_path(m, data)
    first = draw.draw(st.integers(1, n))
    expected = ref_proof(first, data) if first < n else []
    assert merkle.consistency_proof(first, hashes) == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 90), st.data())
def test_altered_proofs_are_refused(n: int, draw) -> None:
    data = _data(n)
    hashes = [merkle.leaf_hash(x) for x in data]
    root = ref_mth(data)
    m = draw.draw(st.integers(0, n - 1))
    path = merkle.inclusion_proof(m, hashes)
    other = draw.draw(st.integers(0, n - 1).filter(lambda i: hashes[i] != hashes[m]))
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(m, n, hashes[other], path, root)
    if path:
        bad = list(path)
        j = draw.draw(st.integers(0, len(bad) - 1))
        bad[j] = bytes(32)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(m, n, hashes[m], bad, root)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(m, n, hashes[m], path[:-1], root)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(m, n, hashes[m], [*path, bytes(32)], root)
    first = draw.draw(st.integers(1, n - 1))
    proof = merkle.consistency_proof(first, hashes)
    old = ref_mth(data[:first])
    merkle.verify_consistency(first, n, old, root, proof)
    forged = list(data)
    forged[draw.draw(st.integers(0, first - 1))] = b"rewritten"
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(first, n, ref_mth(forged[:first]), root, proof)
    j = draw.draw(st.integers(0, len(proof) - 1))
    broken = list(proof)
    broken[j] = bytes(32)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(first, n, old, root, broken)


def test_shape_errors() -> None:
    with pytest.raises(merkle.ProofError):
        merkle.inclusion_ranges(5, 5)
    with pytest.raises(merkle.ProofError):
        merkle.consistency_ranges(6, 5)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(5, 4, bytes(32), bytes(32), [])
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(4, 4, bytes(32), b"\x01" * 32, [])
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(3, 4, bytes(32), bytes(32), [])
    merkle.verify_consistency(0, 7, merkle.EMPTY_ROOT, bytes(32), [])


def test_perfect_cover_is_binary_decomposition() -> None:
    rng = random.Random(7)
    for _ in range(500):
        end = rng.randrange(1, 10_000)
        cover = merkle.perfect_cover(0, end)
        assert [lv for lv, _ in cover] == merkle.frontier_levels(end)
        assert sum(1 << lv for lv, _ in cover) == end
