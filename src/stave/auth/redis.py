"""Redis drivers of the auth stores, shared by every API instance (``pip install stave[redis]``).

Keys (``prefix`` defaults to ``stave:auth:``):

- ``<prefix>spent:<nonce>``: a spent nonce, ``SET … NX PX <ttl>``: the first writer wins;
- ``<prefix>revoked:cred:<id>`` and ``<prefix>revoked:subject:<key>``: revocations, with a TTL
  when they end, none when they do not; a later revocation only ever extends one;
- ``<prefix>rl:<name>:<key>``: a token bucket, a hash ``{tokens, last}`` updated by one Lua script
  (atomic: Redis runs a script alone) and expiring once the bucket would be full again.

Time: the rate limiter computes with the ``now`` its caller passes (the instance's clock), so it
is testable with injected time and decides exactly as the in-memory limiter; instances must
keep their clocks in sync (NTP), and a clock that is behind only refills less. With
``server_time=True`` the script reads Redis's ``TIME`` instead and ignores ``now``: one clock
for all instances, whatever theirs say.

Every Redis failure fails closed: a connection problem raises ``BackendUnavailable`` (a 503
with ``Retry-After``), anything else ``StorageError``; no request is let through unchecked.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Final

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from stave.auth.credentials import RevocationStore
from stave.auth.ratelimit import RateLimiter
from stave.auth.spent import SpentStore
from stave.errors import BackendUnavailable, StorageError

__all__ = ["RedisRateLimiter", "RedisRevocationStore", "RedisSpentStore", "connect"]

PREFIX: Final = "stave:auth:"

# The token bucket of stave.auth.ratelimit, step for step (see _step there). Numbers travel as
# '%.17g' strings both ways: Redis would truncate a Lua number in a reply to an integer, and
# 17 significant digits carry an IEEE double exactly.
_BUCKET_SCRIPT: Final = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now
if ARGV[4] == '' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) + tonumber(time[2]) / 1000000
else
  now = tonumber(ARGV[4])
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'last')
local tokens, last
if state[1] then
  tokens = tonumber(state[1])
  last = tonumber(state[2])
else
  tokens = burst
  last = now
end
if now > last then
  tokens = math.min(burst, tokens + (now - last) * rate)
  last = now
end
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'last', string.format('%.17g', last))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {allowed, string.format('%.17g', tokens)}
"""


def connect(url: str = "redis://127.0.0.1:6379/0", *, timeout: float = 2.0) -> redis.Redis:
    """A client for the auth stores: short timeouts, one quick retry of a refused connection."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        # Once, quickly, and never after a timeout: a hung Redis must not double a request's wait.
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1, supported_errors=(redis.ConnectionError,)),
        health_check_interval=30,
        client_name="stave-auth",
    )


@contextlib.contextmanager
def _errors(what: str) -> Iterator[None]:
    """Map redis-py's exceptions onto stave's."""
    try:
        yield
    except (redis.AuthenticationError, redis.exceptions.AuthorizationError) as exc:
        # subclasses of ConnectionError, but retrying will not fix a wrong password
        raise StorageError(f"redis: {what}: {exc}") from exc
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BackendUnavailable(f"redis: {what}: {type(exc).__name__}: {exc}", retry_after=1.0) from exc
    except redis.RedisError as exc:
        raise StorageError(f"redis: {what}: {type(exc).__name__}: {exc}") from exc


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RedisSpentStore(SpentStore):
    def __init__(self, client: redis.Redis, *, prefix: str = PREFIX) -> None:
        self._redis = client
        self._prefix = f"{prefix}spent:"

    def _mark_spent(self, nonce: str, ttl: float, now: float) -> bool:
        with _errors("mark nonce spent"):
            return bool(self._redis.set(self._prefix + nonce, b"1", nx=True, px=_ms(ttl)))


class RedisRevocationStore(RevocationStore):
    def __init__(self, client: redis.Redis, *, prefix: str = PREFIX) -> None:
        self._redis = client
        self._prefix = f"{prefix}revoked:"

    def _revoke(self, key: str, ttl: float | None, now: float) -> None:
        name = self._prefix + key
        with _errors("revoke"):
            if ttl is None:
                self._redis.set(name, b"1")  # no TTL: for good, replacing any end date
                return
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(name, b"1", nx=True, px=_ms(ttl))
            pipe.pexpire(name, _ms(ttl), gt=True)  # GT: only extend; a key without TTL stays so
            pipe.execute()

    def _any_revoked(self, keys: Sequence[str], now: float) -> bool:
        with _errors("check revocation"):
            found = self._redis.exists(*(self._prefix + key for key in keys))
        assert isinstance(found, int)  # the synchronous client
        return found > 0


class RedisRateLimiter(RateLimiter):
    """Token buckets in Redis, shared by every instance. ``name`` keeps limiters apart (``ip``,
    ``credential``); ``server_time`` uses Redis's clock instead of ``now`` (module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        rate: float,
        burst: int,
        *,
        name: str = "default",
        prefix: str = PREFIX,
        server_time: bool = False,
    ) -> None:
        super().__init__(rate, burst)
        self._redis = client
        self._prefix = f"{prefix}rl:{name}:"
        self.server_time = server_time
        self._script = client.register_script(_BUCKET_SCRIPT)

    def _take(self, key: str, cost: int, now: float) -> tuple[bool, float]:
        args = [repr(self.rate), str(self.burst), str(cost), "" if self.server_time else repr(now)]
        with _errors("rate limit"):
            reply = self._script(keys=[self._prefix + key], args=[*args, _ms(self.idle_after)])
        allowed, tokens = reply
        return allowed == 1, float(tokens)
