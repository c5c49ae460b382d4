"""Single-use values: a store that remembers a nonce until it could no longer be used anyway.

Proof-of-work challenges and request signatures verify without server state, so what stops
their replay is this store: the first ``mark_spent`` of a nonce wins, every later one within its
lifetime loses. Entries expire on their own at ``until`` (the moment the challenge expires or
the request timestamp leaves its window), which bounds the store by the traffic of one window.

Callers namespace their nonces (``pow:…``, ``req:<subject>:…``) so one kind cannot burn another.
Instances behind a load balancer must share one store (``stave.auth.redis.RedisSpentStore``);
the in-memory store is for a single process (the embedded server, tests).
"""

from __future__ import annotations

import heapq
import math
import threading
from abc import ABC, abstractmethod
from typing import Final

from stave.auth.errors import RateLimited

__all__ = ["MAX_NONCE_LENGTH", "MIN_TTL", "MemorySpentStore", "SpentStore"]

MAX_NONCE_LENGTH: Final = 256
#: A value at the very end of its life is still remembered this long (seconds), so that two
#: copies arriving together are told apart even when ``until`` is ``now``.
MIN_TTL: Final = 1.0


class SpentStore(ABC):
    """Remembers spent nonces. Subclasses implement ``_mark_spent`` only."""

    def mark_spent(self, nonce: str, until: float, now: float) -> bool:
        """Record ``nonce`` as spent until ``until``; False if it already was (a replay).

        Atomic: of concurrent calls with the same nonce, across every instance sharing the
        store, exactly one returns True.
        """
        if not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE_LENGTH:
            raise ValueError(f"a nonce is a string of 1 to {MAX_NONCE_LENGTH} characters")
        if not (math.isfinite(until) and math.isfinite(now)):
            raise ValueError(f"until and now must be finite, got {until!r} and {now!r}")
        return self._mark_spent(nonce, max(until - now, MIN_TTL), now)

    @abstractmethod
    def _mark_spent(self, nonce: str, ttl: float, now: float) -> bool:
        """Set ``nonce`` to expire ``ttl`` seconds from ``now`` unless present; True if it was set."""


class MemorySpentStore(SpentStore):
    """A process-local store: thread-safe, pruned by expiry, bounded by ``max_entries``.

    When full of live entries it refuses new ones with ``RateLimited`` (until the oldest
    expires) rather than forgetting one: forgetting a live nonce would let its replay through.
    """

    def __init__(self, max_entries: int = 1_000_000) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be positive, got {max_entries}")
        self.max_entries = max_entries
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []  # (expiry, nonce): the next to expire first
        self._lock = threading.Lock()

    def _mark_spent(self, nonce: str, ttl: float, now: float) -> bool:
        with self._lock:
            self._prune(now)
            if nonce in self._expiry:
                return False
            if len(self._expiry) >= self.max_entries:
                wait = self._heap[0][0] - now
                raise RateLimited("replay-cache-full", f"too many requests in flight; retry after {wait:.1f} s", wait)
            expiry = now + ttl
            self._expiry[nonce] = expiry
            heapq.heappush(self._heap, (expiry, nonce))
            return True

    def _prune(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            expiry, nonce = heapq.heappop(self._heap)
            if self._expiry.get(nonce) == expiry:
                del self._expiry[nonce]

    def __len__(self) -> int:
        return len(self._expiry)
