"""Token-bucket rate limits per key (an IP, a credential id).

Each key has a bucket of at most ``burst`` tokens that refills at ``rate`` tokens per second; a
request costs ``cost`` tokens (1 by default) and is allowed when the bucket holds that many. So a
client may burst ``burst`` requests at once, then sustain ``rate`` per second. A refused request
takes nothing: the bucket keeps refilling and ``retry_after`` says exactly when the same request
would pass, for the ``Retry-After`` of a 429.

The arithmetic is shared by both drivers, step for step in IEEE doubles, so the in-memory and the
Redis limiter (``stave.auth.redis.RedisRateLimiter``, a Lua script: atomic across instances)
decide identically for the same hits at the same times:

1. an unknown key starts full: ``tokens = burst, last = now``;
2. refill: if ``now > last``, ``tokens = min(burst, tokens + (now - last) × rate)`` and ``last = now``
   (a clock that steps back refills nothing and never drains the bucket);
3. if ``tokens ≥ cost``: ``tokens -= cost``, allowed; otherwise refused with
   ``retry_after = (cost - tokens) / rate``.

A bucket untouched for ``burst / rate`` seconds is full again, the same as no bucket at all, so
both drivers forget it then: memory stays bounded by the keys active in that time.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from stave.auth.errors import RateLimited
from stave.errors import ConfigError

__all__ = ["MAX_KEY_LENGTH", "Decision", "MemoryRateLimiter", "RateLimiter"]

MAX_KEY_LENGTH: Final = 256


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one hit.

    ``retry_after``: seconds until this hit would be allowed (0.0 when allowed);
    ``remaining``: whole tokens left after it; ``limit``: the burst size.
    """

    allowed: bool
    retry_after: float
    remaining: int
    limit: int

    @property
    def retry_after_header(self) -> str:
        """``Retry-After`` in whole seconds, rounded up: a client that waits that long passes."""
        return str(max(1, math.ceil(self.retry_after))) if not self.allowed else "0"


class RateLimiter(ABC):
    """A token bucket per key. Subclasses implement ``_take`` only."""

    def __init__(self, rate: float, burst: int) -> None:
        if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
            raise ConfigError(f"rate must be a positive number of tokens per second, got {rate!r}")
        if not (isinstance(burst, int) and not isinstance(burst, bool) and burst >= 1):
            raise ConfigError(f"burst must be a positive integer, got {burst!r}")
        self.rate = float(rate)
        self.burst = burst

    @property
    def idle_after(self) -> float:
        """Seconds after which an untouched bucket is full again and can be forgotten."""
        return self.burst / self.rate

    def hit(self, key: str, cost: int = 1, *, now: float) -> Decision:
        """Take ``cost`` tokens from ``key``'s bucket at time ``now`` if it holds them."""
        if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH:
            raise ValueError(f"a rate-limit key is a string of 1 to {MAX_KEY_LENGTH} characters")
        if not (isinstance(cost, int) and 1 <= cost <= self.burst):
            # A cost above the burst could never pass: a configuration error, not a 429.
            raise ValueError(f"cost must be an integer from 1 to the burst {self.burst}, got {cost!r}")
        if not math.isfinite(now):
            raise ValueError(f"now must be finite, got {now!r}")
        allowed, tokens = self._take(key, cost, now)
        if allowed:
            return Decision(True, 0.0, math.floor(tokens), self.burst)
        return Decision(False, (cost - tokens) / self.rate, math.floor(tokens), self.burst)

    def enforce(self, key: str, cost: int = 1, *, now: float) -> Decision:
        """``hit``, raising ``RateLimited`` (with ``retry_after``) when refused."""
        decision = self.hit(key, cost, now=now)
        if not decision.allowed:
            raise RateLimited(
                "rate-limited",
                f"{self.rate:g} requests per second with bursts of {self.burst} exceeded; "
                f"retry after {decision.retry_after:.2f} s",
                decision.retry_after,
            )
        return decision

    @abstractmethod
    def _take(self, key: str, cost: int, now: float) -> tuple[bool, float]:
        """Apply steps 1-3 of the module docstring atomically; return (allowed, tokens after)."""


def _step(
    state: tuple[float, float] | None, cost: int, now: float, rate: float, burst: int
) -> tuple[bool, float, float]:
    """Steps 1-3 on a bucket ``(tokens, last)``: (allowed, tokens, last) afterwards. The Lua
    script in ``stave.auth.redis`` is this function, operation for operation."""
    tokens, last = (float(burst), now) if state is None else state
    if now > last:
        tokens = min(float(burst), tokens + (now - last) * rate)
        last = now
    if tokens >= cost:
        return True, tokens - cost, last
    return False, tokens, last


class MemoryRateLimiter(RateLimiter):
    """Buckets in this process: thread-safe, idle buckets pruned, at most ``max_keys`` kept.

    Past ``max_keys`` live buckets the least recently hit is forgotten (it restarts full): a
    bound on memory under a flood of new keys, at the price of leniency towards the oldest.
    """

    def __init__(self, rate: float, burst: int, *, max_keys: int = 100_000) -> None:
        super().__init__(rate, burst)
        if max_keys < 1:
            raise ConfigError(f"max_keys must be positive, got {max_keys}")
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # least recently hit first
        self._lock = threading.Lock()

    def _take(self, key: str, cost: int, now: float) -> tuple[bool, float]:
        with self._lock:
            allowed, tokens, last = _step(self._buckets.pop(key, None), cost, now, self.rate, self.burst)
            self._buckets[key] = (tokens, last)
            self._prune(now)
            return allowed, tokens

    def _prune(self, now: float) -> None:
        # Least recently hit first, so the idle buckets are at the front: stop at the first live one.
        while self._buckets:
            oldest, (_, last) = next(iter(self._buckets.items()))
            if now - last < self.idle_after and len(self._buckets) <= self.max_keys:
                break
            del self._buckets[oldest]

    def __len__(self) -> int:
        return len(self._buckets)
