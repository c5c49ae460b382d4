"""RFC 9162 Merkle tree hashing, proof plans and proof verification. Pure: no I/O, no clock.

The tree is the one of RFC 9162 §2.1 (the same as RFC 6962): ``leaf_hash(d) = SHA-256(0x00 ‖ d)``,
``node_hash(l, r) = SHA-256(0x01 ‖ l ‖ r)``, and an empty tree hashes to ``SHA-256("")``.

Nodes live elsewhere (a database, tiles). Only *perfect* subtrees are ever stored, each named by a
:data:`NodeId` ``(level, index)``: the node of height ``level`` over leaves ``[index·2^level,
(index+1)·2^level)``; level 0 holds the leaf hashes. A perfect node never changes once written, so
stored nodes need no versioning. Hashes over the ragged right edge of a tree (not perfect) are
never stored: they are folded from their perfect parts when needed.

Proofs are made in two steps so a caller can fetch every stored node it needs in one batch (and
a benchmark can count the reads): a :class:`Plan` lists the node ids, and
:meth:`Plan.assemble` turns the fetched hashes into the RFC 9162 §2.1.3 inclusion path or §2.1.4
consistency proof. Verification (:func:`verify_inclusion`, :func:`verify_consistency`) follows
the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2, checks the proof length before hashing, and
raises :class:`~stave.errors.ProofError` saying what was expected and what was found.

The ``reference_*`` functions are the RFC's recursive definitions (MTH, PATH, PROOF/SUBPROOF)
written out literally. They are slow and exist so tests can hold the fast code to the RFC.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

from stave.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "NodeId",
    "Plan",
    "append",
    "consistency_plan",
    "consistency_proof_size",
    "frontier_ids",
    "inclusion_plan",
    "inclusion_proof_size",
    "leaf_hash",
    "node_hash",
    "range_node_ids",
    "reference_consistency",
    "reference_inclusion",
    "reference_root",
    "root_from_frontier",
    "root_from_inclusion",
    "root_plan",
    "verify_consistency",
    "verify_inclusion",
]

NodeId: TypeAlias = tuple[int, int]
"""``(level, index)`` of a perfect subtree: height ``level`` over leaves ``[index·2^level, (index+1)·2^level)``."""

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()

# Copying a hasher that already holds the domain-separation byte skips a concatenation per hash.
_LEAF_PREFIX: Final = hashlib.sha256(b"\x00")
_NODE_PREFIX: Final = hashlib.sha256(b"\x01")


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x00 ‖ entry)."""
    hasher = _LEAF_PREFIX.copy()
    hasher.update(entry)
    return hasher.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x01 ‖ left ‖ right)."""
    hasher = _NODE_PREFIX.copy()
    hasher.update(left)
    hasher.update(right)
    return hasher.digest()


def _fold(parts: Sequence[bytes]) -> bytes:
    """The root of consecutive perfect subtrees, largest first: a right fold, as MTH recurses."""
    if not parts:
        return EMPTY_ROOT
    root = parts[-1]
    for left in reversed(parts[:-1]):
        root = node_hash(left, root)
    return root


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n ≥ 2), where MTH splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_size(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative int, got {value!r}")


def range_node_ids(start: int, end: int) -> list[NodeId]:
    """The perfect subtrees that exactly cover leaves ``[start, end)``, left to right.

    Each is the largest aligned subtree that starts where the previous one ended, so the list is
    the *compact range* of the interval. For ``[0, size)`` it is the frontier; for an RFC 9162
    subtree ``[k·2^j, min((k+1)·2^j, n))`` folding their hashes with a right fold gives its MTH.
    """
    _check_size(start, "start")
    _check_size(end, "end")
    if start > end:
        raise ValueError(f"range start {start} is after its end {end}")
    ids: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        ids.append((level, start >> level))
        start += 1 << level
    return ids


def frontier_ids(size: int) -> list[NodeId]:
    """The perfect subtrees that make up a tree of ``size`` leaves, left to right (one per set bit)."""
    return range_node_ids(0, size)


def root_from_frontier(frontier: Sequence[bytes]) -> bytes:
    """The tree root from its frontier hashes (see :func:`frontier_ids`); empty gives :data:`EMPTY_ROOT`."""
    return _fold(frontier)


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        shown = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
        raise ValueError(f"{what} must be {HASH_SIZE} bytes, got {shown}")


def append(
    frontier: Sequence[bytes], size: int, leaf_hashes: Sequence[bytes]
) -> tuple[list[bytes], int, list[tuple[int, int, bytes]]]:
    """Append leaves to a tree known only by its frontier; return the new frontier, size and nodes.

    ``new_nodes`` lists every perfect node the leaves complete, leaves included, as ``(level,
    index, hash)`` in the order they were made (children before parents), ready to be stored.
    Nothing needs reading: a new leaf only ever merges with frontier subtrees to its left.
    """
    _check_size(size, "size")
    if len(frontier) != size.bit_count():
        raise ValueError(f"a tree of size {size} has {size.bit_count()} frontier hashes, got {len(frontier)}")
    for position, value in enumerate(frontier):
        _check_hash(value, f"frontier[{position}]")
    stack = list(frontier)
    nodes: list[tuple[int, int, bytes]] = []
    for position, value in enumerate(leaf_hashes):
        _check_hash(value, f"leaf_hashes[{position}]")
        level, index, current = 0, size, value
        nodes.append((0, index, current))
        while index & 1:  # a right child: its left sibling is the smallest frontier subtree
            current = node_hash(stack.pop(), current)
            level, index = level + 1, index >> 1
            nodes.append((level, index, current))
        stack.append(current)
        size += 1
    return stack, size, nodes


@dataclass(frozen=True, slots=True)
class Plan:
    """The stored nodes a proof needs, and how to combine them.

    ``node_ids`` lists each needed node once, in a stable order: fetch them in one batch.
    ``parts`` has one entry per proof hash: the perfect subtrees (left to right) whose fold is
    that hash. A hash over the ragged right edge has several parts; every other hash has one.
    """

    node_ids: tuple[NodeId, ...]
    parts: tuple[tuple[NodeId, ...], ...]

    @classmethod
    def _of(cls, parts: Sequence[Sequence[NodeId]]) -> Plan:
        frozen = tuple(tuple(element) for element in parts)
        unique = dict.fromkeys(node for element in frozen for node in element)
        return cls(tuple(unique), frozen)

    def assemble(self, hashes: Mapping[NodeId, bytes]) -> list[bytes]:
        """The proof hashes, computed from the fetched nodes (a mapping holding every id in ``node_ids``)."""
        fetched: dict[NodeId, bytes] = {}
        for node in self.node_ids:
            try:
                value = hashes[node]
            except KeyError:
                raise KeyError(f"the plan needs stored node {node}, which the given hashes lack") from None
            _check_hash(value, f"stored node {node}")
            fetched[node] = value
        return [_fold([fetched[node] for node in element]) for element in self.parts]


def inclusion_plan(index: int, size: int) -> Plan:
    """Plan the RFC 9162 §2.1.3.1 inclusion path of leaf ``index`` in the tree of ``size`` leaves.

    It walks PATH(m, D[n]) from the root down without recursion: each step's sibling is one
    subtree; the proof lists them from the leaf up. Only one sibling can be ragged (the right
    sibling where the path first turns left below the right edge), so a plan needs at most
    ⌈log2 n⌉ + popcount(n) − 1 reads.
    """
    _check_size(index, "index")
    _check_size(size, "size")
    if index >= size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    top_down: list[list[NodeId]] = []
    low, high = 0, size
    while high - low > 1:
        middle = low + _split(high - low)
        if index < middle:
            top_down.append(range_node_ids(middle, high))
            high = middle
        else:
            top_down.append(range_node_ids(low, middle))
            low = middle
    return Plan._of(top_down[::-1])


def consistency_plan(old_size: int, new_size: int) -> Plan:
    """Plan the RFC 9162 §2.1.4.1 consistency proof PROOF(m, D[n]) from ``old_size`` to ``new_size``.

    SUBPROOF is walked from the root down; the proof lists its hashes from the bottom up. The
    proof is empty when ``old_size`` is 0 or equals ``new_size``.
    """
    _check_size(old_size, "old_size")
    _check_size(new_size, "new_size")
    if old_size > new_size:
        raise ValueError(f"old size {old_size} is larger than new size {new_size}")
    if old_size in (0, new_size):
        return Plan((), ())
    top_down: list[list[NodeId]] = []
    low, high, old, whole = 0, new_size, old_size, True
    while old != high - low:  # ``old`` counts the old tree's leaves inside [low, high)
        middle = low + _split(high - low)
        if old <= middle - low:
            top_down.append(range_node_ids(middle, high))
            high = middle
        else:
            top_down.append(range_node_ids(low, middle))
            old -= middle - low
            low, whole = middle, False
    if not whole:  # SUBPROOF(m, D[m], false) = [MTH(D[m])]: always a perfect subtree here
        top_down.append(range_node_ids(low, high))
    return Plan._of(top_down[::-1])


def root_plan(size: int) -> Plan:
    """Plan the root of a tree of ``size`` leaves: ``assemble`` returns ``[root]``."""
    ids = frontier_ids(size)
    return Plan._of([ids])


def inclusion_proof_size(index: int, size: int) -> int:
    """The number of hashes in the inclusion path of leaf ``index`` (< ``size``) in a tree of ``size``.

    Below the level where the leaf's path and the last leaf's path meet every level has a
    sibling; above it, only the levels where the path has a left sibling do.
    """
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def consistency_proof_size(old_size: int, new_size: int) -> int:
    """The number of hashes in a consistency proof for ``0 < old_size < new_size``.

    The old tree's last perfect subtree is where the proof starts; it is sent as the first hash
    unless the old tree is exactly that subtree (a power of two), whose root the verifier has.
    """
    level = (old_size & -old_size).bit_length() - 1
    node = (old_size - 1) >> level
    last = (new_size - 1) >> level
    inner = (node ^ last).bit_length()
    return (1 if node else 0) + inner + (node >> inner).bit_count()


def _check_proof_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        shown = f"{len(value)} bytes" if isinstance(value, bytes) else f"a {type(value).__name__}"
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {shown}")


def _check_proof_size(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProofError(f"{what} must be a non-negative integer, got {value!r}")


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that an inclusion path leads to (RFC 9162 §2.1.3.2 steps 1–5, without the compare).

    Raises :class:`ProofError` when the index is outside the tree or the path has the wrong
    length or a hash of the wrong size.
    """
    _check_proof_hash(leaf, "leaf hash")
    _check_proof_size(index, "leaf index")
    _check_proof_size(size, "tree size")
    if index >= size:
        raise ProofError(f"leaf index {index} is outside the tree: expected an index below the tree size {size}")
    expected = inclusion_proof_size(index, size)
    if len(proof) != expected:
        raise ProofError(f"inclusion proof has wrong size: expected {expected} hashes, got {len(proof)}")
    for position, value in enumerate(proof):
        _check_proof_hash(value, f"inclusion proof hash [{position}]")
    fn, sn, root = index, size - 1, leaf
    for value in proof:
        if sn == 0:  # unreachable after the length check; kept as the RFC's step 4a
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            root = node_hash(value, root)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            root = node_hash(root, value)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:  # unreachable after the length check; kept as the RFC's step 5
        raise ProofError("inclusion proof is shorter than the path to the root")
    return root


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf`` is entry ``index`` of the tree of ``size`` leaves whose root is ``root``.

    Returns ``None`` on success and raises :class:`ProofError` otherwise. The check binds the leaf
    and its index to the root; binding the root to ``size`` is the job of the signed checkpoint.
    """
    _check_proof_hash(root, "root hash")
    computed = root_from_inclusion(leaf, index, size, proof)
    if computed != root:
        raise ProofError(f"inclusion proof leads to the wrong root: expected {root.hex()}, got {computed.hex()}")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree of ``new_size`` with ``new_root`` extends the one of ``old_size`` with ``old_root``.

    RFC 9162 §2.1.4.2 for ``0 < old_size < new_size``. Equal sizes need equal roots and an empty
    proof; an old size of 0 needs the empty root and an empty proof. Returns ``None`` on success
    and raises :class:`ProofError` otherwise.
    """
    _check_proof_size(old_size, "old tree size")
    _check_proof_size(new_size, "new tree size")
    _check_proof_hash(old_root, "old root hash")
    _check_proof_hash(new_root, "new root hash")
    if old_size > new_size:
        raise ProofError(f"old tree size {old_size} is larger than new tree size {new_size}")
    if old_size in (0, new_size):
        if proof:
            raise ProofError(f"consistency proof has wrong size: expected 0 hashes, got {len(proof)}")
        expected_old = EMPTY_ROOT if old_size == 0 else new_root
        if old_root != expected_old:
            raise ProofError(
                f"old root does not match for tree size {old_size}: expected {expected_old.hex()}, got {old_root.hex()}"
            )
        return
    expected = consistency_proof_size(old_size, new_size)
    if len(proof) != expected:
        raise ProofError(f"consistency proof has wrong size: expected {expected} hashes, got {len(proof)}")
    for position, value in enumerate(proof):
        _check_proof_hash(value, f"consistency proof hash [{position}]")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # step 2: a power of two; its root starts the path
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    first = second = path[0]
    for value in path[1:]:
        if sn == 0:  # unreachable after the length check; kept as the RFC's step 6a
            raise ProofError("consistency proof is longer than the path to the new root")
        if fn & 1 or fn == sn:
            first = node_hash(value, first)
            second = node_hash(value, second)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            second = node_hash(second, value)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:  # unreachable after the length check; kept as the RFC's step 7
        raise ProofError("consistency proof is shorter than the path to the new root")
    if first != old_root:
        raise ProofError(f"consistency proof leads to the wrong old root: expected {old_root.hex()}, got {first.hex()}")
    if second != new_root:
        raise ProofError(
            f"consistency proof leads to the wrong new root: expected {new_root.hex()}, got {second.hex()}"
        )


def reference_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) exactly as RFC 9162 §2.1.1 defines it, over leaf hashes. Slow; for tests."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(reference_root(leaf_hashes[:k]), reference_root(leaf_hashes[k:]))


def reference_inclusion(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]) exactly as RFC 9162 §2.1.3.1 defines it. Slow; for tests."""
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} is outside a tree of size {n}")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*reference_inclusion(leaf_hashes[:k], index), reference_root(leaf_hashes[k:])]
    return [*reference_inclusion(leaf_hashes[k:], index - k), reference_root(leaf_hashes[:k])]


def reference_consistency(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true) exactly as RFC 9162 §2.1.4.1 defines it. Slow; for tests."""
    n = len(leaf_hashes)
    if not 0 <= old_size <= n:
        raise ValueError(f"old size {old_size} is outside 0..{n}")
    if old_size == 0:
        return []
    return _reference_subproof(leaf_hashes, old_size, True)


def _reference_subproof(leaf_hashes: Sequence[bytes], m: int, whole: bool) -> list[bytes]:
    n = len(leaf_hashes)
    if m == n:
        return [] if whole else [reference_root(leaf_hashes)]
    k = _split(n)
    if m <= k:
        return [*_reference_subproof(leaf_hashes[:k], m, whole), reference_root(leaf_hashes[k:])]
    return [*_reference_subproof(leaf_hashes[k:], m - k, False), reference_root(leaf_hashes[:k])]
