"""Token buckets: bursts, refill, Retry-After, one behaviour in memory and in Redis, atomic in Redis."""

from __future__ import annotations

import random
import threading
import time

import pytest

from stave.auth import Decision, MemoryRateLimiter, RateLimited, RateLimiter
from stave.auth.redis import RedisRateLimiter, connect
from stave.errors import BackendUnavailable, ConfigError
from tests.auth.conftest import NOW, Backend
from tests.servers.redis import RedisServer


def test_burst_then_refill(backend: Backend) -> None:
    limiter = backend.limiter(rate=2.0, burst=5)
    decisions = [limiter.hit("203.0.113.7", now=NOW) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert decisions[-1] == Decision(False, 0.5, 0, 5)  # one token at 2 per second
    assert limiter.hit("203.0.113.7", now=NOW + 0.25) == Decision(False, 0.25, 0, 5)
    assert limiter.hit("203.0.113.7", now=NOW + 0.5).allowed
    assert not limiter.hit("203.0.113.7", now=NOW + 0.5).allowed
    # A long pause refills up to the burst, never beyond.
    assert [limiter.hit("203.0.113.7", now=NOW + 3600).allowed for _ in range(6)] == [True] * 5 + [False]


def test_keys_are_independent(backend: Backend) -> None:
    limiter = backend.limiter(rate=1.0, burst=1)
    assert limiter.hit("ip:a", now=NOW).allowed
    assert not limiter.hit("ip:a", now=NOW).allowed
    assert limiter.hit("ip:b", now=NOW).allowed


def test_retry_after_values(backend: Backend) -> None:
    limiter = backend.limiter(rate=0.5, burst=4)  # one token every 2 s
    assert limiter.hit("key", 3, now=NOW).remaining == 1
    refused = limiter.hit("key", 3, now=NOW)
    assert refused == Decision(False, 4.0, 1, 4)  # 2 tokens missing at 0.5/s
    assert refused.retry_after_header == "4"
    assert limiter.hit("key", 3, now=NOW + 3.9).retry_after == pytest.approx(0.1)
    assert limiter.hit("key", 3, now=NOW + 3.9).retry_after_header == "1"  # rounded up
    assert limiter.hit("key", 3, now=NOW + 4.0).allowed  # exactly when it said
    assert Decision(True, 0.0, 3, 4).retry_after_header == "0"


def test_refused_hits_take_nothing(backend: Backend) -> None:
    limiter = backend.limiter(rate=1.0, burst=2)
    limiter.hit("key", 2, now=NOW)
    for _ in range(100):
        assert not limiter.hit("key", now=NOW + 0.5).allowed
    assert limiter.hit("key", now=NOW + 1.0).allowed


def test_clock_stepping_back_neither_refills_nor_drains(backend: Backend) -> None:
    limiter = backend.limiter(rate=1.0, burst=3)
    limiter.hit("key", 2, now=NOW)
    assert limiter.hit("key", now=NOW - 100) == Decision(True, 0.0, 0, 3)
    assert limiter.hit("key", now=NOW + 1) == Decision(True, 0.0, 0, 3)  # the one token of that second


def test_enforce_raises_with_retry_after(backend: Backend) -> None:
    limiter = backend.limiter(rate=10.0, burst=1)
    limiter.enforce("key", now=NOW)
    with pytest.raises(RateLimited) as caught:
        limiter.enforce("key", now=NOW)
    assert caught.value.retry_after == pytest.approx(0.1)
    assert caught.value.retry_after_header == "1"
    assert caught.value.http_status == 429
    assert str(caught.value).startswith("rate-limited: 10 requests per second with bursts of 1 exceeded")


@pytest.mark.redis
def test_memory_and_redis_decide_alike(redis_backend: Backend) -> None:
    """The same random hits at the same times: identical decisions, to the last bit."""
    rng = random.Random(4)
    memory = MemoryRateLimiter(rate=3.7, burst=9)
    shared = redis_backend.limiter(rate=3.7, burst=9)
    now = NOW
    refusals = 0
    for _ in range(600):
        now += rng.choice([0.0, 0.0, 0.0, 0.013, 0.1, 0.37, 3.0])
        key, cost = rng.choice(["a", "b"]), rng.choice([1, 1, 2, 3, 5])
        decision = memory.hit(key, cost, now=now)
        assert decision == shared.hit(key, cost, now=now), (key, cost, now)
        refusals += not decision.allowed
    assert 100 < refusals < 200  # both outcomes well exercised (142 with this seed)


def _hammer(limiter_for_thread: list[RateLimiter], hits: int) -> int:
    allowed = 0
    lock = threading.Lock()
    barrier = threading.Barrier(len(limiter_for_thread))

    def run(limiter: RateLimiter) -> None:
        nonlocal allowed
        barrier.wait()
        mine = sum(limiter.hit("shared", now=NOW).allowed for _ in range(hits))
        with lock:
            allowed += mine

    threads = [threading.Thread(target=run, args=(limiter,)) for limiter in limiter_for_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return allowed


@pytest.mark.redis
def test_redis_is_atomic_across_instances(redis_backend: Backend) -> None:
    """8 threads, each with its own client (as 8 API processes) × 50 hits: exactly the burst passes."""
    limiters = [redis_backend.limiter(rate=0.001, burst=100) for _ in range(8)]
    assert _hammer(limiters, 50) == 100


def test_memory_is_thread_safe() -> None:
    limiter = MemoryRateLimiter(rate=0.001, burst=100)
    assert _hammer([limiter] * 8, 50) == 100


def test_memory_prunes_idle_buckets() -> None:
    limiter = MemoryRateLimiter(rate=10.0, burst=10)  # full again after 1 s
    for number in range(1000):
        limiter.hit(f"ip-{number}", now=NOW + number * 0.01)
    assert len(limiter) <= 101  # the keys of the last second
    limiter.hit("late", now=NOW + 100)
    assert len(limiter) == 1


def test_memory_is_bounded_under_a_flood_of_keys() -> None:
    limiter = MemoryRateLimiter(rate=0.001, burst=10, max_keys=50)
    for number in range(1000):
        limiter.hit(f"ip-{number}", now=NOW)
    assert len(limiter) == 50
    assert limiter.hit("ip-999", now=NOW).remaining == 8  # the most recent are kept


@pytest.mark.redis
def test_redis_bucket_expires_when_full_again(redis_backend: Backend, redis_server: RedisServer) -> None:
    limiter = redis_backend.limiter(rate=4.0, burst=20, name="ip")
    limiter.hit("203.0.113.7", now=NOW)
    ttl = redis_server.command("PTTL", "stave:auth:rl:ip:203.0.113.7")
    assert isinstance(ttl, int)
    assert 4000 < ttl <= 5000  # burst / rate = 5 s


@pytest.mark.redis
def test_redis_server_time(redis_backend: Backend) -> None:
    limiter = RedisRateLimiter(redis_backend.client(), 1.0, 3, server_time=True)
    decisions = [limiter.hit("key", now=0.0) for _ in range(4)]  # ``now`` is ignored
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert 0.5 < decisions[-1].retry_after <= 1.0
    time.sleep(0.3)
    assert 0 < limiter.hit("key", now=0.0).retry_after < 0.71  # Redis's clock moved on; ``now`` did not


def test_redis_down_fails_closed() -> None:
    client = connect("redis://127.0.0.1:9/0", timeout=0.5)  # the discard port: nothing listens
    try:
        with pytest.raises(BackendUnavailable, match="rate limit"):
            RedisRateLimiter(client, 1.0, 1).hit("key", now=NOW)
    finally:
        client.close()


def test_configuration_errors() -> None:
    for rate, burst in [(0, 1), (-1.0, 1), (float("inf"), 1), (1.0, 0), (1.0, 1.5)]:
        with pytest.raises(ConfigError):
            MemoryRateLimiter(rate, burst)  # type: ignore[arg-type]
    limiter = MemoryRateLimiter(1.0, 5)
    with pytest.raises(ValueError, match="cost"):
        limiter.hit("key", 6, now=NOW)
    with pytest.raises(ValueError, match="key"):
        limiter.hit("", now=NOW)
