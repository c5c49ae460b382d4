"""Write stave's own adversarial Merkle proof vectors into ``generated/``, one JSON file per case.

Usage: ``python tests/vectors/merkle/generate.py`` (from the repository root). The output is
deterministic; ``tests/log/test_merkle.py`` checks the files on disk equal a fresh run.

The format is transparency-dev/merkle's ``testdata/`` format (inclusion: ``leafIdx``,
``treeSize``, ``root``, ``leafHash``, ``proof``, ``desc``, ``wantErr``; consistency: ``size1``,
``size2``, ``root1``, ``root2``, ``proof``, ``desc``, ``wantErr``; hashes in standard base64).
Each case directory holds a ``happy-path`` file and one file per mutation, named after it.

This script uses only the standard library. Its Merkle code is RFC 9162 §2.1's recursive
definitions (MTH, PATH, SUBPROOF) written out again on purpose: the vectors must not come from
the code they test. The first eight leaves are the RFC 6962 test leaves that transparency-dev's
vectors use, so the happy paths of small trees can be checked against theirs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "generated"

# The RFC 6962 test leaves (certificate-transparency and transparency-dev test data), then ours.
_RFC6962_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]

INCLUSION_CASES = [(0, 1), (0, 2), (1, 2), (2, 3), (3, 7), (6, 7), (4, 8), (10, 17), (16, 17), (255, 256), (100, 1000)]
CONSISTENCY_CASES = [(1, 2), (2, 3), (3, 7), (4, 8), (6, 8), (7, 17), (16, 17), (256, 300), (999, 1000), (5, 5)]


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def entry(index: int) -> bytes:
    return _RFC6962_LEAVES[index] if index < len(_RFC6962_LEAVES) else f"stave-leaf-{index}".encode()


def leaf_hashes(size: int) -> list[bytes]:
    return [_sha256(b"\x00" + entry(i)) for i in range(size)]


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return _sha256(b"")
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return _sha256(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], whole: bool) -> list[bytes]:
    if m == len(d):
        return [] if whole else [mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*subproof(m, d[:k], whole), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _flip_bit_3(raw: bytes) -> bytes:
    return bytes([raw[0] ^ 0x08]) + raw[1:]


GARBAGE = _sha256(b"stave trailing garbage")
WRONG_LEAF = _sha256(b"\x00WrongLeaf")


def _inclusion(
    index: int, size: int, leaf: bytes, root: bytes, proof: list[bytes], desc: str, bad: bool
) -> dict[str, object]:
    return {
        "leafIdx": index,
        "treeSize": size,
        "root": _b64(root),
        "leafHash": _b64(leaf),
        "proof": [_b64(h) for h in proof],
        "desc": desc,
        "wantErr": bad,
    }


def _consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes], desc: str, bad: bool
) -> dict[str, object]:
    return {
        "size1": size1,
        "size2": size2,
        "root1": _b64(root1),
        "root2": _b64(root2),
        "proof": [_b64(h) for h in proof],
        "desc": desc,
        "wantErr": bad,
    }


def inclusion_cases(index: int, size: int) -> dict[str, dict[str, object]]:
    d = leaf_hashes(size)
    leaf, root, proof = d[index], mth(d), path(index, d)
    cases = {"happy-path": _inclusion(index, size, leaf, root, proof, "happy path", False)}
    for i in range(len(proof)):
        mutated = [*proof[:i], _flip_bit_3(proof[i]), *proof[i + 1 :]]
        cases[f"modified-proof[{i}]-bit-@3"] = _inclusion(
            index, size, leaf, root, mutated, f"modified proof[{i}] bit @3", True
        )
    cases["wrong-leaf"] = _inclusion(index, size, WRONG_LEAF, root, proof, "wrong leaf", True)
    if size > 1:
        other = index ^ 1 if index ^ 1 < size else index - 1
        cases["wrong-index"] = _inclusion(other, size, leaf, root, proof, f"wrong index {other}", True)
    cases["trailing-garbage"] = _inclusion(index, size, leaf, root, [*proof, GARBAGE], "trailing garbage", True)
    if proof:
        cases["truncated-proof"] = _inclusion(index, size, leaf, root, proof[:-1], "truncated proof", True)
    cases["size-zero"] = _inclusion(index, 0, leaf, root, proof, "size zero", True)
    cases["index-beyond-size"] = _inclusion(size, size, leaf, root, proof, "index beyond size", True)
    return cases


def consistency_cases(size1: int, size2: int) -> dict[str, dict[str, object]]:
    d = leaf_hashes(size2)
    root1, root2, proof = mth(d[:size1]), mth(d), subproof(size1, d, True)
    cases = {"happy-path": _consistency(size1, size2, root1, root2, proof, "happy path", False)}
    for i in range(len(proof)):
        mutated = [*proof[:i], _flip_bit_3(proof[i]), *proof[i + 1 :]]
        cases[f"modified-proof[{i}]-bit-@3"] = _consistency(
            size1, size2, root1, root2, mutated, f"modified proof[{i}] bit @3", True
        )
    if root1 != root2:
        cases["swapped-roots"] = _consistency(size1, size2, root2, root1, proof, "swapped roots", True)
    other = size1 + 1 if size1 + 1 < size2 else size1 - 1
    cases["wrong-index"] = _consistency(other, size2, root1, root2, proof, f"wrong old size {other}", True)
    cases["trailing-garbage"] = _consistency(size1, size2, root1, root2, [*proof, GARBAGE], "trailing garbage", True)
    if proof:
        cases["truncated-proof"] = _consistency(size1, size2, root1, root2, proof[:-1], "truncated proof", True)
    cases["size-zero"] = _consistency(0, size2, root1, root2, proof, "old size zero", True)
    cases["index-beyond-size"] = _consistency(size2 + 1, size2, root1, root2, proof, "old size beyond new size", True)
    return cases


def build() -> dict[str, str]:
    """Every generated file: its path relative to ``generated/`` and its exact text."""
    files: dict[str, str] = {}
    for kind, table, make in (
        ("inclusion", INCLUSION_CASES, inclusion_cases),
        ("consistency", CONSISTENCY_CASES, consistency_cases),
    ):
        for first, second in table:
            for name, case in make(first, second).items():
                files[f"{kind}/{first}-{second}/{name}.json"] = json.dumps(case, indent=2) + "\n"
    return files


def main() -> int:
    files = build()
    for old in sorted(OUT.rglob("*.json")):
        if old.relative_to(OUT).as_posix() not in files:
            old.unlink()
    for relative, text in files.items():
        target = OUT / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files under {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
