"""RFC 9162 Merkle hashing, proof plans and verification, held to upstream vectors and to the RFC's definitions."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import math
import random
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from stave.errors import ProofError
from stave.log import merkle
from stave.log.merkle import (
    EMPTY_ROOT,
    NodeId,
    append,
    consistency_plan,
    consistency_proof_size,
    frontier_ids,
    inclusion_plan,
    inclusion_proof_size,
    leaf_hash,
    node_hash,
    range_node_ids,
    reference_consistency,
    reference_inclusion,
    reference_root,
    root_from_frontier,
    root_from_inclusion,
    root_plan,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "merkle"
UPSTREAM = sorted((VECTORS / "testdata").glob("*/*/*.json"))
GENERATED = sorted((VECTORS / "generated").glob("*/*/*.json"))


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _run_vector(case: dict[str, Any]) -> None:
    proof = [_b64(item) for item in case["proof"] or []]
    if "leafIdx" in case:
        verify_inclusion(_b64(case["leafHash"]), case["leafIdx"], case["treeSize"], proof, _b64(case["root"]))
    else:
        verify_consistency(case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), proof)


def _check_vector(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            _run_vector(case)
    else:
        _run_vector(case)


@pytest.mark.parametrize("path", UPSTREAM, ids=lambda p: p.relative_to(VECTORS / "testdata").as_posix())
def test_transparency_dev_vectors(path: Path) -> None:
    _check_vector(path)


@pytest.mark.parametrize("path", GENERATED, ids=lambda p: p.relative_to(VECTORS / "generated").as_posix())
def test_generated_vectors(path: Path) -> None:
    _check_vector(path)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("merkle_vector_generator", VECTORS / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vector_counts() -> None:
    assert len(UPSTREAM) == 166
    assert len(GENERATED) == len(_generator().build())


def test_generated_vectors_are_up_to_date() -> None:
    files = _generator().build()
    on_disk = {
        path.relative_to(VECTORS / "generated").as_posix(): path.read_text(encoding="utf-8") for path in GENERATED
    }
    assert on_disk == files, "run: python tests/vectors/merkle/generate.py"


def test_generated_roots_match_upstream_roots() -> None:
    """The generator's independent MTH, on the RFC 6962 leaves, agrees with transparency-dev's roots."""
    upstream: dict[int, str] = {}
    for path in UPSTREAM:
        if path.name == "happy-path.json":
            case = json.loads(path.read_text(encoding="utf-8"))
            if "treeSize" in case:
                upstream[case["treeSize"]] = case["root"]
            else:
                upstream[case["size1"]] = case["root1"]
                upstream[case["size2"]] = case["root2"]
    generator = _generator()
    assert sorted(upstream) == [1, 2, 3, 5, 6, 7, 8]
    for size, root in upstream.items():
        leaves = generator.leaf_hashes(size)
        assert base64.b64encode(generator.mth(leaves)).decode() == root
        assert base64.b64encode(reference_root(leaves)).decode() == root


def test_hash_definitions() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == hashlib.sha256(b"\x00").hexdigest()
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    left, right = leaf_hash(b"l"), leaf_hash(b"r")
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert root_from_frontier([]) == EMPTY_ROOT
    assert reference_root([]) == EMPTY_ROOT


def test_node_ids_of_ranges() -> None:
    assert frontier_ids(0) == []
    assert frontier_ids(1) == [(0, 0)]
    assert frontier_ids(6) == [(2, 0), (1, 2)]
    assert frontier_ids(7) == [(2, 0), (1, 2), (0, 6)]
    assert frontier_ids(8) == [(3, 0)]
    assert range_node_ids(5, 13) == [(0, 5), (1, 3), (2, 2), (0, 12)]
    assert range_node_ids(4, 4) == []
    with pytest.raises(ValueError, match="after its end"):
        range_node_ids(5, 4)


def _leaves(size: int, seed: int = 0) -> list[bytes]:
    return [leaf_hash(f"{seed}:{i}".encode()) for i in range(size)]


def _store(leaves: list[bytes]) -> dict[NodeId, bytes]:
    _, _, nodes = append([], 0, leaves)
    return {(level, index): value for level, index, value in nodes}


def _inclusion_shape(index: int, size: int) -> tuple[str, ...]:
    """Which side each sibling of PATH(index, D[size]) is on, leaf first: the verifier's work order."""
    sides: list[str] = []
    low, high = 0, size
    while high - low > 1:
        k = 1 << ((high - low - 1).bit_length() - 1)
        if index < low + k:
            sides.append("right")
            high = low + k
        else:
            sides.append("left")
            low += k
    return tuple(reversed(sides))


def _consistency_shape(old: int, new: int) -> tuple[str, ...]:
    """The kind of each hash of PROOF(old, D[new]), bottom first, as SUBPROOF produces it."""
    kinds: list[str] = []
    low, high, count, whole = 0, new, old, True
    while count != high - low:
        k = 1 << ((high - low - 1).bit_length() - 1)
        if count <= k:
            kinds.append("right")
            high = low + k
        else:
            kinds.append("left")
            low, count, whole = low + k, count - k, False
    return ("old root" if whole else "seed", *reversed(kinds))


def _fails(check: Any, *args: Any) -> bool:
    try:
        check(*args)
    except ProofError:
        return True
    return False


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 300), st.integers(0, 299), st.integers(0, 2**32))
@example(300, 0, 0).via("largest tree, leftmost leaf")
@example(300, 299, 0).via("largest tree, rightmost leaf")
@example(256, 255, 0).via("perfect tree")
@example(257, 256, 0).via("one leaf past a perfect tree")
def test_inclusion_plans_match_the_rfc_and_only_verify_unchanged(size: int, raw_index: int, seed: int) -> None:
    index = raw_index % size
    leaves = _leaves(size, seed)
    store, root = _store(leaves), reference_root(leaves)
    proof = inclusion_plan(index, size).assemble(store)
    assert proof == reference_inclusion(leaves, index)
    assert len(proof) == inclusion_proof_size(index, size)
    verify_inclusion(leaves[index], index, size, proof, root)
    assert root_from_inclusion(leaves[index], index, size, proof) == root
    for position, value in enumerate(proof):
        for bit in range(len(value) * 8):
            flipped = bytearray(value)
            flipped[bit // 8] ^= 1 << (bit % 8)
            mutated = [*proof[:position], bytes(flipped), *proof[position + 1 :]]
            assert _fails(verify_inclusion, leaves[index], index, size, mutated, root)
    for other in range(size):
        if other != index:
            assert _fails(verify_inclusion, leaves[index], other, size, proof, root)
    # The RFC check binds the leaf and index to the root, not the root to a size: another size
    # whose path has the same shape computes the same root (the checkpoint binds the size).
    shape = _inclusion_shape(index, size)
    for other_size in range(index + 1, 2 * size + 2):
        if other_size != size:
            same_work = _inclusion_shape(index, other_size) == shape
            assert _fails(verify_inclusion, leaves[index], index, other_size, proof, root) is not same_work
    for bad_size in (0, index):
        assert _fails(verify_inclusion, leaves[index], index, bad_size, proof, root)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 300), st.integers(0, 300), st.integers(0, 2**32))
@example(300, 299, 0).via("largest tree, one leaf added")
@example(300, 1, 0).via("largest tree from one leaf")
@example(300, 256, 0).via("from a perfect tree")
@example(256, 255, 0).via("to a perfect tree")
def test_consistency_plans_match_the_rfc_and_only_verify_unchanged(new: int, raw_old: int, seed: int) -> None:
    old = raw_old % (new + 1)
    leaves = _leaves(new, seed)
    store = _store(leaves)
    old_root, new_root = reference_root(leaves[:old]), reference_root(leaves)
    proof = consistency_plan(old, new).assemble(store)
    assert proof == reference_consistency(leaves, old)
    verify_consistency(old, new, old_root, new_root, proof)
    if old in (0, new):
        assert proof == []
        assert _fails(verify_consistency, old, new, old_root, new_root, [EMPTY_ROOT])
        if old != new:
            assert _fails(verify_consistency, old, new, new_root, new_root, proof)
        return
    assert len(proof) == consistency_proof_size(old, new)
    for position, value in enumerate(proof):
        for bit in range(len(value) * 8):
            flipped = bytearray(value)
            flipped[bit // 8] ^= 1 << (bit % 8)
            mutated = [*proof[:position], bytes(flipped), *proof[position + 1 :]]
            assert _fails(verify_consistency, old, new, old_root, new_root, mutated)
    assert _fails(verify_consistency, old, new, new_root, old_root, proof)
    # As for inclusion: another pair of sizes whose proof has the same shape does the same work.
    shape = _consistency_shape(old, new)
    for other_old in range(new + 2):
        if other_old != old:
            same_work = 0 < other_old < new and _consistency_shape(other_old, new) == shape
            assert _fails(verify_consistency, other_old, new, old_root, new_root, proof) is not same_work
    for other_new in range(2 * new + 2):
        if other_new != new:
            same_work = old < other_new and _consistency_shape(old, other_new) == shape
            assert _fails(verify_consistency, old, other_new, old_root, new_root, proof) is not same_work


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=12), st.integers(0, 2**32))
def test_append_in_batches_stores_every_perfect_node(batches: list[int], seed: int) -> None:
    leaves = _leaves(sum(batches), seed)
    frontier: list[bytes] = []
    size = 0
    stored: dict[NodeId, bytes] = {}
    for count in batches:
        frontier, size, nodes = append(frontier, size, leaves[size : size + count])
        for level, index, value in nodes:
            assert (level, index) not in stored, "a node was produced twice"
            stored[(level, index)] = value
        assert root_from_frontier(frontier) == reference_root(leaves[:size])
        assert root_plan(size).assemble(stored) == [reference_root(leaves[:size])]
        assert frontier == [stored[node] for node in frontier_ids(size)]
    expected = {
        (level, index): reference_root(leaves[index << level : (index + 1) << level])
        for level in range(size.bit_length())
        for index in range(size >> level)
    }
    assert stored == expected
    _, _, one_batch = append([], 0, leaves)
    assert {(level, index): value for level, index, value in one_batch} == expected


def _reads(size: int, indices: list[int]) -> tuple[int, int]:
    counts = [len(inclusion_plan(index, size).node_ids) for index in indices]
    frontier = set(frontier_ids(size))
    cached = [len(set(inclusion_plan(index, size).node_ids) - frontier) for index in indices]
    return max(counts), max(cached)


@pytest.mark.parametrize("size", [10, 1000, 1_000_000, 2**20 - 1, 2**20, 2**20 + 1])
def test_inclusion_reads_are_logarithmic(size: int) -> None:
    indices = sorted({0, size // 2, size - 1, *random.Random(size).sample(range(size), min(size, 2000))})
    most, most_uncached = _reads(size, indices)
    depth = math.ceil(math.log2(size))
    assert most <= depth + size.bit_count() - 1 <= 2 * depth
    assert most_uncached <= depth  # with the frontier (one node per set bit of the size) cached
    for old in indices[1:]:
        assert len(consistency_plan(old, size).node_ids) <= 2 * depth


def test_plan_assemble_needs_every_node() -> None:
    plan = inclusion_plan(3, 7)
    store = _store(_leaves(7))
    del store[plan.node_ids[0]]
    with pytest.raises(KeyError, match="needs stored node"):
        plan.assemble(store)
    store = _store(_leaves(7))
    store[plan.node_ids[0]] = b"short"
    with pytest.raises(ValueError, match="must be 32 bytes"):
        plan.assemble(store)
    assert root_plan(0).assemble({}) == [EMPTY_ROOT]
    assert consistency_plan(0, 5).node_ids == ()
    assert consistency_plan(5, 5).assemble({}) == []


def test_plans_refuse_impossible_requests() -> None:
    with pytest.raises(ValueError, match="outside a tree of size 5"):
        inclusion_plan(5, 5)
    with pytest.raises(ValueError, match="larger than new size"):
        consistency_plan(6, 5)
    with pytest.raises(ValueError, match="non-negative int"):
        inclusion_plan(-1, 5)
    with pytest.raises(ValueError, match="non-negative int"):
        root_plan(True)


def test_append_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="has 2 frontier hashes, got 1"):
        append([EMPTY_ROOT], 3, [])
    with pytest.raises(ValueError, match=r"leaf_hashes\[0\] must be 32 bytes"):
        append([], 0, [b"x"])


def test_verification_errors_say_expected_and_got() -> None:
    leaves = _leaves(7)
    root, proof = reference_root(leaves), reference_inclusion(leaves, 2)
    with pytest.raises(ProofError, match="inclusion proof has wrong size: expected 3 hashes, got 2"):
        verify_inclusion(leaves[2], 2, 7, proof[:2], root)
    with pytest.raises(ProofError, match=f"wrong root: expected {EMPTY_ROOT.hex()}, got {root.hex()}"):
        verify_inclusion(leaves[2], 2, 7, proof, EMPTY_ROOT)
    with pytest.raises(ProofError, match="outside the tree"):
        verify_inclusion(leaves[2], 7, 7, proof, root)
    with pytest.raises(ProofError, match=r"inclusion proof hash \[1\] must be 32 bytes, got 0 bytes"):
        verify_inclusion(leaves[2], 2, 7, [proof[0], b"", proof[2]], root)
    with pytest.raises(ProofError, match="leaf hash must be 32 bytes"):
        verify_inclusion(b"WrongLeaf", 2, 7, proof, root)
    with pytest.raises(ProofError, match="tree size must be a non-negative integer"):
        verify_inclusion(leaves[2], 2, -7, proof, root)
    consistency = reference_consistency(leaves, 3)
    old_root = reference_root(leaves[:3])
    with pytest.raises(ProofError, match="consistency proof has wrong size: expected 4 hashes, got 5"):
        verify_consistency(3, 7, old_root, root, [*consistency, root])
    with pytest.raises(ProofError, match="wrong old root"):
        verify_consistency(3, 7, root, root, consistency)
    with pytest.raises(ProofError, match="larger than new tree size"):
        verify_consistency(8, 7, old_root, root, consistency)
    with pytest.raises(ProofError, match="old root does not match for tree size 0"):
        verify_consistency(0, 7, old_root, root, [])
    verify_consistency(0, 7, EMPTY_ROOT, root, [])
    verify_consistency(7, 7, root, root, [])


def test_module_is_pure() -> None:
    """The Merkle code imports nothing that touches disk, network, clock or environment."""
    source = Path(merkle.__file__).read_text(encoding="utf-8")
    imports = {line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"__future__", "hashlib", "collections.abc", "dataclasses", "typing", "stave.errors"}
