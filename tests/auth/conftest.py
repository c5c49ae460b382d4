"""Fixtures of the auth tests: each store and limiter in memory and on a real Redis.

``backend`` is parametrised over both drivers, so one test states the behaviour once and
both must show it; the Redis case carries the ``redis`` marker (``-m "not redis"`` skips it).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from stave.auth import (
    MemoryRateLimiter,
    MemoryRevocationStore,
    MemorySpentStore,
    RateLimiter,
    RevocationStore,
    SpentStore,
)
from stave.auth.redis import RedisRateLimiter, RedisRevocationStore, RedisSpentStore, connect
from tests.servers.redis import RedisServer

NOW = 1_758_390_000.0  # a fixed clock: every test passes time explicitly


class Backend:
    """Makes stores of one driver; Redis stores made by one Backend share one server, and
    each ``instance()`` is a new client, as a second API process would have."""

    def __init__(self, name: str, server: RedisServer | None = None) -> None:
        self.name = name
        self.server = server
        self._clients: list[redis.Redis] = []
        self._memory_spent = MemorySpentStore()
        self._memory_revocation = MemoryRevocationStore()

    def client(self) -> redis.Redis:
        assert self.server is not None
        client = connect(self.server.url)
        self._clients.append(client)
        return client

    def spent(self) -> SpentStore:
        """The spent-nonce store; in memory, every call returns the same one (one process)."""
        return RedisSpentStore(self.client()) if self.server else self._memory_spent

    def revocation(self) -> RevocationStore:
        return RedisRevocationStore(self.client()) if self.server else self._memory_revocation

    def limiter(self, rate: float, burst: int, name: str = "test") -> RateLimiter:
        if self.server:
            return RedisRateLimiter(self.client(), rate, burst, name=name)
        return MemoryRateLimiter(rate, burst)

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    server = request.getfixturevalue("redis_server") if request.param == "redis" else None
    made = Backend(request.param, server)
    yield made
    made.close()


@pytest.fixture
def redis_backend(redis_server: RedisServer) -> Iterator[Backend]:
    """Redis only, for what only a shared server can show (two instances, TTLs)."""
    made = Backend("redis", redis_server)
    yield made
    made.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test here that starts Redis must say so, or ``-m "not redis"`` would still run it."""
    for item in items:
        needs_redis = "redis_server" in getattr(item, "fixturenames", ())
        if needs_redis and item.get_closest_marker("redis") is None and "tests/auth/" in item.nodeid:
            raise pytest.UsageError(f"{item.nodeid} uses a real Redis: mark it @pytest.mark.redis")
