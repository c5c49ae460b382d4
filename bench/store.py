"""Storage: put and get per driver and for the replicated store, beside raw durable writes and raw Redis.

Goals (issue: replicated storage):
- a replicated put over two local directories within 1.5x of the raw durable writes it needs
  (two temp-file writes + fsync + rename + directory fsync, measured in the same run), on the
  embedded default driver (``sqlite://``); the file driver's time is measured beside it,
  interleaved, and recorded in ``store.json``;
- a cache hit within 1.5x of a raw Redis GET plus the verification of the same event.

Also reported, without goals: put/get throughput and latency per driver (file, SQLite, S3,
IPFS, Redis) at 1 and 32 concurrent clients, with 5 KB events.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from tests.store.events import event

from bench.harness import Record, goal_record, print_records, upsert_summary, write_results
from stave.db import open_database
from stave.store import BlobInfo, BlobKey, BlobStore, ReplicatedStore, StoreIndex, verify_blob
from stave.store.local import LocalStore
from stave.store.sqlite import SqliteStore

EVENT_SIZE = 5_000


def _events(start: int, count: int) -> list[Any]:
    return [event(start + i, EVENT_SIZE) for i in range(count)]


def raw_durable_pair(directory: Path, data: bytes) -> None:
    """What a replicated put over two local directories cannot avoid: two durable file writes."""
    for side in ("a", "b"):
        target = directory / side
        temp = target / f".tmp-{uuid.uuid4().hex}"
        with open(temp, "wb") as handle:
            handle.write(data)
            os.fsync(handle.fileno())
        os.rename(temp, target / uuid.uuid4().hex)
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _latencies(fn: Callable[[int], object], count: int, concurrency: int) -> tuple[float, list[float]]:
    """(operations per second, per-operation seconds) for ``count`` calls at ``concurrency``."""
    samples: list[float] = []

    def one(number: int) -> None:
        start = time.perf_counter()
        fn(number)
        samples.append(time.perf_counter() - start)

    start = time.perf_counter()
    if concurrency == 1:
        for number in range(count):
            one(number)
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(count)))
    return count / (time.perf_counter() - start), samples


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.contextmanager
def _servers() -> Iterator[dict[str, Any]]:
    """Real Redis, S3 and IPFS where installed (the test harness starts them); absent ones are skipped."""
    found: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        for name, module, cls in (
            ("redis", "redis", "RedisServer"),
            ("s3", "seaweed", "SeaweedServer"),
            ("ipfs", "ipfs", "IpfsServer"),
        ):
            try:
                server_module = __import__(f"tests.servers.{module}", fromlist=[cls])
                found[name] = stack.enter_context(getattr(server_module, cls)())
            except Exception as exc:
                found[name] = exc
        yield found


def _driver_urls(servers: dict[str, Any], root: Path) -> dict[str, str]:
    urls = {"local": f"file://{root}/driver-local", "sqlite": f"sqlite://{root}/driver-sqlite"}
    s3 = servers.get("s3")
    if s3 is not None and not isinstance(s3, Exception):
        urls["s3"] = (
            f"s3://bench-{uuid.uuid4().hex[:8]}/p?endpoint={s3.endpoint_url}&region={s3.region}"
            f"&access_key={s3.access_key}&secret_key={s3.secret_key}&create_bucket=1"
        )
    ipfs = servers.get("ipfs")
    if ipfs is not None and not isinstance(ipfs, Exception):
        urls["ipfs"] = f"ipfs+{ipfs.api_url}"
    redis = servers.get("redis")
    if redis is not None and not isinstance(redis, Exception):
        urls["redis"] = redis.url
    return urls


def _bench_driver(store: BlobStore, base: int, count: int, concurrency: int) -> dict[str, float]:
    events = _events(base, count)
    items = [(BlobKey.event(e.id), e.canonical_bytes(), BlobInfo()) for e in events]
    locators: dict[int, str | None] = {}

    def put(number: int) -> None:
        key, data, info = items[number]
        locators[number] = store.put(key, data, info)

    def get(number: int) -> None:
        store.get(items[number][0], locators.get(number))

    put_rate, put_samples = _latencies(put, count, concurrency)
    get_rate, get_samples = _latencies(get, count, concurrency)
    return {
        "put_per_s": put_rate,
        "put_p50_ms": _p(put_samples, 0.5) * 1e3,
        "put_p99_ms": _p(put_samples, 0.99) * 1e3,
        "get_per_s": get_rate,
        "get_p50_ms": _p(get_samples, 0.5) * 1e3,
        "get_p99_ms": _p(get_samples, 0.99) * 1e3,
    }


def run(console: Console, *, count: int = 300) -> list[Record]:
    figures: dict[str, Any] = {"event_bytes": len(event(0, EVENT_SIZE).canonical_bytes())}
    records: list[Record] = []
    with tempfile.TemporaryDirectory(prefix="stave-bench-") as temp:
        root = Path(temp)
        # --- goal 1, measured before any server starts, so nothing else competes for the disk ---
        (root / "raw" / "a").mkdir(parents=True)
        (root / "raw" / "b").mkdir(parents=True)
        database = open_database(f"sqlite:///{root}/stave.db")
        replicated = ReplicatedStore(
            [SqliteStore(root / "rep" / "a", name="a"), SqliteStore(root / "rep" / "b", name="b")], StoreIndex(database)
        )
        files = ReplicatedStore(
            [LocalStore(root / "files" / "a", name="a"), LocalStore(root / "files" / "b", name="b")],
            StoreIndex(open_database(f"sqlite:///{root}/files.db")),
        )
        events = _events(1_000_000, count)
        payload = events[0].canonical_bytes()
        # Steady state: a store past ~1M events has every shard directory already; creating
        # them (and fsyncing their parents) is a one-time cost the first events pay.
        for backend in files.durable:
            assert isinstance(backend, LocalStore)
            for one in events:
                backend.path(BlobKey.event(one.id)).parent.mkdir(parents=True, exist_ok=True)
        raw_samples, put_samples, file_samples = [], [], []
        for one in events:  # interleaved, so a noisy moment hits all alike
            start = time.perf_counter()
            raw_durable_pair(root / "raw", payload)
            raw_samples.append(time.perf_counter() - start)
            start = time.perf_counter()
            replicated.put_event(one)
            put_samples.append(time.perf_counter() - start)
            start = time.perf_counter()
            files.put_event(one)
            file_samples.append(time.perf_counter() - start)
        raw_ms, put_ms = statistics.median(raw_samples) * 1e3, statistics.median(put_samples) * 1e3
        figures["replicated_put_two_local"] = {
            "driver": "sqlite:// (the embedded default)",
            "median_ms": put_ms,
            "raw_two_durable_writes_median_ms": raw_ms,
            "file_driver_median_ms": statistics.median(file_samples) * 1e3,
        }
        records.append(
            goal_record(
                "store.replicated_put_two_local",
                put_ms,
                "ms",
                "<=1.5",
                baseline="two raw temp-file writes + fsync + rename + dir fsync",
                baseline_value=raw_ms,
            )
        )
        replicated.close()
        files.close()
        with _servers() as servers:
            _with_servers(console, root, servers, database, count, figures, records)
    write_results("store", figures)
    upsert_summary(records)
    print_records("store goals", records, console)
    return records


def _with_servers(
    console: Console,
    root: Path,
    servers: dict[str, Any],
    database: Any,
    count: int,
    figures: dict[str, Any],
    records: list[Record],
) -> None:
    from stave.store.urls import open_store

    # --- goal 2: a cache hit vs a raw Redis GET plus verification of the same event ---
    redis_server = servers.get("redis")
    if isinstance(redis_server, Exception) or redis_server is None:
        console.print(f"[yellow]cache-hit goal skipped: no Redis ({redis_server})[/yellow]")
    else:
        import redis as redis_py

        cache = open_store(redis_server.url)
        cached = ReplicatedStore(
            [LocalStore(root / "c" / "a", name="a"), LocalStore(root / "c" / "b", name="b")],
            StoreIndex(database),
            cache=cache,
        )
        sample = _events(2_000_000, 1)[0]
        cached.put_event(sample)
        cached.flush()  # the cache fills behind the acknowledgement
        raw_client = redis_py.Redis.from_url(redis_server.url)
        raw_key = f"stave:events:{sample.id}"
        key = BlobKey.event(sample.id)
        assert raw_client.get(raw_key) == sample.canonical_bytes(), "the cache layout changed"
        hit_samples, raw_get_samples = [], []
        for _ in range(2000):
            start = time.perf_counter()
            cached.get_event(sample.id)
            hit_samples.append(time.perf_counter() - start)
            start = time.perf_counter()
            data = raw_client.get(raw_key)
            assert isinstance(data, bytes)
            verify_blob(key, data)
            raw_get_samples.append(time.perf_counter() - start)
        hit_us, raw_us = statistics.median(hit_samples) * 1e6, statistics.median(raw_get_samples) * 1e6
        figures["cache_hit"] = {"median_us": hit_us, "raw_get_plus_verify_median_us": raw_us}
        records.append(
            goal_record(
                "store.cache_hit",
                hit_us,
                "us",
                "<=1.5",
                baseline="raw Redis GET + verification of the event",
                baseline_value=raw_us,
            )
        )
        cached.close()
    # --- per-driver figures, no goals -------------------------------------------------------
    table = Table(title=f"store drivers, {figures['event_bytes']} B events ({count} ops each)")
    for column in ("driver", "clients", "put/s", "put p50", "put p99", "get/s", "get p50", "get p99"):
        table.add_column(column)
    drivers: dict[str, Any] = {}
    for name, url in _driver_urls(servers, root).items():
        store = open_store(url)
        for concurrency in (1, 32):
            result = _bench_driver(store, 3_000_000 + len(drivers) * 10_000 + concurrency * 1000, count, concurrency)
            drivers[f"{name}@{concurrency}"] = result
            table.add_row(
                name,
                str(concurrency),
                f"{result['put_per_s']:.0f}",
                f"{result['put_p50_ms']:.2f} ms",
                f"{result['put_p99_ms']:.2f} ms",
                f"{result['get_per_s']:.0f}",
                f"{result['get_p50_ms']:.2f} ms",
                f"{result['get_p99_ms']:.2f} ms",
            )
        store.close()
    figures["drivers"] = drivers
    figures["skipped"] = {name: str(value) for name, value in servers.items() if isinstance(value, Exception)}
    console.print(table)
