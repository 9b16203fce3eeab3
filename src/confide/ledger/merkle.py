"""Merkle tree hashing exactly as RFC 6962 / RFC 9162 (section 2.1) define it.

Leaf hash ``SHA-256(0x00 || leaf_input)``, node hash ``SHA-256(0x01 || left || right)``, and the
RFC's split: a tree of ``n > 1`` leaves is a left subtree of ``k`` leaves, ``k`` the largest power
of two smaller than ``n``, and a right subtree of the rest. Proofs follow RFC 9162 2.1.3 (audit
path) and 2.1.4 (consistency), and the verifiers are the RFC's iterative algorithms, so a
standard RFC 6962 client accepts what this module produces and vice versa.

Proof *generation* is written against ranges: the RFC recursion only ever needs hashes of
subtrees ``D[a:b]`` whose start is aligned to a power of two at least ``b - a``. Such a range
splits into at most ``log2(n)`` *perfect* subtrees (:func:`perfect_cover`), so a store that keeps
the hash of every perfect subtree answers any proof with one indexed read. This module stays
pure: callers supply hashes, it does the arithmetic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import NamedTuple

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# A perfect subtree: (level, index) covers leaves [index * 2**level, (index + 1) * 2**level).
Perfect = tuple[int, int]


class ProofError(ValueError):
    """A proof that does not verify, or a request for one that cannot exist."""


def leaf_hash(leaf_input: bytes) -> bytes:
    """``MTH({d}) = SHA-256(0x00 || d)``."""
    return hashlib.sha256(b"\x00" + leaf_input).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Combine the perfect subtrees of a left-aligned range (largest first) into its hash."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def perfect_cover(start: int, end: int) -> list[Perfect]:
    """The perfect subtrees that make up ``D[start:end]``, left to right.

    For the aligned ranges the RFC recursion produces (and for ``[0, n)``) these are exactly
    the subtrees of the RFC split, so :func:`fold_right` over their hashes gives the range's
    ``MTH``.
    """
    out: list[Perfect] = []
    pos = start
    while pos < end:
        level = (pos & -pos).bit_length() - 1 if pos else 63
        while (1 << level) > end - pos:
            level -= 1
        out.append((level, pos >> level))
        pos += 1 << level
    return out


def frontier_levels(size: int) -> list[int]:
    """Levels of the perfect subtrees covering ``[0, size)``, left (largest) to right."""
    return [b for b in range(size.bit_length() - 1, -1, -1) if size >> b & 1]


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """The tree head of a list of leaf hashes (O(n) time, O(log n) memory)."""
    stack: list[tuple[int, bytes]] = []
    for h in leaf_hashes:
        level, acc = 0, h
        while stack and stack[-1][0] == level:
            acc = node_hash(stack.pop()[1], acc)
            level += 1
        stack.append((level, acc))
    return fold_right([h for _, h in stack])


class Subtree(NamedTuple):
    """A perfect subtree: its height (0 for a leaf), its position among the subtrees of that
    height, and its hash."""

    level: int
    position: int
    hash: bytes


def append_leaf(frontier: list[bytes], size: int, leaf: bytes) -> list[Subtree]:
    """Add one leaf to a frontier (the perfect subtrees covering ``[0, size)``), in place.

    Returns every perfect subtree completed by this leaf, the leaf itself included at level 0,
    so a store can keep them for fast proofs.
    """
    made = [Subtree(0, size, leaf)]
    acc, level, n = leaf, 0, size
    while n & 1:
        acc = node_hash(frontier.pop(), acc)
        level += 1
        n >>= 1
        made.append(Subtree(level, n, acc))
    frontier.append(acc)
    return made


# --- proof shapes: which subtree ranges a proof consists of, in RFC order -------------------


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose hashes form ``PATH(index, D[0:size])``, leaf side first."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} entries")
    out: list[tuple[int, int]] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = split_point(hi - lo)
        if m < k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m = lo + k, m - k
    out.reverse()
    return out


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The ranges whose hashes form ``PROOF(first, D[0:second])`` (RFC 9162 2.1.4.1)."""
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from {first} to {second} entries")
    if first in (0, second):
        return []
    out: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, second, first, True
    while m != hi - lo:
        k = split_point(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        out.append((lo, hi))
    out.reverse()
    return out


def resolve(
    ranges: Sequence[tuple[int, int]], fetch: Callable[[set[Perfect]], dict[Perfect, bytes]]
) -> list[bytes]:
    """Hashes of ``ranges``, reading every perfect subtree they need in one ``fetch`` call."""
    covers = [perfect_cover(a, b) for a, b in ranges]
    known = fetch({p for cover in covers for p in cover})
    return [fold_right([known[p] for p in cover]) for cover in covers]


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Audit path for an in-memory list of leaf hashes (used by verifiers and tests)."""
    return resolve(inclusion_ranges(index, len(leaf_hashes)), _memory_fetch(leaf_hashes))


def consistency_proof(first: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Consistency proof from ``first`` leaves to all of ``leaf_hashes``, in memory."""
    return resolve(consistency_ranges(first, len(leaf_hashes)), _memory_fetch(leaf_hashes))


def _memory_fetch(leaf_hashes: Sequence[bytes]) -> Callable[[set[Perfect]], dict[Perfect, bytes]]:
    def fetch(wanted: set[Perfect]) -> dict[Perfect, bytes]:
        return {(lv, i): root_from_leaves(leaf_hashes[i << lv : (i + 1) << lv]) for lv, i in wanted}

    return fetch


# --- verification (RFC 9162 2.1.3.2 and 2.1.4.2) ---------------------------------------------


def root_from_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """The root an audit path implies for ``leaf`` at ``index``; raises if the shape is wrong."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} entries")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ProofError("the audit path is longer than a tree of this size allows")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the audit path is shorter than a tree of this size needs")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`ProofError` unless ``path`` proves ``leaf`` at ``index`` under ``root``."""
    if root_from_inclusion(index, size, leaf, path) != root:
        raise ProofError(f"the audit path for leaf {index} does not lead to the tree head")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows tree ``first`` is a prefix of ``second``."""
    if not 0 <= first <= second:
        raise ProofError(f"a log cannot shrink from {first} to {second} entries")
    if first == second:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError(f"two different tree heads for the same size {first}")
        return
    if first == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the old root is itself a proof node
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than these sizes allow")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than these sizes need")
    if fr != first_root:
        raise ProofError(f"the proof does not reproduce the signed head at size {first}")
    if sr != second_root:
        raise ProofError(f"the proof does not reproduce the signed head at size {second}")
