"""Anchors for tests: distinct, deterministic, valid."""

from __future__ import annotations

import hashlib

from stave.anchor import Anchor


def make_anchor(n: int, origin: str = "stave.example/log") -> Anchor:
    return Anchor(
        origin=origin,
        tree_size=n,
        root_hash=hashlib.sha256(b"root %d" % n).digest(),
        checkpoint_digest=hashlib.sha256(b"checkpoint %d" % n).digest(),
    )
