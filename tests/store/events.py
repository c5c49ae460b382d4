"""Signed events for store tests, made with a fixed key so runs are reproducible."""

from __future__ import annotations

import hashlib
from functools import lru_cache

from stave.event import Event, PrivateKey, sign_event

KEY = PrivateKey(hashlib.sha256(b"stave store tests").digest())


@lru_cache(maxsize=4096)
def event(number: int, size: int = 300) -> Event:
    """A distinct signed VOTE; ``size`` pads the comment to make the event about that large."""
    comment = f"event {number} " + "x" * max(0, size - 330)
    template = {
        "v": 1,
        "type": "VOTE",
        "created_at": 1_700_000_000 + number,
        "parents": [],
        "body": {"claim_id": hashlib.sha256(str(number).encode()).hexdigest(), "vote": "yes", "comment": comment},
    }
    return sign_event(template, KEY)
