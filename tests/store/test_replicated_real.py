"""The replicated store over real servers (a local directory, SeaweedFS S3, js-ipfs, Redis), with faults.

Every read must return the verified event, bad copies must be repaired, no acknowledged write
may be lost, and a write below quorum must leave nothing a read could mistake for an event.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from stave.db import open_database
from stave.errors import BlobNotFound, StorageError
from stave.store import BlobKey, QuorumError, ReplicatedStore, StoreIndex, open_store
from stave.store.local import LocalStore
from tests.servers import IpfsServer, RedisServer, SeaweedServer
from tests.servers._process import free_ports
from tests.store.events import event

pytestmark = [pytest.mark.s3, pytest.mark.ipfs, pytest.mark.redis]

T = TypeVar("T")
TIMEOUT = 3.0


def eventually(call: Callable[[], T], within: float = 20.0) -> T:
    deadline = time.monotonic() + within
    while True:
        try:
            return call()
        except (StorageError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def store(
    tmp_path: Path, fresh_s3_server: SeaweedServer, ipfs_server: IpfsServer, redis_server: RedisServer
) -> Iterator[ReplicatedStore]:
    s3 = fresh_s3_server
    s3_url = (
        f"s3://stave-{uuid.uuid4().hex[:8]}/events?endpoint={s3.endpoint_url}&region={s3.region}"
        f"&access_key={s3.access_key}&secret_key={s3.secret_key}&create_bucket=1&timeout={TIMEOUT}"
    )
    ipfs_url = f"ipfs+http://127.0.0.1:{ipfs_server.api_port}?lookup_timeout=0.5&timeout={TIMEOUT}"
    replicated = ReplicatedStore(
        [
            LocalStore(tmp_path / "local", name="local"),
            open_store(s3_url, name="s3"),
            open_store(ipfs_url, name="ipfs"),
        ],
        StoreIndex(open_database(f"sqlite:///{tmp_path}/stave.db")),
        cache=open_store(f"{redis_server.url}?timeout=1", name="redis"),
        min_redundancy=2,
        timeout=TIMEOUT * 2,
    )
    yield replicated
    replicated.close()


def n(number: int) -> int:
    return 700_000 + number


def test_every_backend_holds_a_verified_copy(store: ReplicatedStore) -> None:
    signed = event(n(1))
    result = store.put_event(signed)
    assert sorted(result.stored) == ["ipfs", "local", "s3"]
    store.flush()
    blob = store.index.get(BlobKey.event(signed.id))
    assert blob is not None
    assert blob.copies["ipfs"].locator.startswith("bafkrei")  # type: ignore[union-attr]
    key = BlobKey.event(signed.id)
    for backend in store.durable:
        assert backend.get(key, blob.copies[backend.name].locator) == signed.canonical_bytes()
    assert store.cache is not None
    assert store.cache.get(key) == signed.canonical_bytes()


def test_redis_down_changes_nothing_but_speed(store: ReplicatedStore, redis_server: RedisServer) -> None:
    redis_server.stop()
    signed = event(n(2))
    assert store.put_event(signed).stored
    assert store.get_event(signed.id) == signed.canonical_bytes()
    assert store.health().ok


def test_s3_stopped_mid_run_then_repaired(store: ReplicatedStore, fresh_s3_server: SeaweedServer) -> None:
    before = [event(n(10 + i)) for i in range(3)]
    store.put_events(before)
    fresh_s3_server.stop()
    during = [event(n(20 + i)) for i in range(3)]
    for result in store.put_events(during):
        assert not isinstance(result, QuorumError)
        assert "s3" in result.failed
        assert sorted(result.stored) == ["ipfs", "local"]
    for one in before + during:  # every acknowledged event is still served, verified
        assert store.get_event(one.id) == one.canonical_bytes()
    assert not next(h for h in store.health().backends if h.backend == "s3").ok
    fresh_s3_server.start()
    repaired: list[int] = []

    def scrub_until_s3_answers() -> None:
        report = store.scrub()
        repaired.append(report.backends["s3"].repaired)  # an early round may repair some, then meet a 500
        assert report.backends["s3"].unavailable == 0

    eventually(scrub_until_s3_answers)
    assert sum(repaired) >= 3
    for one in during:
        assert store.durable[1].get(BlobKey.event(one.id)) == one.canonical_bytes()
    again = store.scrub()
    assert again.healed
    for name, counts in again.backends.items():
        assert counts.missing == counts.corrupt == counts.unavailable == 0, name
    # The test IPFS node is shared by the session's tests: its other pins list as orphans here.
    assert again.backends["local"].orphaned == again.backends["s3"].orphaned == 0


def test_s3_hanging_does_not_block_writes_or_reads(store: ReplicatedStore, fresh_s3_server: SeaweedServer) -> None:
    signed = event(n(30))
    store.put_event(signed)
    assert fresh_s3_server.pid is not None
    os.killpg(fresh_s3_server.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        result = store.put_event(event(n(31)))
        assert "s3" in result.failed
        assert time.monotonic() - started < TIMEOUT * 2 + 3
        started = time.monotonic()
        assert store.get_event(signed.id) == signed.canonical_bytes()  # the local copy is cheaper anyway
        assert time.monotonic() - started < 1
        # The next writes skip the hung backend for a cool-down instead of waiting it out again.
        started = time.monotonic()
        skipped = store.put_event(event(n(32)))
        assert time.monotonic() - started < 1
        assert "not tried" in skipped.failed["s3"]
        assert sorted(skipped.stored) == ["ipfs", "local"]
    finally:
        os.killpg(fresh_s3_server.pid, signal.SIGCONT)

    attempts = iter(range(33, 200))

    def s3_written_again() -> None:  # after the cool-down s3 is tried again (a new event each time)
        assert "s3" in store.put_event(event(n(next(attempts)))).stored

    eventually(s3_written_again, within=60)


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_copies_are_skipped_and_repaired(
    store: ReplicatedStore, fresh_s3_server: SeaweedServer, damage: str
) -> None:
    signed = event(n(40 + ["flip", "truncate", "delete"].index(damage)))
    store.put_event(signed)
    store.flush()
    key = BlobKey.event(signed.id)
    local = store.durable[0]
    assert isinstance(local, LocalStore)
    path = local.path(key)
    data = path.read_bytes()
    if damage == "flip":
        path.write_bytes(data[:100] + bytes([data[100] ^ 0x01]) + data[101:])
    elif damage == "truncate":
        path.write_bytes(data[:-10])
    else:
        path.unlink()
    s3 = store.durable[1]
    s3.delete(key)  # and the S3 copy is gone
    assert store.cache is not None
    store.cache.delete(key)
    assert store.get_event(signed.id) == data  # served from IPFS, verified
    eventually(lambda: _assert(path.is_file() and path.read_bytes() == data))
    eventually(lambda: _assert(s3.get(key) == data))


def _assert(condition: bool) -> None:
    assert condition


def test_below_quorum_nothing_is_stored(store: ReplicatedStore, fresh_s3_server: SeaweedServer, tmp_path: Path) -> None:
    fresh_s3_server.stop()
    # IPFS on a port where nothing listens: a real connection refusal.
    unreachable = open_store(f"ipfs+http://127.0.0.1:{free_ports(1)[0]}?timeout=1", name="ipfs")
    below = ReplicatedStore(
        [store.durable[0], store.durable[1], unreachable],
        store.index,
        cache=store.cache,
        min_redundancy=2,
        timeout=TIMEOUT,
    )
    signed = event(n(50))
    with pytest.raises(QuorumError) as info:
        below.put_event(signed)
    assert "only 1 of the 2" in str(info.value)
    assert "s3" in info.value.failures
    assert "ipfs" in info.value.failures
    with pytest.raises(BlobNotFound):
        below.get_event(signed.id)  # the stray local copy is not served
    with pytest.raises(BlobNotFound):
        store.get_event(signed.id)
    assert store.cache is not None
    assert not store.cache.has(BlobKey.event(signed.id))
