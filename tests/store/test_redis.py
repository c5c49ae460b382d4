"""RedisCache against the contract on a real redis-server, plus TTLs, round trips and failures."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stave.errors import BackendUnavailable, BlobNotFound
from stave.store import BlobInfo, BlobKey, BlobStore, open_store
from stave.store.redis import DAY, WEEK, RedisCache
from tests.servers.redis import RedisServer
from tests.store.contract import BlobStoreContract, Corrupt
from tests.store.events import event

pytestmark = pytest.mark.redis

TIMEOUT = 1.0


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[RedisCache]:  # a fresh server per test
    # The contract round-trips a 3 MiB media file, so raise the 1 MiB default that keeps
    # large media out (test_large_media_are_not_cached checks that policy).
    cache = RedisCache(redis_server.url, timeout=TIMEOUT, max_media_bytes=4 << 20)
    yield cache
    cache.close()


@pytest.fixture
def corrupt() -> Corrupt:
    def overwrite(store: BlobStore, key: BlobKey, locator: str | None, data: bytes) -> None:
        assert isinstance(store, RedisCache)
        store._redis.set(store.redis_key(key), data)  # behind the driver's back

    return overwrite


class TestRedisCache(BlobStoreContract):
    seed = 4


def _event_key(number: int) -> tuple[BlobKey, bytes]:
    signed = event(400_000 + number)
    return BlobKey.event(signed.id), signed.canonical_bytes()


def _calls(server: RedisServer, command: str) -> int:
    stats = server.command("INFO", "commandstats")
    assert isinstance(stats, bytes)
    match = [line for line in stats.decode().splitlines() if line.startswith(f"cmdstat_{command}:")]
    return int(match[0].split("calls=")[1].split(",")[0]) if match else 0


def test_is_not_durable_and_cheapest(store: RedisCache) -> None:
    assert store.durable is False
    assert store.cost == 0
    report = store.health()
    assert report.ok
    assert report.durable is False
    assert report.detail.startswith("redis ")


def test_put_lives_a_week_and_fill_a_day(store: RedisCache, redis_server: RedisServer) -> None:
    key, data = _event_key(1)
    store.put(key, data, BlobInfo())
    assert store.redis_key(key) == f"stave:events:{key.digest}"
    ttl = redis_server.command("TTL", store.redis_key(key))
    assert isinstance(ttl, int)
    assert WEEK - 5 <= ttl <= WEEK
    other, other_data = _event_key(2)
    store.fill(other, other_data)
    ttl = redis_server.command("TTL", store.redis_key(other))
    assert isinstance(ttl, int)
    assert DAY - 5 <= ttl <= DAY
    assert store.get(other) == other_data


def test_get_many_is_one_round_trip(store: RedisCache, redis_server: RedisServer) -> None:
    stored = [_event_key(10 + i) for i in range(20)]
    assert store.put_many([(key, data, BlobInfo()) for key, data in stored]) == [None] * 20
    missing, _ = _event_key(40)
    before = {name: _calls(redis_server, name) for name in ("mget", "get")}
    result = store.get_many([key for key, _ in stored] + [missing])
    assert _calls(redis_server, "mget") == before["mget"] + 1
    assert _calls(redis_server, "get") == before["get"]
    assert all(result[key] == data for key, data in stored)
    assert isinstance(result[missing], BlobNotFound)


def test_large_media_are_not_cached(redis_server: RedisServer, tmp_path: Path) -> None:
    store = RedisCache(redis_server.url, max_media_bytes=1000)
    small = os.urandom(1000)
    large = os.urandom(1001)
    small_key = BlobKey.media(hashlib.sha256(small).hexdigest())
    large_key = BlobKey.media(hashlib.sha256(large).hexdigest())
    store.put(small_key, small, BlobInfo())
    store.put(large_key, large, BlobInfo())  # a no-op, not an error
    store.fill(large_key, large)
    (tmp_path / "large").write_bytes(large)
    store.put_path(large_key, tmp_path / "large")
    assert store.get(small_key) == small
    assert not store.has(large_key)


def test_open_store_from_url(redis_server: RedisServer) -> None:
    url = f"redis://:secret@{redis_server.host}:{redis_server.port}/3?ttl=100&read_ttl=10&timeout=0.5"
    store = open_store(url)
    assert isinstance(store, RedisCache)
    assert (store.ttl, store.read_ttl, store.timeout) == (100, 10, 0.5)
    assert store.name == f"redis:{redis_server.host}:{redis_server.port}/3"
    assert "secret" not in repr(store)
    plain = open_store(f"{redis_server.url}?ttl=100")
    key, data = _event_key(50)
    plain.put(key, data, BlobInfo())
    ttl = redis_server.command("TTL", RedisCache.redis_key(key))
    assert isinstance(ttl, int)
    assert 95 <= ttl <= 100


def test_stopped_server_is_unavailable_quickly(fresh_redis_server: RedisServer) -> None:
    store = RedisCache(fresh_redis_server.url, timeout=TIMEOUT)
    key, data = _event_key(60)
    store.put(key, data, BlobInfo())
    fresh_redis_server.stop()
    for call in (lambda: store.get(key), lambda: store.put(key, data, BlobInfo()), lambda: store.has(key)):
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match=f"stave:events:{key.digest}"):
            call()
        assert time.monotonic() - started < TIMEOUT
    assert isinstance(store.get_many([key])[key], BackendUnavailable)
    assert not store.health().ok
    fresh_redis_server.start()  # not persistent: back, and empty
    with pytest.raises(BlobNotFound):
        store.get(key)
    store.put(key, data, BlobInfo())
    assert store.get(key) == data


def test_hung_server_fails_within_the_timeout(fresh_redis_server: RedisServer) -> None:
    store = RedisCache(fresh_redis_server.url, timeout=TIMEOUT)
    key, data = _event_key(70)
    store.put(key, data, BlobInfo())
    assert fresh_redis_server.pid is not None
    os.killpg(fresh_redis_server.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable):
            store.get(key)
        assert TIMEOUT * 0.8 < time.monotonic() - started < TIMEOUT * 2
    finally:
        os.killpg(fresh_redis_server.pid, signal.SIGCONT)
    assert store.get(key) == data


def test_wrong_password_is_not_unavailability(fresh_redis_server: RedisServer) -> None:
    fresh_redis_server.command("CONFIG", "SET", "requirepass", "right")
    store = RedisCache(f"redis://:wrong@{fresh_redis_server.host}:{fresh_redis_server.port}/0")
    key, _ = _event_key(80)
    with pytest.raises(Exception, match=r"invalid username-password|WRONGPASS") as info:
        store.get(key)
    assert not isinstance(info.value, BackendUnavailable)
    assert isinstance(info.value.__cause__, redis.AuthenticationError)
