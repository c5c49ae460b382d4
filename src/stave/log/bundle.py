"""Proof bundles: everything needed to prove, offline, that an event was in the log and anchored.

A bundle is JSON::

    {"v": 1,
     "event": {…the signed event…},
     "inclusion_proof": {"log_index": 7, "tree_size": 12, "root_hash": "<base64>",
                         "hashes": ["<base64>", …], "checkpoint": "<C2SP signed note>"},
     "anchors": [{"receipt": {…ledger receipt…}, "checkpoint": "<the anchored signed note>",
                  "consistency_proof": {"old_size": 12, "new_size": 20, "hashes": ["<base64>", …]}}]}

An anchor of a later checkpoint covers the event through the consistency proof it carries
(from the bundle's checkpoint to the anchored one), as OpenTimestamps proofs upgrade.
:func:`verify_bundle` is pure (no network): it checks every step and returns them numbered,
failing closed at the first step that fails; a ledger check is a separate, explicit step.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from stave.anchor import Anchor, Receipt
from stave.errors import ProofError, StaveError, VerificationError
from stave.event import admit, canonicalize
from stave.log import merkle
from stave.log.note import Verifier, open_checkpoint
from stave.log.sequencer import event_leaf

__all__ = ["BUNDLE_VERSION", "BundleStep", "anchor_of", "encode_hashes", "verify_bundle"]

BUNDLE_VERSION = 1


@dataclass(frozen=True, slots=True)
class BundleStep:
    number: int
    name: str
    detail: str


def anchor_of(checkpoint_note: str, origin: str, size: int, root: bytes) -> Anchor:
    """The anchor a ledger records for a signed checkpoint."""
    return Anchor(origin, size, root, hashlib.sha256(checkpoint_note.encode()).digest())


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise ProofError(f"{what}: expected base64 text, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProofError(f"{what}: not valid base64") from None


def _hashes(values: Any, what: str) -> list[bytes]:
    if not isinstance(values, list):
        raise ProofError(f"{what}: expected a list of base64 hashes")
    return [_b64(value, f"{what}[{index}]") for index, value in enumerate(values)]


def _int(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise ProofError(f"{what}: expected a non-negative integer, got {value!r:.40}")
    return value


def verify_bundle(
    bundle: Any,
    verifier_key: str,
    *,
    check_anchor: Callable[[Receipt, Anchor], None] | None = None,
) -> list[BundleStep]:
    """Verify a proof bundle; return the steps that passed, or raise at the first that fails.

    (1) the event admits: strict JSON, schema, id, signature; (2) its leaf hash; (3) the
    checkpoint's signature under ``verifier_key`` and its size and root equal the proof's;
    (4) the inclusion proof reaches that root (RFC 9162 §2.1.3.2); then per anchor (5) the
    anchored checkpoint's signature, (6) the consistency proof from the bundle's checkpoint to
    it (§2.1.4.2), (7) the receipt records exactly that checkpoint, and (8), only when
    ``check_anchor`` is given, the ledger itself confirms the receipt.
    """
    steps: list[BundleStep] = []

    def step(name: str, detail: str) -> None:
        steps.append(BundleStep(len(steps) + 1, name, detail))

    if not isinstance(bundle, dict) or bundle.get("v") != BUNDLE_VERSION:
        raise ProofError(f"(0) not a version-{BUNDLE_VERSION} proof bundle")
    try:
        verifier = Verifier.from_key(verifier_key)
    except StaveError as exc:
        raise ProofError(f"(0) verifier key: {exc}") from None
    # (1)
    try:
        event = admit(canonicalize(bundle.get("event")))
    except (VerificationError, TypeError) as exc:
        raise ProofError(f"(1) event: {exc}") from None
    step("event", f"signed by {event.author}, id {event.id}")
    # (2)
    leaf = event_leaf(event.id)
    step("leaf", f"SHA-256(0x00 ‖ id) = {leaf.hex()}")
    proof = bundle.get("inclusion_proof")
    if not isinstance(proof, dict):
        raise ProofError("(3) inclusion_proof: missing")
    index = _int(proof.get("log_index"), "(3) inclusion_proof.log_index")
    size = _int(proof.get("tree_size"), "(3) inclusion_proof.tree_size")
    root = _b64(proof.get("root_hash"), "(3) inclusion_proof.root_hash")
    note = proof.get("checkpoint")
    # (3)
    try:
        checkpoint = open_checkpoint(note if isinstance(note, str) else "", [verifier], verifier.name)
    except StaveError as exc:
        raise ProofError(f"(3) checkpoint: {exc}") from None
    if (checkpoint.size, checkpoint.root_hash) != (size, root):
        raise ProofError(
            f"(3) checkpoint: it signs size {checkpoint.size} and root {checkpoint.root_hash.hex()}, "
            f"the proof claims size {size} and root {root.hex()}"
        )
    step("checkpoint", f"signed by {verifier.name}: size {size}, root {root.hex()}")
    # (4)
    try:
        merkle.verify_inclusion(leaf, index, size, _hashes(proof.get("hashes"), "(4) hashes"), root)
    except ProofError as exc:
        raise ProofError(f"(4) inclusion: {exc}") from None
    step("inclusion", f"leaf {index} of {size}")
    anchors = bundle.get("anchors", [])
    if not isinstance(anchors, list):
        raise ProofError("(5) anchors: expected a list")
    for position, item in enumerate(anchors):
        where = f"anchors[{position}]"
        if not isinstance(item, dict):
            raise ProofError(f"(5) {where}: expected an object")
        anchored_note = item.get("checkpoint")
        # (5)
        try:
            anchored = open_checkpoint(
                anchored_note if isinstance(anchored_note, str) else "", [verifier], verifier.name
            )
        except StaveError as exc:
            raise ProofError(f"(5) {where}.checkpoint: {exc}") from None
        # (6)
        consistency = item.get("consistency_proof") or {}
        if not isinstance(consistency, dict):
            raise ProofError(f"(6) {where}.consistency_proof: expected an object")
        old = _int(consistency.get("old_size", size), f"(6) {where}.consistency_proof.old_size")
        new = _int(consistency.get("new_size", anchored.size), f"(6) {where}.consistency_proof.new_size")
        if (old, new) != (size, anchored.size):
            raise ProofError(f"(6) {where}: the proof goes from {old} to {new}, expected {size} to {anchored.size}")
        try:
            merkle.verify_consistency(
                size,
                anchored.size,
                root,
                anchored.root_hash,
                _hashes(consistency.get("hashes", []), f"(6) {where}.hashes"),
            )
        except ProofError as exc:
            raise ProofError(f"(6) {where}: {exc}") from None
        step(f"anchor {position}: consistency", f"size {size} is a prefix of anchored size {anchored.size}")
        # (7)
        try:
            receipt = Receipt.from_dict(item.get("receipt"))
        except (StaveError, ValueError, TypeError) as exc:
            raise ProofError(f"(7) {where}.receipt: {exc}") from None
        expected = anchor_of(anchored_note, anchored.origin, anchored.size, anchored.root_hash)  # type: ignore[arg-type]
        if receipt.anchor != expected:
            raise ProofError(f"(7) {where}.receipt: it records another checkpoint than the one in the bundle")
        step(f"anchor {position}: receipt", f"{receipt.kind} receipt ({receipt.state}) for size {anchored.size}")
        # (8)
        if check_anchor is not None:
            try:
                check_anchor(receipt, expected)
            except StaveError as exc:
                raise ProofError(f"(8) {where}: the ledger does not confirm the receipt: {exc}") from None
            step(f"anchor {position}: ledger", f"{receipt.ledger} confirms it")
    return steps


def encode_hashes(hashes: Sequence[bytes]) -> list[str]:
    return [base64.b64encode(digest).decode() for digest in hashes]
