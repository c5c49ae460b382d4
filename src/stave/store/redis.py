"""Redis read cache (``redis://127.0.0.1:6379/0?ttl=604800&read_ttl=86400&timeout=2``).

URL: ``redis[s]://[[user]:password@]host:port/db`` plus our parameters ``ttl`` (seconds a
``put`` copy lives, default 7 days: seed 000's ``EX 86400*7``), ``read_ttl`` (seconds a
read-through ``fill`` copy lives, default 1 day), ``timeout`` (socket connect and read
timeout in seconds, default 2) and ``max_media_bytes`` (default 1 MiB: larger media are not
cached, their ``put`` and ``fill`` are no-ops). Any other parameter goes to redis-py
(``ssl_ca_certs``, ``client_name``, …). The name never contains the password.

Layout: ``stave:events:<id>`` and ``stave:media:<sha256>``, plain strings set with ``EX``.
Every write is ``SET … EX``: it overwrites and restarts the lifetime (a ``fill`` after a
``put`` shortens it to ``read_ttl``; kept simple on purpose, a cache may forget).

Guarantees: none beyond "maybe". A copy here expires and may be evicted, so the cache is
``durable = False`` and never counts towards redundancy; it is ``cost = 0``, read first.
Reads are verified by the base class like any other backend, so a corrupted cache entry is
refused, never served. ``get_many`` is one ``MGET`` and ``put_many`` one pipeline: a single
round trip each. A down or hung server raises BackendUnavailable within about ``timeout``
(a refused connection is retried once, a timeout is not), so a dead cache costs a read
path at most that long.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from stave.errors import BackendUnavailable, BlobNotFound, ConfigError, StorageError
from stave.store.base import BlobInfo, BlobKey, BlobStore, Namespace

__all__ = ["RedisCache"]

KEY_PREFIX: Final = "stave"
WEEK: Final = 7 * 86400
DAY: Final = 86400
_OURS: Final = ("ttl", "read_ttl", "timeout", "max_media_bytes")
_DIGEST = re.compile(r"[0-9a-f]{64}\Z")


class RedisCache(BlobStore):
    scheme = "redis"
    durable = False  # a copy with a TTL is not a copy: it never counts towards redundancy
    cost = 0
    # A fallback for anything _errors does not see; it maps auth failures apart first.
    transient_errors = (redis.ConnectionError, redis.TimeoutError)

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        name: str | None = None,
        *,
        ttl: int = WEEK,
        read_ttl: int = DAY,
        timeout: float = 2.0,
        max_media_bytes: int = 1 << 20,
        **limits: int,
    ) -> None:
        parts = urlsplit(url)
        self.where = f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"
        super().__init__(name or f"redis:{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}", **limits)
        if ttl <= 0 or read_ttl <= 0 or timeout <= 0 or max_media_bytes < 0:
            raise ConfigError(f"{self.name}: ttl, read_ttl and timeout must be positive, max_media_bytes not negative")
        self.ttl, self.read_ttl, self.timeout, self.max_media_bytes = ttl, read_ttl, timeout, max_media_bytes
        try:
            self._redis = redis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                # Retry a refused or reset connection once (a restarted server, a stale pooled
                # socket), quickly; never a timeout, or a hung server would cost it twice.
                retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1, supported_errors=(redis.ConnectionError,)),
                health_check_interval=30,  # PING a connection idle this long before trusting it
                client_name="stave",
            )
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{self.name}: {exc}") from None

    @classmethod
    def from_url(cls, url: str, *, name: str | None = None) -> RedisCache:
        """``redis://host:port/db?ttl=…&read_ttl=…&timeout=…&max_media_bytes=…``; the rest is redis-py's."""
        parts = urlsplit(url)
        ours: dict[str, str] = {}
        rest: list[tuple[str, str]] = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in _OURS:
                ours[key] = value
            else:
                rest.append((key, value))
        try:
            options = {k: (float(v) if k == "timeout" else int(v)) for k, v in ours.items()}
        except ValueError as exc:
            raise ConfigError(f"store URL redis://{parts.hostname}: {exc}") from None
        return cls(
            parts._replace(query=urlencode(rest)).geturl(),
            name,
            ttl=int(options.get("ttl", WEEK)),
            read_ttl=int(options.get("read_ttl", DAY)),
            timeout=options.get("timeout", 2.0),
            max_media_bytes=int(options.get("max_media_bytes", 1 << 20)),
        )

    @staticmethod
    def redis_key(key: BlobKey) -> str:
        return f"{KEY_PREFIX}:{key.namespace.value}:{key.digest}"

    def cacheable(self, key: BlobKey, size: int) -> bool:
        return key.namespace is Namespace.EVENTS or size <= self.max_media_bytes

    # --- the contract ------------------------------------------------------------------------

    def _put(self, key: BlobKey, data: bytes, info: BlobInfo, replace: bool) -> str | None:
        self._set(key, data, self.ttl)
        return None

    def fill(self, key: BlobKey, data: bytes) -> None:
        """A read-through copy: the shorter ``read_ttl``, since nobody asked us to keep it."""
        self._check_size(key, len(data))
        self._call("fill", key, lambda: self._set(key, data, self.read_ttl))

    def put_path(self, key: BlobKey, source: Path) -> str | None:
        if not self.cacheable(key, source.stat().st_size):
            return None  # do not read a file we would not keep
        return super().put_path(key, source)

    def put_many(self, items: Sequence[tuple[BlobKey, bytes, BlobInfo]]) -> list[str | StorageError | None]:
        """Every SET in one pipeline (one round trip); per item None or its error."""
        results: list[str | StorageError | None] = [None] * len(items)
        pipe = self._redis.pipeline(transaction=False)
        queued: list[int] = []
        for i, (key, data, _) in enumerate(items):
            try:
                self._check_size(key, len(data))
            except StorageError as exc:
                results[i] = exc
                continue
            if self.cacheable(key, len(data)):
                pipe.set(self.redis_key(key), data, ex=self.ttl)
                queued.append(i)
        if not queued:
            return results
        try:
            with self._errors("put", f"{len(queued)} keys"):
                replies = pipe.execute(raise_on_error=False)
        except StorageError as exc:
            for i in queued:
                results[i] = exc
            return results
        for i, reply in zip(queued, replies, strict=True):
            if isinstance(reply, Exception):
                results[i] = StorageError(f"{self.name}: put {self.redis_key(items[i][0])}: {reply}")
        return results

    def _get(self, key: BlobKey, locator: str | None) -> bytes:
        name = self.redis_key(key)
        with self._errors("get", name):
            data = self._redis.get(name)
        if data is None:
            raise BlobNotFound(f"{self.name}: {name} not found (or expired)")
        assert isinstance(data, bytes)  # decode_responses is off
        return data

    def _get_many(self, keys: Sequence[BlobKey]) -> dict[BlobKey, bytes | None]:
        if not keys:
            return {}
        with self._errors("get", f"{len(keys)} keys"):
            values = self._redis.mget([self.redis_key(key) for key in keys])  # one round trip
        return {key: value if isinstance(value, bytes) else None for key, value in zip(keys, values, strict=True)}

    def _has(self, key: BlobKey, locator: str | None) -> bool:
        name = self.redis_key(key)
        with self._errors("has", name):
            return bool(self._redis.exists(name))

    def _delete(self, key: BlobKey, locator: str | None) -> None:
        name = self.redis_key(key)
        with self._errors("delete", name):
            self._redis.delete(name)

    def _list(self, namespace: Namespace) -> Iterator[str]:
        pattern = f"{KEY_PREFIX}:{namespace.value}:*"
        with self._errors("list", pattern):
            # SCAN, not KEYS: it walks the keyspace in steps and never blocks the server.
            for name in self._redis.scan_iter(match=pattern, count=1000):
                digest = name.decode().rsplit(":", 1)[-1] if isinstance(name, bytes) else str(name)
                if _DIGEST.match(digest):
                    yield digest

    def _health(self) -> str:
        with self._errors("health", "PING"):
            self._redis.ping()
            server = self._redis.info("server")
            memory = self._redis.info("memory")
        return f"redis {server.get('redis_version', '?')} at {self.where}, {memory.get('used_memory_human', '?')} used"

    def close(self) -> None:
        self._redis.close()

    # --- helpers ---------------------------------------------------------------------------

    def _set(self, key: BlobKey, data: bytes, ttl: int) -> None:
        if not self.cacheable(key, len(data)):
            return  # large media would crowd out the events the cache is for
        name = self.redis_key(key)
        with self._errors("put", name):
            self._redis.set(name, data, ex=ttl)

    @contextlib.contextmanager
    def _errors(self, action: str, what: str) -> Iterator[None]:
        """Map redis-py's exceptions onto stave's, naming the server and key."""
        try:
            yield
        except (redis.AuthenticationError, redis.exceptions.AuthorizationError) as exc:
            # subclasses of ConnectionError, but retrying will not fix a wrong password
            raise StorageError(f"{self.name}: {action} {what} on {self.where}: {exc}") from exc
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise BackendUnavailable(f"{self.name}: {action} {what} on {self.where}: {detail}") from exc
        except redis.RedisError as exc:
            raise StorageError(f"{self.name}: {action} {what} on {self.where}: {type(exc).__name__}: {exc}") from exc
